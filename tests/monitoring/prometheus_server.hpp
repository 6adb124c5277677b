#pragma once
// A real Prometheus server (Debian's /usr/bin/prometheus) for the monitoring tests: the command
// line that runs it with a given configuration in a test's directory, and the HTTP API calls the
// tests make to it. Each test runs in its own network namespace, so the usual port is free. Test
// threads only.

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

namespace mcb::test {

inline constexpr std::uint16_t kPrometheusPort = 9090;

// Percent-encodes everything but RFC 3986's unreserved characters, for a query parameter.
inline std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// GET on 127.0.0.1:port, parsed as JSON; a failure is a null document (tests wait on it).
inline nlohmann::json get_json(std::uint16_t port, const std::string& path) {
  auto r = http_get("127.0.0.1", port, path, {}, std::chrono::seconds(10));
  if (!r || r->status != 200) return nullptr;
  nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

// The server on 127.0.0.1:port answers /-/ready with 200.
inline bool ready(std::uint16_t port) {
  auto r = http_get("127.0.0.1", port, "/-/ready", {}, std::chrono::seconds(2));
  return r && r->status == 200;
}

// The command line of a Prometheus server on 127.0.0.1:kPrometheusPort that runs `config_yaml`,
// written into `dir`, and keeps its data there.
inline std::vector<std::string> prometheus_argv(const TempDir& dir,
                                                const std::string& config_yaml) {
  return {"/usr/bin/prometheus", "--config.file=" + dir.write("prometheus.yml", config_yaml),
          "--storage.tsdb.path=" + dir.path() + "/data",
          "--web.listen-address=127.0.0.1:" + std::to_string(kPrometheusPort), "--log.level=warn"};
}

}  // namespace mcb::test
