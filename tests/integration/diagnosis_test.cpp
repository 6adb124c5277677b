// The field's cases of wrong or late verdicts, each driven for real: memcached processes (or a
// fake server where real memcached cannot produce the case) watched by the built daemon, each
// test in its own network namespace. They assert the verdict, its evidence and fix, and what
// `diagnose` prints and exits with; never how fast (bench/detect measures that).

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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

// A daemon sampling every 200 ms with alerts at `for: 1s` (the table's own windows), watching
// `targets` ("name: address" pairs, probes every 200 ms).
std::string config_for(const std::vector<std::pair<std::string, std::string>>& targets,
                       const std::string& extra = "") {
  std::string out = "interval: 200ms\ntargets:\n";
  for (const auto& [name, address] : targets) {
    out += "  - { name: " + name + ", address: \"" + address + "\", probe_interval: 200ms }\n";
  }
  out +=
      "collectors:\n  netdev: { enabled: false }\n"
      "  sockdiag: { sample_interval: 50ms, peak_window: 2s }\n"
      "thresholds:\n";
  for (const Rule& rule : rules()) out += "  " + std::string(rule.name) + ": { for: 1s }\n";
  return out + extra;
}

void wait_up(test::Daemon& d, const std::string& target) {
  const auto m = d.wait_for_metrics([&](const std::string& text) {
    return test::metric_value(text, "memcached_up{target=\"" + target + "\"}") == 1;
  });
  INFO(d.output());
  REQUIRE(m.has_value());
}

// Adds `address` to the loopback device of the test's namespace.
void add_loopback_address(const std::string& address) {
  test::Child ip({"/bin/ip", "addr", "add", address, "dev", "lo"});
  const auto code = ip.wait_exit(10s);
  INFO(ip.output());
  REQUIRE(code == 0);
}

// Drives the memcached at `host`:`port` (-c 64, no_maxconns_fast) past its limit: clients
// connect until it stops accepting.
std::vector<test::Socket> fill_past_limit(const std::string& host, std::uint16_t port) {
  std::vector<test::Socket> clients;
  clients.reserve(80);
  for (int i = 0; i < 80; ++i) {
    clients.push_back(test::connect_tcp(host, port, {.wait = false}));
    std::this_thread::sleep_for(2ms);
  }
  return clients;
}

}  // namespace

TEST_CASE("diagnosis: two memcached on one port at different addresses are judged apart",
          "[integration][diagnosis]") {
  test::enter_private_netns();
  test::Memcached full({"-c", "64", "-o", "no_maxconns_fast"},
                       test::Memcached::Listen::tcp("127.0.0.2"));
  test::Memcached healthy({}, test::Memcached::Listen::tcp("127.0.0.1", full.port()));
  test::Daemon d(config_for({{"healthy", healthy.address()}, {"full", full.address()}}));
  wait_up(d, "healthy");
  wait_up(d, "full");
  const auto clients = fill_past_limit("127.0.0.2", full.port());

  const auto full_view = test::wait_for_alert(
      d, "MaxConnectionsNear", Level::kCritical,
      {"listener 127.0.0.2:" + std::to_string(full.port()) + " has a max queue of 0"}, "full");
  // The connections are walked every sample while the other is at its limit: the healthy one's
  // listener has only the daemon's own connection.
  const test::Alerts healthy_view = test::wait_for_alert(
      d, "ConnectionSprawl", Level::kOk, {"1 connection established from 1 client"}, "healthy");
  test::check_ok(healthy_view,
                 {"MemcachedDown", "MaxConnectionsNear", "AcceptQueueFilling", "SlowClients"});

  // The healthy one dies: it is down, and the other's open listener on the same port does not
  // make it look alive.
  healthy.kill();
  test::wait_for_alert(d, "MemcachedDown", Level::kCritical, {}, "healthy");
  CHECK(test::alerts_of(test::alerts(d), "full").at("MemcachedDown").state == Level::kOk);
}

TEST_CASE("diagnosis: diagnose past -c says the listener stopped accepting and counts its drops",
          "[integration][diagnosis]") {
  test::enter_private_netns();
  test::Memcached full({"-c", "64", "-o", "no_maxconns_fast", "-b", "4"});
  test::Daemon d(config_for({{"full", full.address()}}));
  wait_up(d, "full");
  const auto clients = fill_past_limit("127.0.0.1", full.port());
  test::wait_for_alert(d, "ListenQueueOverflow", Level::kWarning, {"memcached's listener"});
  const test::Report r = test::diagnose(d);
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(test::reports_firing(r, "MaxConnectionsNear", "full"));
  // "N connections dropped", in words a person reads: the noun takes the plural.
  CHECK_THAT(r.output,
             Catch::Matchers::Matches(
                 "[\\s\\S]*listener 127\\.0\\.0\\.1:[0-9]+ +[0-9]+ waiting, max queue 0: "
                 "not accepting; [0-9]+ connections? dropped since it opened\n[\\s\\S]*"));
  CHECK_THAT(r.output, !Contains("droppeds"));
}

TEST_CASE("diagnosis: two memcached on one port at different IPv6 addresses are judged apart",
          "[integration][diagnosis]") {
  test::enter_private_netns();
  add_loopback_address("fd00::2/128");
  test::Memcached full({"-c", "64", "-o", "no_maxconns_fast"},
                       test::Memcached::Listen::tcp("fd00::2"));
  test::Memcached healthy({}, test::Memcached::Listen::tcp("::1", full.port()));
  test::Daemon d(config_for({{"healthy", healthy.address()}, {"full", full.address()}}));
  wait_up(d, "healthy");
  wait_up(d, "full");
  std::vector<std::unique_ptr<test::RawConnection>> clients;
  for (int i = 0; i < 80; ++i) {
    try {
      clients.push_back(std::make_unique<test::RawConnection>(full.address(), 200ms));
    } catch (const std::exception&) {
      break;  // it stopped accepting
    }
  }
  test::wait_for_alert(
      d, "MaxConnectionsNear", Level::kCritical,
      {"listener [fd00::2]:" + std::to_string(full.port()) + " has a max queue of 0"}, "full");
  const test::Alerts healthy_view = test::alerts_of(test::alerts(d), "healthy");
  test::check_ok(healthy_view, {"MemcachedDown", "MaxConnectionsNear", "AcceptQueueFilling"});
}

TEST_CASE("diagnosis: a client leaking connections is named well before memcached's limit",
          "[integration][diagnosis]") {
  // The field note's cause 1: python-memcache's Client created per request and never closed,
  // about 40 requests a second from one host.
  test::enter_private_netns();
  test::Memcached mc;
  test::Daemon d(config_for({{"mc", mc.address()}}));
  wait_up(d, "mc");
  test::Child leak({"/usr/bin/python3", test::source_dir() + "/tests/support/leaky_client.py",
                    mc.address(), "40", "127.0.0.7"});

  const test::Alerts view =
      test::wait_for_alert(d, "ConnectionSprawl", Level::kWarning, {"127.0.0.7"}, "mc", false, 40s);
  // Named well before the limit: memcached still has room when the page goes out.
  const double connections = std::stod(mc.stats().at("curr_connections"));
  // -c less what memcached holds itself (6, 4 a worker thread, its listener) and 1 for refusals.
  const double limit = std::stod(mc.stats().at("max_connections")) -
                       (6 + 4 * std::stod(mc.stats().at("threads")) + 1) - 1;
  INFO("curr_connections " << connections << " of " << limit << "\n"
                           << test::describe(view) << leak.output());
  CHECK(connections < 0.8 * limit);
  CHECK_THAT(view.at("ConnectionSprawl").remediation, Contains("once per process"));
  // MaxConnectionsNear fires on the time left, before the limit, and points at the leak.
  const test::Alerts limit_view = test::wait_for_alert(
      d, "MaxConnectionsNear", Level::kWarning, {"the limit is reached in"}, "mc", false, 40s);
  CHECK(std::stod(mc.stats().at("curr_connections")) < limit);
  CHECK_THAT(limit_view.at("MaxConnectionsNear").remediation, Contains("leaks connections"));
}

TEST_CASE("diagnosis: a leak spread over a handful of client hosts is named too",
          "[integration][diagnosis]") {
  test::enter_private_netns();
  test::Memcached mc;
  test::Daemon d(config_for({{"mc", mc.address()}}));
  wait_up(d, "mc");
  std::vector<std::unique_ptr<test::Child>> leaks;
  for (int i = 2; i <= 5; ++i) {
    leaks.push_back(std::make_unique<test::Child>(std::vector<std::string>{
        "/usr/bin/python3", test::source_dir() + "/tests/support/leaky_client.py", mc.address(),
        "10", "127.0.0." + std::to_string(i)}));
  }
  const test::Alerts view =
      test::wait_for_alert(d, "ConnectionSprawl", Level::kWarning,
                           {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}, "mc", false, 40s);
  CHECK_THAT(view.at("ConnectionSprawl").remediation, Contains("once per process"));
}

TEST_CASE("diagnosis: memcached 1.4 without max_connections in stats is judged on its -c",
          "[integration][diagnosis]") {
  // memcached 1.4.15 at its limit with no_maxconns_fast: `stats` has no max_connections,
  // `stats settings` has maxconns 64; 44 connections, not accepting, listen_disabled_num rising.
  test::enter_private_netns();
  std::atomic<int> disabled{0};
  test::FakeServer server([&](test::FakeConnection& c) {
    while (auto line = c.read_line()) {
      if (*line == "version") {
        c.send("VERSION 1.4.15\r\n");
      } else if (*line == "stats") {
        c.send(test::fake::stats_reply({{"pid", "4242"},
                                        {"uptime", "500"},
                                        {"version", "1.4.15"},
                                        {"curr_connections", "44"},
                                        {"total_connections", "120"},
                                        {"listen_disabled_num", std::to_string(++disabled)},
                                        {"accepting_conns", "0"},
                                        {"threads", "4"}}));
      } else if (*line == "stats settings") {
        c.send(test::fake::stats_reply(
            {{"maxconns", "64"}, {"tcpport", "11211"}, {"num_threads", "4"}}));
      } else {
        c.send("ERROR\r\n");
      }
    }
  });
  test::Daemon d(config_for({{"old", server.address()}}));
  const test::Alerts view =
      test::wait_for_alert(d, "MaxConnectionsNear", Level::kCritical,
                           {"44 connections of an effective limit of 41"}, "old");
  CHECK_THAT(test::evidence(view.at("MaxConnectionsNear")), Contains("not accepting now"));
  const test::Report r = test::diagnose(d);
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Contains("44 of -c 64"));
  CHECK_THAT(r.output,
             Catch::Matchers::Matches("[\\s\\S]*accepting new connections +NO\n[\\s\\S]*"));
  CHECK(test::reports_firing(r, "MaxConnectionsNear", "old"));
}

TEST_CASE("diagnosis: a rejection counter every probe contradicts stays a warning that says so",
          "[integration][diagnosis]") {
  // A compatible server whose rejected_connections climbs while it serves every fresh connection
  // and holds 3 of 1024.
  test::enter_private_netns();
  std::atomic<int> rejected{0};
  test::FakeServer server([&](test::FakeConnection& c) {
    while (auto line = c.read_line()) {
      if (*line == "version") {
        c.send("VERSION 1.6.18-compatible\r\n");
      } else if (*line == "stats") {
        c.send(test::fake::stats_reply({{"pid", "4243"},
                                        {"uptime", "500"},
                                        {"version", "1.6.18-compatible"},
                                        {"curr_connections", "3"},
                                        {"max_connections", "1024"},
                                        {"total_connections", "9"},
                                        {"rejected_connections", std::to_string(rejected += 3)},
                                        {"accepting_conns", "1"}}));
      } else {
        c.send("ERROR\r\n");
      }
    }
  });
  test::Daemon d(config_for({{"compat", server.address()}}));
  const test::Alerts view = test::wait_for_alert(
      d, "MaxConnectionsNear", Level::kWarning, {"contradicts what mcbacklogd observed"}, "compat");
  CHECK(view.at("MaxConnectionsNear").state == Level::kWarning);
  CHECK(view.at("MaxConnectionsNear").condition == Level::kWarning);
}

TEST_CASE("diagnosis: diagnose exits 3 when a target could not be evaluated at all",
          "[integration][diagnosis]") {
  // It answers `version` (the probe), but `stats` with something that is not a stats reply.
  test::enter_private_netns();
  test::FakeServer server([](test::FakeConnection& c) {
    while (auto line = c.read_line()) {
      c.send(*line == "version" ? "VERSION 9\r\n" : "HELLO THERE\r\n");
    }
  });
  test::Daemon d(config_for({{"odd", server.address()}}));
  const test::Report r = test::diagnose(d);
  INFO(r.output);
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.output, Contains("Result: UNKNOWN (exit code 3)"));
  CHECK_THAT(r.output, Contains("1 target could not be evaluated"));
}

TEST_CASE("diagnosis: --from-daemon at a daemon that never answers exits 3 within its deadline",
          "[integration][diagnosis][deadline]") {
  // A peer that accepts, reads the request and never answers: a stuck daemon.
  test::enter_private_netns();
  std::atomic<bool> asked{false};
  test::FakeServer stuck([&](test::FakeConnection& c) {
    // Reads the request and then waits, holding the connection far beyond diagnose's deadline.
    while (c.read_line(120s)) asked = true;
  });
  test::Child diagnose({test::daemon_binary(), "diagnose", "--from-daemon",
                        "--web.listen-address=" + stuck.address()});
  // Generous: the deadline is 5 s, and the peer would hold the connection for 120 s.
  const auto code = diagnose.wait_exit(60s);
  INFO(diagnose.output());
  CHECK(asked);
  CHECK(code == 3);
  CHECK_THAT(diagnose.output(), Contains("within 5s"));
}

TEST_CASE("diagnosis: --from-daemon refuses a deeply nested body and exits 3",
          "[integration][diagnosis][hostile]") {
  test::enter_private_netns();
  const std::string body = std::string(100000, '[') + std::string(100000, ']');
  test::FakeServer hostile([&](test::FakeConnection& c) {
    while (auto line = c.read_line()) {
      if (line->empty() || *line == "\r") break;  // the end of the request's header
    }
    (void)c.send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  });
  test::Child diagnose({test::daemon_binary(), "diagnose", "--from-daemon",
                        "--web.listen-address=" + hostile.address()});
  const auto code = diagnose.wait_exit(30s);
  INFO(diagnose.output());
  CHECK(code == 3);
  CHECK_THAT(diagnose.output(), Contains("nested deeper than"));
}

TEST_CASE(
    "diagnosis: diagnose's two samples are a wait apart while another target never answers, so "
    "its own probes make no connection rate",
    "[integration][diagnosis]") {
  // The stopped target holds the first cycle to its end, when the second begins; that one ended
  // at once (no reply for longer than the stall limit: the connection is dropped), and the healthy
  // memcached's rate of new connections was its few probes over milliseconds: ConnectionSprawl
  // critical, exit 2.
  test::enter_private_netns();
  test::Memcached healthy({"-t", "1"});
  test::Memcached stopped({"-t", "1", "-b", "4"});
  stopped.pause();
  // Its accept queue full, so that diagnose's connection to it waits for the deadline.
  std::vector<test::Socket> queued;
  for (int i = 0; i < 8; ++i) {
    queued.push_back(test::connect_tcp("127.0.0.1", stopped.port(), {.wait = false}));
  }
  test::TempDir dir;
  const std::string config =
      dir.write("two.yaml", "targets:\n  - { name: healthy, address: \"" + healthy.address() +
                                "\", probe_interval: 1s }\n  - { name: stopped, address: \"" +
                                stopped.address() + "\", probe_interval: 1s }\n");
  test::Child diagnose({test::daemon_binary(), "diagnose", "--wait=3s", "--config.file=" + config});
  const auto code = diagnose.wait_exit(60s);
  const std::string out = diagnose.output();
  INFO(out);
  REQUIRE(code.has_value());
  CHECK_THAT(out, Contains("sample 2 of 2 taken"));
  CHECK_FALSE(test::reports_firing({*code, out}, "ConnectionSprawl", "healthy"));
  CHECK_THAT(out, Contains("OK       ConnectionSprawl [healthy]"));
  stopped.resume();
}

TEST_CASE(
    "diagnosis: the effective connection limit is what memcached serves, counted in its own "
    "descriptors",
    "[integration][diagnosis]") {
  // memcached -c 20 -t 1 serves 8 clients: -c less 11 descriptors it holds itself and 1 it
  // answers refusals on. -c less reserved_fds (5) said 15, and "47%" while it refused.
  test::enter_private_netns();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"-c", "20", "-t", "1"},
        std::vector<std::string>{"-c", "64", "-t", "4"},
        std::vector<std::string>{"-c", "32", "-t", "1", "-o", "no_maxconns_fast"}}) {
    CAPTURE(args);
    test::Memcached mc(args);
    test::Daemon d(config_for({{"mc", mc.address()}}));
    wait_up(d, "mc");
    // Clients until memcached refuses one (or stops accepting); what it held then is its limit.
    std::vector<std::unique_ptr<test::RawConnection>> held;
    std::string refused;
    while (held.size() < 100 && refused.empty()) {
      auto c = std::make_unique<test::RawConnection>(mc.address(), std::chrono::milliseconds(500));
      try {
        const std::string reply = c->request("version\r\n");
        if (reply.rfind("VERSION", 0) == 0) {
          held.push_back(std::move(c));
        } else {
          refused = reply;
        }
      } catch (const std::exception& e) {
        refused = e.what();  // not accepted: no answer
      }
    }
    INFO("refused with: " << refused << "; held " << held.size());
    REQUIRE_FALSE(held.empty());
    const auto served =
        test::parse_stat_lines(held.front()->request("stats\r\n")).at("curr_connections");
    const test::Alerts view = test::wait_for_alert(
        d, "MaxConnectionsNear", Level::kCritical,
        {served + " connections of an effective limit of " + served + " (-c " + args.at(1)});
    CHECK(view.at("MaxConnectionsNear").verdict->value == Approx(1.0));
  }
}
