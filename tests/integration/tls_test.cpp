// TLS to memcached: Debian's memcached with -Z and a certificate from a CA made here with the
// openssl command, read by the daemon with that CA (stats and the probe), and the clear reasons
// it gives with another CA, an expired certificate and a server that does not speak TLS.

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/daemon.hpp"
#include "tests/support/load.hpp"
#include "tests/support/memcached.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using Catch::Matchers::Contains;

namespace {

void run(const std::string& command) {
  const test::CommandResult r = test::run_command(command);
  INFO(command << "\n" << r.output);
  REQUIRE(r.exit_code == 0);
}

// A CA, and a certificate for 127.0.0.1 signed by it, valid from `from` days to `to` days
// from now (negative: in the past), under `dir` as <name>-ca.pem, <name>.pem, <name>.key.
void make_certificates(const test::TempDir& dir, const std::string& name, int from, int to) {
  const std::string d = dir.path() + "/" + name;
  run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
      "-subj /CN=mcb-test-ca-" +
      name + " -keyout " + d + "-ca.key -out " + d + "-ca.pem 2>&1");
  run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=memcached "
      "-keyout " +
      d + ".key -out " + d + ".csr 2>&1");
  run("printf 'subjectAltName=IP:127.0.0.1\\n' > " + d + ".ext");
  // `openssl ca` takes any start and end dates (openssl 3.0's x509 only takes -days).
  run("mkdir -p " + d + "-db && : > " + d + "-db/index.txt && echo 01 > " + d + "-db/serial");
  run("printf '[ca]\\ndefault_ca=test\\n[test]\\ndatabase=" + d + "-db/index.txt\\nserial=" + d +
      "-db/serial\\nnew_certs_dir=" + d +
      "-db\\ndefault_md=sha256\\npolicy=any\\nunique_subject=no\\n[any]\\ncommonName=supplied\\n' "
      "> " +
      d + "-db/ca.cnf");
  run("openssl ca -batch -notext -config " + d + "-db/ca.cnf -cert " + d + "-ca.pem -keyfile " + d +
      "-ca.key -in " + d + ".csr -extfile " + d + ".ext -startdate $(date -u -d '" +
      std::to_string(from) + " days' +%Y%m%d%H%M%SZ) -enddate $(date -u -d '" + std::to_string(to) +
      " days' +%Y%m%d%H%M%SZ) -out " + d + ".pem 2>&1");
}

// memcached with TLS on 127.0.0.1:11311 and a plain listener on 127.0.0.1:11312 (to see that it
// runs), in the test's own network namespace.
std::unique_ptr<test::Child> tls_memcached(const test::TempDir& dir, const std::string& name,
                                           const std::vector<std::string>& extra = {}) {
  const std::string d = dir.path() + "/" + name;
  std::vector<std::string> argv{"/usr/bin/memcached",
                                "-U",
                                "0",
                                "-u",
                                "root",
                                "-Z",
                                "-o",
                                "ssl_chain_cert=" + d + ".pem,ssl_key=" + d + ".key",
                                "-l",
                                "127.0.0.1:11311,notls:127.0.0.1:11312"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto child = std::make_unique<test::Child>(argv);
  const bool up = test::eventually([] {
    try {
      return test::memcached_request("127.0.0.1:11312", "version\r\n").rfind("VERSION", 0) == 0;
    } catch (const std::exception&) {
      return false;
    }
  });
  INFO(child->output());
  REQUIRE(up);
  return child;
}

std::string config(const std::string& address, const std::string& tls) {
  return "interval: 200ms\ntargets:\n  - { name: mc, address: \"" + address +
         "\", probe_interval: 200ms, tls: " + tls +
         " }\ncollectors:\n  netdev: { enabled: false }\n";
}

}  // namespace

TEST_CASE("tls: memcached with -Z is read over TLS with the CA that signed its certificate",
          "[integration][tls]") {
  test::enter_private_netns();
  test::TempDir dir;
  make_certificates(dir, "good", -1, 1);
  auto mc = tls_memcached(dir, "good");
  test::Daemon d(config("127.0.0.1:11311", "{ ca_file: " + dir.path() + "/good-ca.pem }"));
  const auto m = d.wait_for_metrics([](const std::string& text) {
    return test::metric_value(text, R"(memcached_up{target="mc"})") == 1 &&
           test::metric_value(text, R"(mcbacklog_probe_success{target="mc"})") == 1;
  });
  INFO(d.output());
  REQUIRE(m.has_value());
  CHECK(test::metric_value(*m, R"(memcached_max_connections{target="mc"})") == 1024);
}

TEST_CASE("tls: the wrong CA, an expired certificate and a plain server each give their reason",
          "[integration][tls]") {
  test::enter_private_netns();
  test::TempDir dir;
  make_certificates(dir, "good", -1, 1);
  make_certificates(dir, "other", -1, 1);
  make_certificates(dir, "old", -3, -1);
  std::string address = "127.0.0.1:11311";
  std::string tls;
  std::string reason;
  std::unique_ptr<test::Child> mc;
  SECTION("another CA") {
    mc = tls_memcached(dir, "good");
    tls = "{ ca_file: " + dir.path() + "/other-ca.pem }";
    reason =
        "TLS handshake with 127.0.0.1:11311 failed: certificate verify failed: unable to get "
        "local issuer certificate (memcached's certificate is not signed by a CA of "
        "tls.ca_file)";
  }
  SECTION("an expired certificate") {
    mc = tls_memcached(dir, "old");
    tls = "{ ca_file: " + dir.path() + "/old-ca.pem }";
    reason =
        "certificate verify failed: certificate has expired (memcached's certificate has "
        "expired: renew it)";
  }
  SECTION("a server without TLS") {
    mc = tls_memcached(dir, "good");
    address = "127.0.0.1:11312";
    tls = "{ ca_file: " + dir.path() + "/good-ca.pem }";
    reason = "does not speak TLS there";
  }
  std::unique_ptr<test::FakeServer> silent;
  SECTION("a server that takes the connection and never answers the handshake") {
    silent = std::make_unique<test::FakeServer>([](test::FakeConnection& c) { c.hold(); });
    address = silent->address();
    tls = "{ ca_file: " + dir.path() + "/good-ca.pem }";
    reason = "no answer by the deadline (a server that does not speak TLS there waits for more";
  }
  test::Daemon d(config(address, tls));
  const auto m = d.wait_for_metrics([](const std::string& text) {
    return test::metric_value(text, R"(memcached_up{target="mc"})") == 0;
  });
  REQUIRE(m.has_value());
  const bool logged =
      test::eventually([&] { return d.output().find(reason) != std::string::npos; });
  INFO(d.output());
  CHECK(logged);
  // Both the stats connection and the probe say why, in MemcachedDown's evidence.
  std::string body;
  const bool both = test::eventually([&] {
    const auto alerts = d.get("/alerts");
    body = alerts ? alerts->body : "";
    return body.find("stats failed: TLS handshake with") != std::string::npos &&
           body.find("probe failed: TLS handshake with") != std::string::npos;
  });
  INFO(body);
  CHECK(both);
  CHECK_THAT(body, !Contains("no reply to version"));
}

TEST_CASE("tls: a memcached with -Z at its connection limit is at its limit, not without TLS",
          "[integration][tls]") {
  test::enter_private_netns();
  test::TempDir dir;
  make_certificates(dir, "good", -1, 1);
  // -c 20 -t 1 serves 8 clients (collectors/memcached.hpp, ConnectionLimit).
  auto mc = tls_memcached(dir, "good", {"-c", "20", "-t", "1"});
  test::Daemon d(config("127.0.0.1:11311", "{ ca_file: " + dir.path() + "/good-ca.pem }"));
  REQUIRE(d.wait_for_metrics([](const std::string& text) {
    return test::metric_value(text, R"(memcached_up{target="mc"})") == 1;
  }));
  // Plain connections to the TLS port take memcached's descriptors as any client does; past the
  // limit memcached answers "ERROR Too many open connections" in plain text and closes.
  std::vector<test::Socket> held;
  for (int i = 0; i < 12; ++i) held.push_back(test::connect_tcp("127.0.0.1", 11311));
  std::string body;
  const bool named = test::eventually([&] {
    const auto alerts = d.get("/alerts");
    body = alerts ? alerts->body : "";
    return body.find("memcached answered in plain text") != std::string::npos;
  });
  INFO(body << "\n" << d.output());
  CHECK(named);
  CHECK_THAT(body, !Contains("does not speak TLS"));
  CHECK(test::metric_value(d.metrics(), R"(memcached_up{target="mc"})") == 1);
}
