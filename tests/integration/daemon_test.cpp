// The built daemon as a black box: golden /metrics from fixture files, promtool, flags, reload,
// shutdown. Each test runs in its own network namespace.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>

#include "daemon/alerts/rules.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/memcached.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

std::string fixture_config(const std::string& extra = "") {
  const std::string fixtures = test::source_dir() + "/tests/fixtures";
  return "interval: 100ms\n"
         "targets: []\n"
         "collectors:\n"
         "  sockdiag: { enabled: false }\n"
         // The fixture's sysfs holds speeds only, so no device is chosen by what backs it.
         "  netdev: { include: \".\" }\n"
         "paths: { procfs: " +
         fixtures + "/proc, sysfs: " + fixtures + "/sys }\n" + extra;
}

// Series whose values change from run to run.
std::vector<std::string> volatile_families() {
  return {"process_", "mcbacklog_collector_duration_seconds", "mcbacklog_build_info"};
}

}  // namespace

TEST_CASE("daemon: pointed at fixture files it serves the golden /metrics",
          "[integration][golden]") {
  test::enter_private_netns();
  test::Daemon d(fixture_config());
  d.metrics();
  // Utilisation needs two runs; with the fixture's constant counters it is then 0.
  const auto settled = d.wait_for_metrics([](const std::string& m) {
    return m.find("mcbacklog_network_utilization_ratio{") != std::string::npos;
  });
  REQUIRE(settled.has_value());
  const std::string& body = *settled;
  const std::string stable = test::drop_families(body, volatile_families());
  const std::string golden_path = test::source_dir() + "/tests/fixtures/golden/metrics.txt";
  if (std::getenv("MCBACKLOGD_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(golden_path) << stable;
    WARN("golden file rewritten: " + golden_path);
  }
  CHECK(stable == test::read_text_file(golden_path));
  // The volatile series are there, just not compared.
  CHECK(test::metric_value(body, "process_open_fds").has_value());
  CHECK(body.find("mcbacklog_build_info{") != std::string::npos);
}

TEST_CASE("daemon: its /metrics passes promtool check metrics", "[integration][promtool]") {
  test::enter_private_netns();
  const auto promtool = test::run_command("command -v promtool");
  REQUIRE(promtool.exit_code == 0);  // scripts/bootstrap installs the prometheus package
  test::Daemon d(fixture_config());
  test::TempDir dir;
  const std::string file = dir.write("metrics.txt", d.metrics());
  const auto r = test::run_command("promtool check metrics < " + file);
  INFO(r.output);
  CHECK(r.exit_code == 0);
}

TEST_CASE("daemon: /metrics is gzip-compressed when the scraper asks", "[integration][http]") {
  test::enter_private_netns();
  test::Daemon d(fixture_config());
  const std::string plain = d.metrics();
  auto zipped = d.get("/metrics", {{"Accept-Encoding", "gzip"}});
  REQUIRE(zipped.ok());
  CHECK(zipped->headers["content-encoding"] == "gzip");
  const std::string unzipped = test::gunzip(zipped->body);
  CHECK(test::metric_value(unzipped, "mcbacklog_somaxconn") == 4096);
}

TEST_CASE("daemon: a failing collector is reported and does not fail the scrape",
          "[integration][scheduler]") {
  test::enter_private_netns();
  test::TempDir procfs;
  procfs.write("sys/net/core/somaxconn", "512\n");  // no net/netstat: that collector fails
  test::Daemon d(
      "interval: 100ms\ntargets: []\ncollectors: { sockdiag: { enabled: false }, "
      "netdev: { enabled: false } }\npaths: { procfs: " +
      procfs.path() + " }\n");
  const std::string body = d.metrics();
  CHECK(test::metric_value(body, R"(mcbacklog_collector_success{collector="netstat"})") == 0);
  CHECK(test::metric_value(body, R"(mcbacklog_collector_success{collector="sysctl"})") == 1);
  CHECK(test::metric_value(body, "mcbacklog_somaxconn") == 512);
  CHECK_FALSE(test::metric_value(body, "mcbacklog_listen_overflows_total").has_value());
  CHECK(test::eventually(
      [&] { return d.output().find("collector netstat failed") != std::string::npos; }));
}

TEST_CASE("daemon: real listen overflows in its namespace show in mcbacklog_listen_overflows_total",
          "[integration][netstat]") {
  test::enter_private_netns();
  // A listener with a queue of 1 that never accepts, and clients that keep connecting.
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(listener, 1) == 0);
  socklen_t len = sizeof a;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);

  // No listener is watched, so nothing tells the daemon to read the counters sooner than their
  // interval: read them every sample here.
  test::Daemon d("interval: 100ms\ntargets: []\ncollectors: { netstat: { interval: 0 } }\n");
  const double before = test::metric_value(d.metrics(), "mcbacklog_listen_overflows_total").value();
  std::vector<int> clients;
  for (int i = 0; i < 20; ++i) {
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    (void)::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);  // EINPROGRESS
    clients.push_back(c);
  }
  auto rising = d.wait_for_metrics([&](const std::string& m) {
    return test::metric_value(m, "mcbacklog_listen_overflows_total").value_or(0) > before;
  });
  REQUIRE(rising.has_value());
  for (int c : clients) ::close(c);
  ::close(listener);

  // Once the clients are gone the counter settles; then ours equals the kernel's.
  auto kernel_overflows = [] {
    const std::string t = test::read_text_file("/proc/net/netstat");
    const auto names = t.substr(0, t.find('\n'));
    const auto values =
        t.substr(names.size() + 1, t.find('\n', names.size() + 1) - names.size() - 1);
    std::istringstream n(names), v(values);
    std::string name, value;
    while (n >> name && v >> value) {
      if (name == "ListenOverflows") return std::stod(value);
    }
    return -1.0;
  };
  auto settled = d.wait_for_metrics([&](const std::string& m) {
    return test::metric_value(m, "mcbacklog_listen_overflows_total") == kernel_overflows();
  });
  REQUIRE(settled.has_value());
  CHECK(test::metric_value(*settled, "mcbacklog_listen_overflows_total") > before);
  CHECK(test::metric_value(*settled, "mcbacklog_listen_drops_total") >=
        test::metric_value(*settled, "mcbacklog_listen_overflows_total"));
}

TEST_CASE("daemon: --check-config accepts a good file and refuses a bad one with its position",
          "[integration][config]") {
  test::TempDir dir;
  const std::string good = dir.write("good.yaml", "interval: 2s\n");
  const std::string bad =
      dir.write("bad.yaml", "interval: 2s\ncollectors:\n  netstat: { enabled: yes please }\n");
  const std::string bin = test::daemon_binary();
  auto ok = test::run_command(bin + " --check-config --config.file=" + good);
  CHECK(ok.exit_code == 0);
  CHECK_THAT(ok.output, Contains("good.yaml: configuration is valid"));
  auto ko = test::run_command(bin + " --check-config --config.file=" + bad);
  CHECK(ko.exit_code == 1);
  CHECK_THAT(ko.output,
             Contains("bad.yaml:3:23: collectors.netstat.enabled: expected true or false"));
  auto missing =
      test::run_command(bin + " --check-config --config.file=" + dir.path() + "/none.yaml");
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.output, Contains("none.yaml: cannot open"));
}

TEST_CASE(
    "daemon: --check-config refuses a target's TLS file that does not load and warns of a "
    "network namespace that is not there",
    "[integration][config]") {
  test::TempDir dir;
  const std::string bin = test::daemon_binary();
  const std::string tls = dir.write(
      "tls.yaml", "targets:\n  - { name: mc, address: \"127.0.0.1:11211\", tls: { ca_file: " +
                      dir.path() + "/absent-ca.pem } }\n");
  auto ko = test::run_command(bin + " --check-config --config.file=" + tls);
  CHECK(ko.exit_code == 1);
  CHECK_THAT(ko.output, Contains("tls.yaml:2:61: targets[0].tls.ca_file: " + dir.path() +
                                 "/absent-ca.pem: cannot open: No such file or directory"));
  CHECK_THAT(ko.output, !Contains("configuration is valid"));
  const std::string netns = dir.write(
      "netns.yaml", "targets:\n  - { name: a, address: \"127.0.0.1:11211\", netns: " + dir.path() +
                        "/no-such-netns }\n  - { name: b, address: "
                        "\"127.0.0.1:11212\", netns_pid: 4194000 }\n");
  auto warned = test::run_command(bin + " --check-config --config.file=" + netns);
  CHECK(warned.exit_code == 0);
  CHECK_THAT(warned.output, Contains("netns.yaml:2:51: targets[0].netns: warning: network "
                                     "namespace " +
                                     dir.path() + "/no-such-netns: no such file"));
  CHECK_THAT(warned.output, Contains("netns.yaml:3:55: targets[1].netns_pid: warning: network "
                                     "namespace /proc/4194000/ns/net: no process 4194000"));
  CHECK_THAT(warned.output, Contains("configuration is valid"));
}

TEST_CASE(
    "daemon: --check-config and the start show the errors of the named files and of the web "
    "configuration together, every TLS file that does not load",
    "[integration][config]") {
  test::TempDir dir;
  const std::string bin = test::daemon_binary();
  const std::string web =
      dir.write("web.yaml", "tls_server_config: { cert_file: " + dir.path() +
                                "/absent.crt, key_file: " + dir.path() + "/absent.key }\n");
  const std::string file = dir.write(
      "both.yaml", "web: { config_file: " + web +
                       " }\ntargets:\n  - { name: mc, address: \"127.0.0.1:11211\", tls: { "
                       "ca_file: " +
                       dir.path() + "/absent-ca.pem, cert_file: " + dir.path() +
                       "/absent-client.crt, key_file: " + dir.path() + "/absent-client.key } }\n");
  for (const std::string flag : {"--check-config", "--web.listen-address=127.0.0.1:0"}) {
    CAPTURE(flag);
    auto ko = test::run_command(bin + " " + flag + " --config.file=" + file);
    CHECK(ko.exit_code == 1);
    CHECK_THAT(ko.output, Contains("both.yaml:3:61: targets[0].tls.ca_file: " + dir.path() +
                                   "/absent-ca.pem: cannot open"));
    CHECK_THAT(ko.output,
               Contains("both.yaml:3:") &&
                   Contains("targets[0].tls.cert_file: " + dir.path() + "/absent-client.crt"));
    CHECK_THAT(ko.output,
               Contains("targets[0].tls.key_file: " + dir.path() + "/absent-client.key"));
    CHECK_THAT(ko.output, Contains("web.yaml:1:33: tls_server_config.cert_file: " + dir.path() +
                                   "/absent.crt: cannot open"));
    CHECK_THAT(ko.output, Contains("tls_server_config.key_file: " + dir.path() + "/absent.key"));
    CHECK_THAT(ko.output, !Contains("configuration is valid"));
  }
}

TEST_CASE("daemon: --version, --help and bad flags", "[integration][flags]") {
  const std::string bin = test::daemon_binary();
  auto v = test::run_command(bin + " --version");
  CHECK(v.exit_code == 0);
  CHECK_THAT(v.output, Contains("mcbacklogd 0."));
  auto h = test::run_command(bin + " --help");
  CHECK(h.exit_code == 0);
  CHECK_THAT(h.output, Contains("--web.listen-address"));
  auto bad = test::run_command(bin + " --frobnicate");
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.output, Contains("unknown argument \"--frobnicate\""));
  auto empty = test::run_command(bin + " --check-config --web.config.file=");
  CHECK(empty.exit_code == 2);
  CHECK_THAT(empty.output, Contains("--web.config.file needs a value, not an empty one"));
  // A bad flag value is a bad flag: exit 2. A name would be looked up without a deadline.
  auto named = test::run_command(bin + " --check-config --web.listen-address=1.2.3.4.5:9741");
  CHECK(named.exit_code == 2);
  CHECK_THAT(named.output, Contains("--web.listen-address: address \"1.2.3.4.5:9741\": the host "
                                    "must be an IP address of this host"));
  test::TempDir dir;
  const std::string file =
      dir.write("named.yaml", "targets: []\nweb:\n  listen_address: \"1.2.3.4.5:9741\"\n");
  auto in_file = test::run_command(bin + " --check-config --config.file=" + file);
  CHECK(in_file.exit_code == 1);
  CHECK_THAT(in_file.output, Contains("named.yaml:3:19: web.listen_address: address "
                                      "\"1.2.3.4.5:9741\": the host must be an IP address"));
}

TEST_CASE("daemon: SIGHUP with a bad file keeps the running configuration, a good one applies",
          "[integration][reload]") {
  test::enter_private_netns();
  test::Daemon d(fixture_config());
  CHECK(test::metric_value(d.metrics(), "mcbacklog_somaxconn") == 4096);

  std::ofstream(d.config_path())
      << "interval: 100ms\ncollectors:\n  sysctl: { enabled: nope }\n  netstat: { enabled: 2 }\n";
  const std::size_t mark = d.output().size();
  d.process().signal(SIGHUP);
  // One event, one line, per error (a text log holds one line per event).
  auto logged = d.process().wait_for_output(
      std::regex("error reload failed, keeping the running configuration: [^\\n]*"
                 "mcbacklogd.yaml:3:22: [^\\n]*\\n[^\\n]* error reload failed, keeping the running "
                 "configuration: [^\\n]*mcbacklogd.yaml:4:23: "),
      10s, mark);
  INFO(d.output().substr(mark));
  CHECK(logged.has_value());
  // Still serving, still sampling with the old configuration.
  auto still = d.wait_for_metrics(
      [](const std::string& m) { return test::metric_value(m, "mcbacklog_somaxconn") == 4096; });
  CHECK(still.has_value());

  // The same fixture config with the sysctl collector off.
  std::ofstream(d.config_path()) << "interval: 100ms\ntargets: []\ncollectors:\n"
                                    "  sockdiag: { enabled: false }\n  sysctl: { enabled: false }\n"
                                    "paths: { procfs: " +
                                        test::source_dir() + "/tests/fixtures/proc }\n";
  d.process().signal(SIGHUP);
  auto applied = d.wait_for_metrics([](const std::string& m) {
    return !test::metric_value(m, "mcbacklog_somaxconn").has_value() &&
           test::metric_value(m, "mcbacklog_listen_overflows_total").has_value();
  });
  CHECK(applied.has_value());
  CHECK(d.process().running());
}

TEST_CASE("daemon: SIGTERM stops it with exit code 0 within a second", "[integration][signals]") {
  test::enter_private_netns();
  test::Daemon d(fixture_config());
  d.metrics();
  d.process().signal(SIGTERM);
  const auto code = d.process().wait_exit(1s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK_THAT(d.output(), Contains("received SIGTERM, stopping"));
}

TEST_CASE("daemon: a listen address in use is a clear error and exit code 1",
          "[integration][http]") {
  test::enter_private_netns();
  test::Daemon first(fixture_config());
  auto r = test::run_command(test::daemon_binary() +
                             " --web.listen-address=127.0.0.1:" + std::to_string(first.port()));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Contains("cannot listen on 127.0.0.1:" + std::to_string(first.port())));
}

TEST_CASE("daemon: --log.format=json writes one JSON object per line", "[integration][logging]") {
  test::enter_private_netns();
  test::Daemon d(fixture_config(), {"--log.format=json"});
  d.metrics();
  std::istringstream lines(d.output());
  std::string line;
  int parsed = 0;
  while (std::getline(lines, line)) {
    std::istringstream in(line);
    boost::property_tree::ptree tree;
    INFO(line);
    REQUIRE_NOTHROW(boost::property_tree::read_json(in, tree));
    CHECK(tree.get<std::string>("ts").size() == 24);
    CHECK_FALSE(tree.get<std::string>("level").empty());
    CHECK_FALSE(tree.get<std::string>("msg").empty());
    ++parsed;
  }
  CHECK(parsed >= 3);
}

TEST_CASE("daemon: serves a runbook page per alert, live, and an index linking them",
          "[integration][runbooks]") {
  test::enter_private_netns();
  test::Memcached mc({"-c", "64"});
  test::Daemon d("interval: 200ms\ntargets:\n  - { name: mc, address: \"" + mc.address() +
                 "\" }\ncollectors:\n  netdev: { enabled: false }\n");
  d.metrics();
  const auto index = d.get("/runbooks/");
  REQUIRE(index.ok());
  CHECK(index->status == 200);
  CHECK(index->headers.at("content-type") == "text/html; charset=utf-8");
  for (const Rule& rule : rules()) {
    const std::string name(rule.name);
    INFO(name);
    CHECK_THAT(index->body, Contains("href=\"/runbooks/" + name + "\""));
    const auto page = d.get("/runbooks/" + name);
    REQUIRE(page.ok());
    CHECK(page->status == 200);
    CHECK_THAT(page->body, Contains("<h1>" + name + "</h1>"));
    CHECK_THAT(page->body, Contains("<h2>On this host now</h2>"));
    // Its current state here; no NIC is watched (netdev is off), so NetworkSaturated has none.
    CHECK_THAT(page->body,
               Contains(rule.subject == Subject::kDevice ? "no subject on this host"
                                                         : "<span class=\"ok\">ok</span>"));
    CHECK_THAT(page->body, !Contains("<script"));
  }
  const auto missing = d.get("/runbooks/NoSuchAlert");
  REQUIRE(missing.ok());
  CHECK(missing->status == 404);
}
