// Each cause that can be driven on one machine, driven for real: a memcached 1.6.18 process pushed
// into it by real clients, watched by the built daemon, each test in its own network namespace
// (its own kernel counters and somaxconn). Each asserts the alert of that cause in /alerts and
// mcbacklog_alert_state, that the alerts of the other causes stay ok, and that `diagnose` names
// the cause in its report and exit code. CPU and NIC saturation are driven in cpu_test.cpp and
// nic_test.cpp.

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "config/config.hpp"
#include "daemon/alerts/alert_state.hpp"
#include "daemon/alerts/rules.hpp"
#include "tests/support/alerts.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/load.hpp"
#include "tests/support/memcached.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

// The daemon watching one memcached named "mc", sampling every 200 ms and probing every
// `probe_interval`, alerts with `for: 0s` (but three) and 5 s windows, so that each test takes
// seconds.
std::string config_for(const test::Memcached& mc, const std::string& probe_interval = "200ms") {
  std::string out = "interval: 200ms\ntargets:\n  - { name: mc, address: \"" + mc.address() +
                    "\", probe_interval: " + probe_interval +
                    " }\n"
                    "collectors:\n  netdev: { enabled: false }\n"
                    "  sockdiag: { sample_interval: 50ms, peak_window: 2s }\n"
                    "thresholds:\n";
  for (const Rule& rule : rules()) {
    const std::string alert(rule.name);
    // Three alerts need a second: a sample without an answer or one slow probe is a busy test
    // machine (five in a row would be MemcachedDown or ProbeSlow), and the burst of another
    // test's clients arriving is no sprawl (a churn that lasts is).
    const bool held =
        alert == "MemcachedDown" || alert == "ProbeSlow" || alert == "ConnectionSprawl";
    out += "  " + alert + ": { for: " + (held ? "1s" : "0s") + ", window: 5s }\n";
  }
  return out;
}

// Waits until the daemon's stats connection to memcached is open and answered.
void wait_up(test::Daemon& d) {
  const auto m = d.wait_for_metrics([](const std::string& text) {
    return test::metric_value(text, R"(memcached_up{target="mc"})") == 1;
  });
  INFO(d.output());
  REQUIRE(m.has_value());
}

using test::Alerts;
using test::check_ok;
using test::diagnose;
using test::Report;
using test::reports_firing;
using test::wait_for_alert;

// mcbacklog_alert_state in /metrics agrees: at least `level`.
void check_state_metric(test::Daemon& d, const std::string& alert, Level level) {
  const std::string series = "mcbacklog_alert_state{alert=\"" + alert + "\"" +
                             (alert == "ListenQueueOverflow" ? "" : ",target=\"mc\"") + "}";
  const auto m = d.wait_for_metrics([&](const std::string& text) {
    return test::metric_value(text, series).value_or(-1) >= static_cast<int>(level);
  });
  INFO(series);
  CHECK(m.has_value());
}

std::string listener(const test::Memcached& mc) { return "127.0.0.1:" + std::to_string(mc.port()); }

}  // namespace

TEST_CASE("causes: clients past -c are rejected and MaxConnectionsNear is critical",
          "[integration][causes]") {
  test::enter_private_netns();
  test::Memcached mc({"-c", "64"});
  // No probe: its connections would take a slot at the limit and free it again, and diagnose's
  // connection could get that slot.
  test::Daemon d(config_for(mc, "0"));
  wait_up(d);  // the daemon's stats connection holds its slot before the others are taken
  // With -c 64 memcached serves about 40 clients (it reserves descriptors); past that, its
  // default maxconns_fast accepts a client, says "ERROR Too many open connections" and closes.
  std::vector<std::unique_ptr<test::RawConnection>> served;
  int rejected = 0;
  int told = 0;
  for (int i = 0; i < 100 && rejected < 10; ++i) {
    auto c = std::make_unique<test::RawConnection>(mc.address());
    try {
      const std::string reply = c->request("version\r\n");
      if (reply.rfind("VERSION ", 0) == 0) {
        served.push_back(std::move(c));
        continue;
      }
      CHECK(reply == "ERROR Too many open connections\r\n");
      ++told;
    } catch (const std::exception& e) {
      INFO(e.what());  // closed before our request was read
    }
    ++rejected;
  }
  REQUIRE(rejected == 10);
  CHECK(told > 0);
  CHECK(served.size() < 44);

  const Alerts view = wait_for_alert(d, "MaxConnectionsNear", Level::kCritical,
                                     {"rejected with \"ERROR Too many open connections\""});
  check_state_metric(d, "MaxConnectionsNear", Level::kCritical);
  check_ok(view,
           {"MemcachedDown", "ListenQueueOverflow", "AcceptQueueFilling", "ConnectionSprawl",
            "MemcachedCpuSaturated", "SomaxconnTooLow", "SlowClients", "MemcachedMemoryFull"});

  // The running daemon has its connection and the history: --from-daemon reads its verdicts.
  const Report from =
      diagnose(d, {"--from-daemon", "--web.listen-address=127.0.0.1:" + std::to_string(d.port())});
  CHECK(from.exit_code == 2);
  CHECK_THAT(from.output, Contains("CRITICAL MaxConnectionsNear [mc]"));
  CHECK_THAT(from.output, Contains("connections rejected with"));

  // diagnose has no connection of its own yet: memcached refuses it too, and that is evidence.
  const Report r = diagnose(d);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Contains("stats failed: memcached replied \"ERROR Too many open "
                                "connections\""));
  CHECK_THAT(r.output, Contains("CRITICAL MaxConnectionsNear [mc]"));
  CHECK_THAT(r.output, Contains("memcached answered a new connection with \"ERROR Too many open "
                                "connections\""));
  CHECK_THAT(r.output, Contains("OK       MemcachedDown [mc]"));
}

TEST_CASE(
    "causes: past -c with no_maxconns_fast memcached stops accepting and its listener "
    "overflows",
    "[integration][causes]") {
  test::enter_private_netns();
  test::Memcached mc({"-c", "64", "-o", "no_maxconns_fast", "-b", "8"});
  test::Daemon d(config_for(mc));
  wait_up(d);
  // A client every 2 ms: memcached accepts them until it runs out of descriptors, then calls
  // listen(fd, 0). The kernel drops the handshakes of the rest, and again when they retry.
  std::vector<test::Socket> clients;
  clients.reserve(100);
  for (int i = 0; i < 100; ++i) {
    clients.push_back(test::connect_tcp("127.0.0.1", mc.port(), {.wait = false}));
    std::this_thread::sleep_for(2ms);
  }

  wait_for_alert(d, "ListenQueueOverflow", Level::kWarning,
                 {"memcached's listener overflowed: " + listener(mc) + " dropped"});
  const Alerts view = wait_for_alert(d, "MaxConnectionsNear", Level::kCritical,
                                     {"listener " + listener(mc) + " has a max queue of 0"});
  CHECK_THAT(test::evidence(view.at("MaxConnectionsNear")),
             Contains("memcached is not accepting now"));
  check_state_metric(d, "MaxConnectionsNear", Level::kCritical);
  check_state_metric(d, "ListenQueueOverflow", Level::kWarning);
  check_ok(view, {"MemcachedDown", "ConnectionSprawl", "MemcachedCpuSaturated", "SlowClients",
                  "MemcachedMemoryFull"});
  // -b 8 is below the floor, but these overflows are the connection limit's, not the backlog's.
  CHECK(view.at("SomaxconnTooLow").state == Level::kWarning);

  // diagnose's own connections get no answer (no handshake, or one left in the queue): evidence,
  // and not memcached being down.
  const Report r = diagnose(d);
  CHECK(r.exit_code == 2);
  INFO(r.output);
  CHECK(std::regex_search(r.output,
                          std::regex("stats failed: .*(no connection by the deadline|no reply)")));
  CHECK_THAT(r.output, Contains("max queue 0: not accepting"));
  CHECK_THAT(r.output, Contains("CRITICAL MaxConnectionsNear [mc]"));
  CHECK_THAT(r.output, Contains("OK       MemcachedDown [mc]"));
  CHECK_THAT(r.output, Contains("memcached runs and stopped accepting"));
}

TEST_CASE(
    "causes: an overflow at memcached's second listener (-l with two ports) is memcached's, "
    "critical",
    "[integration][causes]") {
  test::enter_private_netns();
  // The daemon is given the first port only; memcached's settings name the second.
  const std::uint16_t second = test::free_port("127.0.0.1");
  test::Memcached mc({"-l", "127.0.0.1:" + std::to_string(second), "-b", "4"});
  test::Daemon d(config_for(mc));
  wait_up(d);
  const std::string second_listener = "127.0.0.1:" + std::to_string(second);
  const std::string second_max =
      "mcbacklog_accept_queue_max{address=\"127.0.0.1\",port=\"" + std::to_string(second) + "\"}";
  const auto watched = d.wait_for_metrics(
      [&](const std::string& text) { return test::metric_value(text, second_max) == 4; });
  INFO(d.output());
  REQUIRE(watched.has_value());

  // memcached stalls; a burst at its second port overflows the 4 it asked for.
  mc.pause();
  std::vector<test::Socket> burst;
  burst.reserve(40);
  for (int i = 0; i < 40; ++i) {
    burst.push_back(test::connect_tcp("127.0.0.1", second, {.wait = false}));
  }
  const Alerts view =
      wait_for_alert(d, "ListenQueueOverflow", Level::kCritical,
                     {"memcached's listener overflowed: " + second_listener + " dropped"});
  mc.resume();
  CHECK_THAT(test::evidence(view.at("ListenQueueOverflow")),
             !Contains("the overflows are on another listener"));
  CHECK(view.at("AcceptQueueFilling").condition == Level::kCritical);
  CHECK_THAT(test::evidence(view.at("AcceptQueueFilling")),
             Contains("accept queue of " + second_listener));
}

TEST_CASE("causes: diagnose names an overflow at memcached's second listener as memcached's",
          "[integration][causes]") {
  test::enter_private_netns();
  const std::uint16_t second = test::free_port("127.0.0.1");
  const std::string port = std::to_string(second);
  test::Memcached mc({"-l", "127.0.0.1:" + port, "-b", "4"});
  test::Daemon d(config_for(mc));
  wait_up(d);
  test::Child diagnose(
      {test::daemon_binary(), "diagnose", "--wait=3s", "--config.file=" + d.config_path()});
  // Once its first sample is taken (with memcached's settings, which name the second port),
  // memcached stalls and a burst at the second port overflows it; memcached is served again well
  // before the second sample.
  REQUIRE(diagnose.wait_for_output(std::regex("sample 1 of 2 taken"), 30s));
  mc.pause();
  std::vector<test::Socket> burst;
  burst.reserve(40);
  for (int i = 0; i < 40; ++i) {
    burst.push_back(test::connect_tcp("127.0.0.1", second, {.wait = false}));
  }
  const auto dropped = d.wait_for_metrics([&](const std::string& text) {
    return test::metric_value(text,
                              "mcbacklog_accept_queue_drops_total{address=\"127.0.0.1\","
                              "port=\"" +
                                  port + "\"}") > 0;
  });
  mc.resume();
  REQUIRE(dropped.has_value());
  const auto code = diagnose.wait_exit(30s);
  const std::string out = diagnose.output();
  INFO(out);
  REQUIRE(code.has_value());
  CHECK(*code == 2);
  CHECK_THAT(out, Contains("CRITICAL ListenQueueOverflow"));
  CHECK_THAT(out, Contains("memcached's listener overflowed: 127.0.0.1:" + port + " dropped"));
  CHECK_THAT(out, !Contains("the overflows are on another listener"));
}

TEST_CASE("causes: net.core.somaxconn below -b cuts memcached's backlog and SomaxconnTooLow fires",
          "[integration][causes]") {
  test::enter_private_netns();
  const std::string somaxconn = "/proc/sys/net/core/somaxconn";  // this namespace's own
  std::ofstream(somaxconn) << "64\n";
  REQUIRE(test::read_text_file(somaxconn) == "64\n");
  test::Memcached mc;  // -b 1024, memcached's default
  test::Daemon d(config_for(mc));

  Alerts view = wait_for_alert(
      d, "SomaxconnTooLow", Level::kWarning,
      {"memcached asks for 1024 (-b), net.core.somaxconn is 64", "cuts -b down to somaxconn"});
  check_state_metric(d, "SomaxconnTooLow", Level::kWarning);
  check_ok(view,
           {"MemcachedDown", "ListenQueueOverflow", "AcceptQueueFilling", "ConnectionSprawl",
            "MaxConnectionsNear", "MemcachedCpuSaturated", "SlowClients", "MemcachedMemoryFull"});

  // A burst while memcached stalls for a moment overflows the 64 the kernel left it.
  const std::string drops = "mcbacklog_accept_queue_drops_total{address=\"127.0.0.1\",port=\"" +
                            std::to_string(mc.port()) + "\"}";
  mc.pause();
  std::vector<test::Socket> burst;
  burst.reserve(100);
  for (int i = 0; i < 100; ++i) {
    burst.push_back(test::connect_tcp("127.0.0.1", mc.port(), {.wait = false}));
  }
  const auto dropped = d.wait_for_metrics(
      [&](const std::string& text) { return test::metric_value(text, drops).value_or(0) > 0; });
  mc.resume();
  REQUIRE(dropped.has_value());

  view = wait_for_alert(
      d, "SomaxconnTooLow", Level::kCritical,
      {"its listener overflowed with a backlog under 1024: " + listener(mc) + " dropped"});
  CHECK(view.at("ListenQueueOverflow").state != Level::kOk);
  CHECK_THAT(test::evidence(view.at("ListenQueueOverflow")),
             Contains("memcached's listener overflowed: " + listener(mc) + " dropped"));
  // The burst itself is a hundred new connections: ConnectionSprawl may say so.
  check_ok(view, {"MemcachedDown", "MaxConnectionsNear", "MemcachedCpuSaturated", "SlowClients",
                  "MemcachedMemoryFull"});

  const Report r = diagnose(d);
  CHECK(r.exit_code >= 1);
  INFO(r.output);
  CHECK(reports_firing(r, "SomaxconnTooLow"));
  CHECK_THAT(r.output, Contains("net.core.somaxconn is 64"));
}

TEST_CASE(
    "causes: somaxconn raised after memcached listened leaves its backlog cut, and "
    "SomaxconnTooLow holds until a restart",
    "[integration][causes]") {
  test::enter_private_netns();
  const std::string somaxconn = "/proc/sys/net/core/somaxconn";  // this namespace's own
  std::ofstream(somaxconn) << "128\n";
  auto mc = std::make_unique<test::Memcached>();  // -b 1024: the kernel gives it 128
  std::ofstream(somaxconn) << "4096\n";
  REQUIRE(test::read_text_file(somaxconn) == "4096\n");
  test::Daemon d(config_for(*mc));

  // The kernel's max queue of the listener (ss -ltn Send-Q) is still 128.
  const Alerts view = wait_for_alert(
      d, "SomaxconnTooLow", Level::kWarning,
      {"listen backlog 128: memcached asks for 1024 (-b), net.core.somaxconn is 4096",
       "restart memcached"});
  CHECK(view.at("SomaxconnTooLow").verdict->value == 128);

  // Restarted on the same port, memcached listens with its 1024.
  const std::uint16_t port = mc->port();
  mc.reset();
  test::Memcached again({}, test::Memcached::Listen::tcp("127.0.0.1", port));
  const Alerts after =
      wait_for_alert(d, "SomaxconnTooLow", Level::kOk, {"listen backlog 1024"}, "mc", false);
  CHECK(after.at("SomaxconnTooLow").state == Level::kOk);
}

TEST_CASE("causes: clients connecting per request without a pool are ConnectionSprawl, named",
          "[integration][causes]") {
  test::enter_private_netns();
  test::Memcached mc;
  test::Daemon d(config_for(mc));
  wait_up(d);
  // Two application hosts, six request threads each, every request on a new connection.
  test::ConnectionChurn churn("127.0.0.1", mc.port(), {"127.0.0.2", "127.0.0.3"}, 6, 10ms);

  const Alerts view = wait_for_alert(d, "ConnectionSprawl", Level::kWarning,
                                     {"new connections/s", "127.0.0.2 (", "127.0.0.3 ("});
  INFO(churn.connections() << " connections, " << churn.errors()
                           << " errors, the last: " << churn.last_error());
  CHECK(view.at("ConnectionSprawl").verdict->value.value_or(0) >= 100);
  check_state_metric(d, "ConnectionSprawl", Level::kWarning);
  check_ok(view,
           {"MemcachedDown", "ListenQueueOverflow", "AcceptQueueFilling", "MaxConnectionsNear",
            "MemcachedCpuSaturated", "SomaxconnTooLow", "SlowClients", "MemcachedMemoryFull"});

  const Report r = diagnose(d);
  CHECK(r.exit_code >= 1);
  INFO(r.output);
  CHECK(reports_firing(r, "ConnectionSprawl"));
  CHECK_THAT(r.output, Contains("127.0.0.2"));
  CHECK(churn.errors() == 0);
}

TEST_CASE("causes: clients that do not read their large replies are SlowClients",
          "[integration][causes]") {
  test::enter_private_netns();
  test::Memcached mc;
  test::Daemon d(config_for(mc));
  const std::string big(std::size_t{512} * 1024, 'b');
  test::RawConnection writer(mc.address());
  REQUIRE(
      writer.request("set big 0 0 " + std::to_string(big.size()) + "\r\n" + big + "\r\nversion\r\n")
          .rfind("STORED\r\n", 0) == 0);
  // Twelve clients with a small receive window each ask for 2 MiB and read none of it.
  std::vector<test::Socket> slow;
  slow.reserve(12);
  for (int i = 0; i < 12; ++i) {
    slow.push_back(
        test::connect_tcp("127.0.0.1", mc.port(), {.source = "127.0.0.3", .receive_buffer = 4096}));
    test::send_all(slow.back(), "get big big big big\r\n");
  }

  // Twelve connections are no move of memcached's counters that walks the connections every
  // sample (10 new a second, or a rise of 5 % of -c): they are seen at the next walk, within
  // connections_interval (30 s) and a sample.
  const Alerts view =
      wait_for_alert(d, "SlowClients", Level::kCritical,
                     {"12 connections to 127.0.0.1:" + std::to_string(mc.port()) + " hold unread"},
                     "mc", false, std::chrono::seconds(50));
  check_state_metric(d, "SlowClients", Level::kCritical);
  check_ok(view, {"MemcachedDown", "ListenQueueOverflow", "AcceptQueueFilling", "ConnectionSprawl",
                  "MaxConnectionsNear", "MemcachedCpuSaturated", "SomaxconnTooLow",
                  "MemcachedMemoryFull"});

  const Report r = diagnose(d);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Contains("CRITICAL SlowClients [mc]"));
  CHECK_THAT(r.output, Contains("12 with unread replies"));
}

TEST_CASE("causes: memory filled past -m with evictions is MemcachedMemoryFull",
          "[integration][causes]") {
  test::enter_private_netns();
  test::Memcached mc({"-m", "8"});
  test::Daemon d(config_for(mc));
  wait_up(d);  // a sample before the evictions, so that they are seen rising
  // Three times -m in 3000-byte items, then a writer that keeps storing new ones.
  test::fill_cache("127.0.0.1", mc.port(), std::size_t{24} << 20, 3000);
  test::PooledLoad writer("127.0.0.1", mc.port(),
                          {.threads = 1, .value_bytes = 3000, .pause = 1ms, .new_keys = true});

  const Alerts view =
      wait_for_alert(d, "MemcachedMemoryFull", Level::kWarning, {"items evicted in the last 5s"});
  // 3000-byte items sit in 3632-byte slab chunks: memcached evicts with `bytes` near 84% of -m.
  CHECK(view.at("MemcachedMemoryFull").verdict->value.value_or(0) > 0.8);
  CHECK(view.at("MemcachedMemoryFull").verdict->value.value_or(0) < 0.9);
  check_state_metric(d, "MemcachedMemoryFull", Level::kWarning);
  check_ok(view, {"MemcachedDown", "ListenQueueOverflow", "AcceptQueueFilling", "ConnectionSprawl",
                  "MaxConnectionsNear", "MemcachedCpuSaturated", "SomaxconnTooLow", "SlowClients"});

  const Report r = diagnose(d);
  CHECK(r.exit_code >= 1);
  INFO(r.output);
  CHECK(reports_firing(r, "MemcachedMemoryFull"));
  CHECK_THAT(r.output, Contains("items evicted"));
  INFO(writer.last_error());
  CHECK(writer.errors() == 0);
}

TEST_CASE("causes: a healthy memcached under steady pooled load fires nothing",
          "[integration][causes]") {
  test::enter_private_netns();
  test::Memcached mc;
  test::Daemon d(config_for(mc));
  wait_up(d);
  test::PooledLoad load("127.0.0.1", mc.port(), {});

  // Every scrape over ten of the daemon's samples under load: all alerts ok.
  std::set<double> samples;  // memcached_read_bytes_total grows with each sample under load
  std::set<std::string> evaluated;
  std::map<std::string, double> fired;
  const bool enough = test::eventually(
      [&] {
        const std::string text = d.metrics();
        for (const auto& [series, value] : test::parse_metrics(text)) {
          // Neither a firing state nor a condition: nothing pending either.
          const bool state = series.rfind("mcbacklog_alert_state{", 0) == 0;
          if (!state && series.rfind("mcbacklog_alert_condition{", 0) != 0) continue;
          if (state) evaluated.insert(series);
          if (value != 0) fired[series] = value;
        }
        samples.insert(
            test::metric_value(text, R"(memcached_read_bytes_total{target="mc"})").value_or(0));
        return samples.size() > 10;
      },
      30s);
  REQUIRE(enough);
  CHECK(evaluated.size() == 10);  // every alert of the catalogue but NetworkSaturated (no NIC)
  for (const auto& [series, value] : fired) {
    INFO(series << " " << value << "\n" << test::describe(test::alerts_of(test::alerts(d), "mc")));
    CHECK(value == 0);
  }
  INFO(load.last_error());
  CHECK(load.operations() > 1000);
  CHECK(load.errors() == 0);

  const Report r = diagnose(d);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Contains("Result: OK"));
}
