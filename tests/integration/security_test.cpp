// The built daemon secured by a web config file: TLS over IPv6 with basic auth, reloads of the web
// config, and --check-config. Certificates come from the openssl CLI and hashes from htpasswd, at
// run time. Each test runs in its own network namespace.

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>

#include "tests/support/daemon.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"
#include "tests/support/tls.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

constexpr const char* kConfig = "interval: 100ms\ntargets: []\n";

std::string users_block(const std::string& user, const std::string& password) {
  return "basic_auth_users:\n  " + user + ": " + test::bcrypt_hash(user, password) + "\n";
}

std::string tls_block(const test::TestPki& pki) {
  return "tls_server_config:\n  cert_file: " + pki.server_cert + "\n  key_file: " + pki.server_key +
         "\n";
}

// Whether the process has OpenSSL's libraries mapped (/proc/<pid>/maps).
bool maps_openssl(pid_t pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  const std::string text((std::istreambuf_iterator<char>(maps)), std::istreambuf_iterator<char>());
  REQUIRE_FALSE(text.empty());
  return text.find("/libssl.so") != std::string::npos ||
         text.find("/libcrypto.so") != std::string::npos;
}

bool loopback_has_ipv6() {
  return test::run_command("grep -q ' lo$' /proc/net/if_inet6").exit_code == 0;
}

}  // namespace

TEST_CASE(
    "daemon: over TLS on [::1] with basic auth, no or wrong credentials get 401, the right ones "
    "200",
    "[integration][security]") {
  test::enter_private_netns();
  INFO("this test needs IPv6 on the loopback interface of a fresh network namespace");
  REQUIRE(loopback_has_ipv6());
  test::TempDir dir;
  const auto pki = test::make_test_pki(dir);
  const std::string web =
      dir.write("web.yml", tls_block(pki) + users_block("prometheus", "right horse"));
  test::Daemon d(kConfig, {"--web.listen-address=[::1]:0", "--web.config.file=" + web});
  REQUIRE(d.host() == "::1");
  const std::string url = "https://[::1]:" + std::to_string(d.port()) + "/metrics";
  CHECK_THAT(d.output(), Contains("HTTP: TLS (TLS12 or later), basic auth (1 user) (" + web));

  const auto none = test::curl({"--cacert", pki.ca_cert, url});
  INFO(none.output);
  CHECK(none.status == 401);
  CHECK_THAT(none.output, Contains("WWW-Authenticate: Basic realm=\"mcbacklogd\""));
  CHECK_THAT(none.output, !Contains("mcbacklog_"));
  CHECK(test::curl({"--cacert", pki.ca_cert, "-u", "prometheus:wrong horse", url}).status == 401);
  CHECK(test::curl({"--cacert", pki.ca_cert, "-u", "nobody:right horse", url}).status == 401);

  test::CurlReply right;
  CHECK(test::eventually([&] {
    right = test::curl({"--cacert", pki.ca_cert, "-u", "prometheus:right horse", url});
    return right.status == 200 && right.output.find("mcbacklog_somaxconn ") != std::string::npos;
  }));
  INFO(right.output);
  CHECK_THAT(right.output, Contains("mcbacklog_collector_success{collector=\"netstat\"} 1"));

  // Plain HTTP on the TLS port: no HTTP reply, no metrics.
  auto plain = d.get("/metrics");
  CHECK_FALSE(plain.ok());
  CHECK(d.process().running());

  // diagnose --from-daemon speaks plain HTTP: it cannot run, and says why and what to do.
  test::Child diagnose(
      {test::daemon_binary(), "diagnose", "--from-daemon", "--config.file=" + d.config_path(),
       "--web.listen-address=[::1]:" + std::to_string(d.port()), "--web.config.file=" + web});
  CHECK(diagnose.wait_exit(30s) == 3);
  CHECK_THAT(diagnose.output(), Contains("may ask for TLS or basic auth: read /alerts with curl"));
}

TEST_CASE("daemon: SIGHUP with a bad web config keeps the running one, a good one applies",
          "[integration][security][reload]") {
  test::enter_private_netns();
  test::TempDir dir;
  const auto pki = test::make_test_pki(dir);
  const std::string web = dir.write("web.yml", users_block("alice", "first"));
  test::Daemon d(std::string(kConfig) + "web: { config_file: " + web + " }\n");
  const test::Headers alice{{"Authorization", "Basic YWxpY2U6Zmlyc3Q="}};  // alice:first
  auto status = [&](const test::Headers& h) {
    auto r = d.get("/-/healthy", h);
    return r ? r->status : 0;
  };
  CHECK(status({}) == 401);
  CHECK(status(alice) == 200);

  std::ofstream(web) << "basic_auth_users:\n  bob: not-a-hash\n";
  std::size_t mark = d.output().size();
  d.process().signal(SIGHUP);
  CHECK(d.process()
            .wait_for_output(std::regex("reload failed, keeping the running configuration: "
                                        "[^\\n]*web.yml:2:8: basic_auth_users.bob: "
                                        "not a bcrypt hash"),
                             10s, mark)
            .has_value());
  CHECK(status(alice) == 200);

  // Now TLS, and bob instead of alice.
  std::ofstream(web) << tls_block(pki) + users_block("bob", "second");
  mark = d.output().size();
  d.process().signal(SIGHUP);
  REQUIRE(d.process().wait_for_output(std::regex("HTTP: TLS"), 10s, mark).has_value());
  CHECK(status(alice) == 0);  // plain HTTP gets no answer
  const std::string url = "https://127.0.0.1:" + std::to_string(d.port()) + "/-/healthy";
  CHECK(test::curl({"--cacert", pki.ca_cert, "-u", "alice:first", url}).status == 401);
  CHECK(test::curl({"--cacert", pki.ca_cert, "-u", "bob:second", url}).status == 200);
  CHECK(d.process().running());
}

TEST_CASE(
    "daemon: OpenSSL is mapped only once TLS or basic auth is configured: not at a plain start, "
    "then by the reload that adds basic auth",
    "[integration][security][reload]") {
  test::enter_private_netns();
  test::TempDir dir;
  const std::string web = dir.write("web.yml", "");
  test::Daemon d(std::string(kConfig) + "web: { config_file: " + web + " }\n");
  REQUIRE(d.get("/-/healthy"));
  CHECK_FALSE(maps_openssl(d.process().pid()));

  std::ofstream(web) << users_block("alice", "first");
  const std::size_t mark = d.output().size();
  d.process().signal(SIGHUP);
  REQUIRE(d.process().wait_for_output(std::regex("basic auth"), 10s, mark).has_value());
  CHECK(maps_openssl(d.process().pid()));
  const auto reply = d.get("/-/healthy", {{"Authorization", "Basic YWxpY2U6Zmlyc3Q="}});
  REQUIRE(reply);
  CHECK(reply->status == 200);
}

TEST_CASE("daemon: --check-config validates the web config, and a bad one stops the start",
          "[integration][security][config]") {
  test::TempDir dir;
  const auto pki = test::make_test_pki(dir);
  const std::string bin = test::daemon_binary();
  const std::string good = dir.write("good.yml", tls_block(pki) + users_block("p", "x"));
  const std::string bad_hash = dir.write("bad.yml", "basic_auth_users:\n  p: secret\n");
  const std::string no_cert =
      dir.write("nocert.yml", "tls_server_config:\n  cert_file: none.crt\n  key_file: none.key\n");

  auto ok = test::run_command(bin + " --check-config --web.config.file=" + good);
  CHECK(ok.exit_code == 0);
  CHECK_THAT(ok.output, Contains("good.yml: web configuration is valid"));

  auto hash = test::run_command(bin + " --check-config --web.config.file=" + bad_hash);
  CHECK(hash.exit_code == 1);
  CHECK_THAT(hash.output, Contains("bad.yml:2:6: basic_auth_users.p: not a bcrypt hash"));
  CHECK_THAT(hash.output, !Contains("secret"));

  // Relative to the web config's directory, and named with the key that gave it.
  auto cert = test::run_command(bin + " --check-config --web.config.file=" + no_cert);
  CHECK(cert.exit_code == 1);
  CHECK_THAT(cert.output, Contains("nocert.yml:2:14: tls_server_config.cert_file: " + dir.path() +
                                   "/none.crt: cannot open: No such file or directory"));

  auto missing =
      test::run_command(bin + " --check-config --web.config.file=" + dir.path() + "/none.yml");
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.output, Contains("none.yml: cannot open"));

  // The daemon refuses to start on what --check-config refuses.
  auto start =
      test::run_command(bin + " --web.listen-address=127.0.0.1:0 --web.config.file=" + bad_hash);
  CHECK(start.exit_code == 1);
  CHECK_THAT(start.output, Contains("not a bcrypt hash"));
}
