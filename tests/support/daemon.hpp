#pragma once
// The built mcbacklogd as a child process of a test: started on 127.0.0.1 port 0 (or on [::1]
// when `extra_args` say --web.listen-address=[::1]:0) with a config written to a temporary file,
// its port read from its log, scraped over real HTTP.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

namespace mcb::test {

// Absolute paths baked in by CMake.
std::string daemon_binary();
std::string source_dir();

// A configuration that samples every 100 ms, names no target and walks no connection: for tests of
// the configuration, its files and the process rather than of the samples.
inline constexpr const char* kQuietConfig =
    "interval: 100ms\ntargets: []\ncollectors: { sockdiag: { enabled: false } }\n";

// The daemon binary run to its exit with `args` (arguments of a shell command line), killed after
// 30 s (exit code 137 then): a bound on a hang, not a timing.
CommandResult run_daemon(const std::string& args);

class Daemon {
 public:
  // `config_yaml`: written to a temp file passed as --config.file; nullopt runs on built-in
  // defaults. `launcher`, when given, is a command line that the daemon's path and arguments are
  // appended to and that must exec them (e.g. `sh -c 'VAR=... exec "$0" "$@"'`), so that the
  // process handle is the daemon's. Throws with the daemon's output when it does not start
  // listening.
  explicit Daemon(std::optional<std::string> config_yaml,
                  const std::vector<std::string>& extra_args = {},
                  const std::vector<std::string>& launcher = {});

  const std::string& host() const { return host_; }  // "127.0.0.1" or "::1"
  std::uint16_t port() const { return port_; }
  Child& process() { return child_; }
  const std::string& config_path() const { return config_path_; }
  std::string output() const { return child_.output(); }

  Result<HttpReply> get(const std::string& path, const Headers& headers = {});

  // Waits for /-/ready, then returns /metrics. Throws if either fails.
  std::string metrics();

  // Scrapes until `condition` holds for a scrape; returns that scrape, or nullopt at timeout.
  std::optional<std::string> wait_for_metrics(
      const std::function<bool(const std::string&)>& condition,
      std::chrono::milliseconds timeout = std::chrono::seconds(15));

 private:
  TempDir dir_;
  std::string config_path_;
  Child child_;
  std::string host_;
  std::uint16_t port_ = 0;
};

}  // namespace mcb::test
