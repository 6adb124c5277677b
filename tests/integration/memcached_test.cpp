// The built daemon against real memcached 1.6.18 processes started by the test (on a free port, on
// ::1 and on a unix socket) and against fake servers for faults memcached cannot produce. Each
// test runs in its own network namespace.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "tests/support/alerts.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/memcached.hpp"
#include "tests/support/memcached_exporter_families.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

struct Target {
  std::string name;
  std::string address;
  std::string probe_interval = "0";
  std::string slab_stats_interval = "15s";
};

std::string config(const std::vector<Target>& targets, const std::string& interval = "200ms") {
  std::string out = "interval: " + interval +
                    "\ncollectors:\n  sockdiag: { enabled: false }\n  netdev: { enabled: false }\n"
                    "targets:\n";
  for (const Target& t : targets) {
    out += "  - { name: " + t.name + ", address: \"" + t.address +
           "\", probe_interval: " + t.probe_interval +
           ", slab_stats_interval: " + t.slab_stats_interval + " }\n";
  }
  return out;
}

// The value of `family{target="name"}`.
std::optional<double> of(const std::string& text, const std::string& family,
                         const std::string& target) {
  return test::metric_value(text, family + "{target=\"" + target + "\"}");
}

std::function<bool(const std::string&)> up_is(const std::string& target, double value) {
  return [=](const std::string& m) { return of(m, "memcached_up", target) == value; };
}

double stat(const test::StatsMap& stats, const std::string& name) {
  return std::stod(stats.at(name));
}

// Resident memory of the daemon as it reports it.
double rss(test::Daemon& d) {
  return test::metric_value(d.metrics(), "process_resident_memory_bytes").value();
}

}  // namespace

TEST_CASE("memcached: the daemon reports what memcached reports, on a port and on a unix socket",
          "[integration][memcached]") {
  test::enter_private_netns();
  test::TempDir dir;
  test::Memcached tcp({"-c", "100", "-b", "300", "-t", "3", "-m", "48"});
  test::Memcached local({"-c", "50", "-b", "200", "-t", "1", "-o", "no_maxconns_fast"},
                        test::Memcached::Listen::unix_socket(dir.path() + "/mc.sock"));
  test::Daemon d(config({{"tcp", tcp.address()}, {"local", local.address()}}));
  const auto m = d.wait_for_metrics(
      [](const std::string& t) { return up_is("tcp", 1)(t) && up_is("local", 1)(t); });
  REQUIRE(m.has_value());
  CHECK(test::metric_value(*m, R"(mcbacklog_collector_success{collector="memcached"})") == 1);

  for (auto [name, mc] : {std::pair{"tcp", &tcp}, std::pair{"local", &local}}) {
    INFO(name);
    const test::StatsMap stats = mc->stats();
    const test::StatsMap settings = mc->settings();
    CHECK(of(*m, "memcached_max_connections", name) == stat(settings, "maxconns"));
    CHECK(of(*m, "mcbacklog_memcached_listen_backlog", name) == stat(settings, "tcp_backlog"));
    CHECK(of(*m, "mcbacklog_memcached_threads", name) == stat(stats, "threads"));
    CHECK(of(*m, "memcached_limit_bytes", name) == stat(stats, "limit_maxbytes"));
    CHECK(of(*m, "mcbacklog_memcached_reserved_fds", name) == stat(stats, "reserved_fds"));
    CHECK(of(*m, "memcached_accepting_connections", name) == 1);
    CHECK(test::metric_value(*m, "memcached_version{target=\"" + std::string(name) +
                                     "\",version=\"" + stats.at("version") + "\"}") == 1);
  }
  // -c, -b, -t and -m as given on each command line.
  CHECK(of(*m, "memcached_max_connections", "tcp") == 100);
  CHECK(of(*m, "mcbacklog_memcached_listen_backlog", "tcp") == 300);
  CHECK(of(*m, "mcbacklog_memcached_threads", "tcp") == 3);
  CHECK(of(*m, "memcached_limit_bytes", "tcp") == 48 * 1024 * 1024);
  CHECK(of(*m, "mcbacklog_memcached_maxconns_fast", "tcp") == 1);
  CHECK(of(*m, "memcached_connections_rejected_total", "tcp") == 0);
  CHECK(of(*m, "memcached_max_connections", "local") == 50);
  CHECK(of(*m, "mcbacklog_memcached_listen_backlog", "local") == 200);
  CHECK(of(*m, "mcbacklog_memcached_maxconns_fast", "local") == 0);
  CHECK_FALSE(of(*m, "memcached_connections_rejected_total", "local").has_value());

  // The CPU ratio needs two answers; it comes with the next run.
  auto cpu = d.wait_for_metrics([](const std::string& t) {
    return of(t, "mcbacklog_memcached_cpu_utilization_ratio", "tcp").has_value();
  });
  REQUIRE(cpu.has_value());
  CHECK(*of(*cpu, "mcbacklog_memcached_cpu_utilization_ratio", "tcp") >= 0);

  test::TempDir out;
  const auto promtool = test::run_command("promtool check metrics < " + out.write("m.txt", *cpu));
  INFO(promtool.output);
  // Its only objection: memcached_exporter's own counters without _total (exit code 3, lint).
  CHECK((promtool.exit_code == 0 || promtool.exit_code == 3));
  CHECK(test::promtool_problems(promtool.output).empty());
  CHECK_THAT(promtool.output, Contains("memcached_uptime_seconds counter metrics should have"));
}

TEST_CASE("memcached: memcached's own total_connections shows one daemon connection plus probes",
          "[integration][memcached]") {
  test::enter_private_netns();
  test::Memcached mc;
  // Raw reads of memcached's stats, counted: each opens a connection and sends 7 bytes.
  int reads = 0;
  auto read = [&] {
    ++reads;
    return mc.stats();
  };
  // Every run sends "stats\r\n": 7 bytes in memcached's bytes_read (the first write adds
  // "stats settings\r\nstats items\r\nstats slabs\r\n", 42 more; stats settings comes again once a
  // minute, the slab stats every 15 s), so this counts up to six runs too many, never too few.
  auto runs_since = [&](const test::StatsMap& before, int reads_before) {
    const test::StatsMap now = read();
    return (stat(now, "bytes_read") - stat(before, "bytes_read") - 7 * (reads - reads_before)) / 7;
  };
  // Connections memcached accepted since `before` that were not raw reads.
  auto opened_since = [&](const test::StatsMap& before, int reads_before) {
    const test::StatsMap now = read();
    return stat(now, "total_connections") - stat(before, "total_connections") -
           (reads - reads_before);
  };

  SECTION("without probes: exactly one connection however many runs") {
    const test::StatsMap before = read();
    const int reads_before = reads;
    test::Daemon d(config({{"main", mc.address()}}, "100ms"));
    REQUIRE(test::eventually([&] { return runs_since(before, reads_before) >= 20; }));
    CHECK(opened_since(before, reads_before) == 1);
  }

  SECTION("with probes: one more connection per probe") {
    const test::StatsMap before = read();
    const int reads_before = reads;
    test::Daemon d(config({{"main", mc.address(), "300ms"}}, "100ms"));
    REQUIRE(test::eventually([&] { return runs_since(before, reads_before) >= 20; }));
    auto probes = [&] {
      const std::string m = d.metrics();
      return of(m, "mcbacklog_probe_latency_seconds_count", "main").value_or(0) +
             of(m, "mcbacklog_probe_failures_total", "main").value_or(0);
    };
    const double probes_before = probes();
    const double opened = opened_since(before, reads_before);
    const double probes_after = probes();
    INFO("connections opened: " << opened << ", probes " << probes_before << " to "
                                << probes_after);
    CHECK(probes_before >= 2);
    // One stats connection, the probes counted before, perhaps one more in flight.
    CHECK(opened >= 1 + probes_before);
    CHECK(opened <= 1 + probes_after + 1);
    CHECK(of(d.metrics(), "mcbacklog_probe_failures_total", "main") == 0);
  }
}

TEST_CASE("memcached: killed and restarted, memcached_up goes 0 then 1 without a daemon restart",
          "[integration][memcached]") {
  test::enter_private_netns();
  test::Memcached mc;
  test::Daemon d(config({{"main", mc.address(), "200ms"}}));
  REQUIRE(d.wait_for_metrics(up_is("main", 1)).has_value());
  mc.kill();
  const auto down = d.wait_for_metrics(up_is("main", 0));
  REQUIRE(down.has_value());
  CHECK_FALSE(of(*down, "memcached_current_connections", "main").has_value());
  CHECK(test::metric_value(*down, R"(mcbacklog_collector_success{collector="memcached"})") == 0);
  CHECK(test::eventually([&] {
    return d.output().find("memcached target main (" + mc.address() + ") is down") !=
           std::string::npos;
  }));
  CHECK(d.wait_for_metrics([](const std::string& m) {
           return of(m, "mcbacklog_probe_success", "main") == 0;
         }).has_value());

  mc.restart();
  const auto back = d.wait_for_metrics(up_is("main", 1));
  REQUIRE(back.has_value());
  CHECK(d.process().running());
  CHECK_THAT(d.output(), Contains("memcached target main (" + mc.address() + ") is up"));
}

TEST_CASE(
    "memcached: a stopped memcached costs its own up, scrapes stay fast and netstat keeps "
    "running",
    "[integration][memcached]") {
  test::enter_private_netns();
  test::Memcached mc;
  test::Daemon d(config({{"main", mc.address(), "200ms"}}));
  const auto before = d.wait_for_metrics(up_is("main", 1));
  REQUIRE(before.has_value());
  const double connections = *of(*before, "memcached_connections_total", "main");

  mc.pause();
  REQUIRE(d.wait_for_metrics(up_is("main", 0)).has_value());
  const double opens = test::metric_value(d.metrics(), "mcbacklog_tcp_passive_opens_total").value();
  // Connections to a listener of the test's own: the netstat collector must see them.
  {
    test::FakeServer listener([](test::FakeConnection&) {});
    for (int i = 0; i < 5; ++i) test::RawConnection client(listener.address());
  }
  // Every scrape must answer within a 2 s client deadline while memcached is stopped.
  double slowest = 0;
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    auto r = test::http_get("127.0.0.1", d.port(), "/metrics", {}, 2s);
    REQUIRE(r.ok());
    REQUIRE(r->status == 200);
    slowest = std::max(slowest, r->seconds);
    CHECK(of(r->body, "memcached_up", "main") == 0);
    seen = test::metric_value(r->body, "mcbacklog_tcp_passive_opens_total") >= opens + 5 &&
           test::metric_value(r->body, R"(mcbacklog_collector_success{collector="netstat"})") == 1;
    ::usleep(50'000);
  }
  INFO("slowest scrape while memcached was stopped: " << slowest << " s");
  CHECK(seen);
  CHECK_THAT(d.output(), Contains("no reply to stats by the next sample"));

  // Resumed, it answers on the connection the daemon already had.
  mc.resume();
  const auto after = d.wait_for_metrics(up_is("main", 1));
  REQUIRE(after.has_value());
  const double probes = of(*after, "mcbacklog_probe_latency_seconds_count", "main").value() +
                        of(*after, "mcbacklog_probe_failures_total", "main").value();
  // No stats reconnect: new connections are all probes (perhaps one in flight).
  CHECK(*of(*after, "memcached_connections_total", "main") - connections <= probes + 1);
}

TEST_CASE("memcached: hostile servers give up 0 with a reason and bounded memory, the rest goes on",
          "[integration][memcached]") {
  test::enter_private_netns();
  test::Memcached real;
  test::FakeServer endless(test::fake::endless_line());
  test::FakeServer cut(test::fake::close_mid_reply());
  test::FakeServer silent(test::fake::half_reply_then_silence());
  test::FakeServer garbage(test::fake::binary_garbage());
  test::FakeServer huge(test::fake::huge_reply(8 << 20));
  test::FakeServer no_settings(test::fake::without_settings({{"pid", "1"}, {"version", "9.9"}}));
  test::Daemon d(config({{"real", real.address()},
                         {"endless", endless.address()},
                         {"cut", cut.address()},
                         {"silent", silent.address()},
                         {"garbage", garbage.address()},
                         {"huge", huge.address()},
                         {"no_settings", no_settings.address()}}));
  const auto first = d.wait_for_metrics(up_is("real", 1));
  REQUIRE(first.has_value());
  const double rss_before = rss(d);

  // The endless line keeps coming on every reconnect; memory must not follow it.
  REQUIRE(
      test::eventually([&] { return endless.connections() >= 3 && cut.connections() >= 3; }, 30s));
  const auto m = d.wait_for_metrics([](const std::string& t) {
    for (const char* name : {"endless", "cut", "silent", "garbage", "huge"}) {
      if (!up_is(name, 0)(t)) return false;
    }
    return up_is("real", 1)(t) && up_is("no_settings", 1)(t);
  });
  REQUIRE(m.has_value());
  const double rss_after = rss(d);
  INFO("RSS " << rss_before << " -> " << rss_after << " bytes; the endless line sent "
              << endless.bytes_sent() << " bytes over " << endless.connections() << " connections");
  CHECK(rss_after < rss_before + 16.0 * 1024 * 1024);
  CHECK(test::metric_value(*m, R"(mcbacklog_collector_success{collector="memcached"})") == 0);
  CHECK(test::metric_value(*m, R"(mcbacklog_collector_success{collector="netstat"})") == 1);
  // Without stats settings a target stays up; only the settings series are missing.
  CHECK(test::metric_value(*m, R"(memcached_version{target="no_settings",version="9.9"})") == 1);
  CHECK_FALSE(of(*m, "mcbacklog_memcached_listen_backlog", "no_settings").has_value());
  CHECK(of(*m, "mcbacklog_memcached_listen_backlog", "real").has_value());

  // One line per reason, rate-limited: the endless target does not flood the log. On a loaded
  // machine a slow peer may first miss the deadline; the line with its own reason follows.
  const std::vector<std::string> reasons{
      "memcached target endless (" + endless.address() +
          ") is down: protocol error: a line longer than 4096 bytes",
      "memcached target cut (" + cut.address() + ") is down: memcached closed the connection",
      "memcached target silent (" + silent.address() +
          ") is down: no reply to stats by the next sample",
      "memcached target garbage (" + garbage.address() +
          ") is down: connection accepted, but the reply is not text",
      "memcached target huge (" + huge.address() +
          ") is down: protocol error: a reply longer than 262144 bytes",
      "memcached target no_settings (" + no_settings.address() + "): stats settings failed"};
  for (const std::string& reason : reasons) {
    (void)test::eventually([&] { return d.output().find(reason) != std::string::npos; }, 30s);
    CHECK_THAT(d.output(), Contains(reason));
  }
  const std::string log = d.output();
  std::size_t lines = 0;
  for (auto p = log.find("target endless"); p != std::string::npos;
       p = log.find("target endless", p + 1)) {
    ++lines;
  }
  CHECK(lines <= 2);
}

TEST_CASE(
    "memcached: a target that flaps writes at most 5 lines a minute, then the state it settled in",
    "[integration][memcached]") {
  test::enter_private_netns();
  test::Memcached mc;
  test::Daemon d(config({{"main", mc.address()}}, "100ms"));
  REQUIRE(d.wait_for_metrics(up_is("main", 1)).has_value());
  // Stalled and running again, a dozen times in about 10 s: each stall is "no reply", each run
  // an answer.
  for (int i = 0; i < 12; ++i) {
    mc.pause();
    std::this_thread::sleep_for(400ms);
    mc.resume();
    std::this_thread::sleep_for(400ms);
  }
  const std::string settled = "memcached target main (" + mc.address() + ") is up (after ";
  CHECK(test::eventually([&] { return d.output().find(settled) != std::string::npos; }, 30s));
  const std::string log = d.output();
  INFO(log);
  std::size_t lines = 0;
  const std::string prefix = "memcached target main (" + mc.address() + ") is ";
  for (auto p = log.find(prefix); p != std::string::npos; p = log.find(prefix, p + 1)) ++lines;
  CHECK(lines <= 6);  // 5 in the minute, then the settled state
  CHECK_THAT(log, Contains("changes not logged: it flaps)"));
}

TEST_CASE("memcached: a target removed on reload leaves /metrics and the probe histogram restarts",
          "[integration][memcached][reload]") {
  test::enter_private_netns();
  test::Memcached a;
  test::Memcached b;
  test::Daemon d(config({{"a", a.address(), "100ms"}, {"b", b.address(), "100ms"}}));
  const auto both = d.wait_for_metrics([](const std::string& m) {
    return of(m, "mcbacklog_probe_latency_seconds_count", "a") >= 5 && up_is("b", 1)(m);
  });
  REQUIRE(both.has_value());
  const double probes = *of(*both, "mcbacklog_probe_latency_seconds_count", "a");

  std::ofstream(d.config_path()) << config({{"a", a.address(), "100ms"}});
  d.process().signal(SIGHUP);
  // No scrape falls in a gap between the old collectors and the new.
  int gaps = 0;
  const auto after = d.wait_for_metrics([&](const std::string& m) {
    if (!up_is("a", 1)(m)) ++gaps;
    const auto count = of(m, "mcbacklog_probe_latency_seconds_count", "a");
    return m.find("target=\"b\"") == std::string::npos && count && *count < probes;
  });
  REQUIRE(after.has_value());
  CHECK(gaps == 0);
  CHECK_THAT(d.output(), Contains("configuration reloaded"));
}

namespace {

std::string fixture(const std::string& name) {
  return test::read_text_file(test::source_dir() + "/tests/fixtures/memcached/" + name);
}

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto p = text.find(part); p != std::string::npos; p = text.find(part, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE(
    "memcached: memcached 1.4.15, which reports -c only in stats settings, shows "
    "memcached_max_connections 64",
    "[integration][memcached]") {
  test::enter_private_netns();
  // Its captured replies; an empty 1.4.15 answers `stats items` with END alone.
  test::FakeServer old(test::fake::replies({
      {"stats", [] { return fixture("stats-1.4.15.txt"); }},
      {"stats settings", [] { return fixture("settings-1.4.15.txt"); }},
      {"stats items", [] { return std::string("END\r\n"); }},
      {"stats slabs",
       [] { return std::string("STAT active_slabs 0\r\nSTAT total_malloced 0\r\nEND\r\n"); }},
  }));
  test::Daemon d(config({{"old", old.address()}}));
  const auto m = d.wait_for_metrics(up_is("old", 1));
  REQUIRE(m.has_value());
  CHECK(test::metric_value(*m, R"(memcached_version{target="old",version="1.4.15"})") == 1);
  CHECK(of(*m, "memcached_max_connections", "old") == 64);
  CHECK(of(*m, "memcached_connections_listener_disabled_total", "old") == 1);
  CHECK_FALSE(of(*m, "memcached_connections_rejected_total", "old").has_value());
}

TEST_CASE(
    "memcached: stats settings is asked on a new connection and when memcached's pid says it "
    "restarted, not every run, and its series stay between",
    "[integration][memcached]") {
  test::enter_private_netns();
  std::atomic<int> stats_asked{0};
  std::atomic<int> settings_asked{0};
  std::atomic<int> pid{1000};
  const test::StatsMap stats = test::parse_stat_lines(fixture("stats.txt"));
  test::FakeServer mc(test::fake::replies({
      {"stats",
       [&] {
         ++stats_asked;
         test::StatsMap s = stats;
         s["pid"] = std::to_string(pid.load());
         return test::fake::stats_reply(s);
       }},
      {"stats settings",
       [&] {
         ++settings_asked;
         return fixture("settings.txt");
       }},
      {"stats items", [] { return std::string("END\r\n"); }},
      {"stats slabs",
       [] { return std::string("STAT active_slabs 0\r\nSTAT total_malloced 0\r\nEND\r\n"); }},
  }));
  test::Daemon d(config({{"mc", mc.address()}}, "100ms"));
  // Once the settings answered (with the first write, or the next run if that one was late),
  // 20 more runs on the same connection ask stats every run and stats settings never.
  REQUIRE(d.wait_for_metrics([](const std::string& t) {
    return of(t, "mcbacklog_memcached_listen_backlog", "mc") == 256;
  }));
  const int settings_before = settings_asked.load();
  const int stats_before = stats_asked.load();
  CHECK(settings_before >= 1);
  REQUIRE(test::eventually([&] { return stats_asked.load() >= stats_before + 20; }));
  const std::string m = d.metrics();
  CHECK(mc.connections() == 1);
  CHECK(settings_asked.load() == settings_before);
  // The settings' series are there in every run meanwhile.
  CHECK(of(m, "mcbacklog_memcached_listen_backlog", "mc") == 256);
  CHECK(of(m, "mcbacklog_memcached_maxconns_fast", "mc") == 1);

  // Another pid behind the same connection: memcached restarted, its settings are asked again,
  // once.
  pid = 2000;
  REQUIRE(test::eventually([&] { return settings_asked.load() == settings_before + 1; }));
  const int stats_then = stats_asked.load();
  REQUIRE(test::eventually([&] { return stats_asked.load() >= stats_then + 10; }));
  CHECK(settings_asked.load() == settings_before + 1);
  CHECK(mc.connections() == 1);
  CHECK(of(d.metrics(), "mcbacklog_memcached_listen_backlog", "mc") == 256);
}

TEST_CASE(
    "memcached: a server whose settings list hundreds of listeners has 64 of their ports watched, "
    "and sampling goes on",
    "[integration][memcached]") {
  test::enter_private_netns();
  test::StatsMap settings = test::parse_stat_lines(fixture("settings.txt"));
  std::string inter;
  for (int port = 20000; port < 20200; ++port) {
    inter += (inter.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(port);
  }
  settings["inter"] = inter;
  std::atomic<int> requests{0};
  test::FakeServer many(test::fake::replies({
      {"stats",
       [&] {
         ++requests;
         return test::fake::stats_reply(test::parse_stat_lines(fixture("stats.txt")));
       }},
      {"stats settings", [&] { return test::fake::stats_reply(settings); }},
  }));
  std::string with_sockdiag = config({{"many", many.address()}});
  with_sockdiag.replace(with_sockdiag.find("sockdiag: { enabled: false }"), 28, "sockdiag: {}");
  test::Daemon d(with_sockdiag);
  const auto m = d.wait_for_metrics([&](const std::string& t) {
    return up_is("many", 1)(t) && requests >= 4 &&
           d.output().find("watching the listeners on ports") != std::string::npos;
  });
  const std::string log = d.output();
  INFO(log);
  REQUIRE(m.has_value());
  CHECK_THAT(log, Contains("the targets say they listen on 200 more ports; watching the first 64"));
  CHECK_THAT(log, Contains(", 20063"));
  CHECK_THAT(log, !Contains("20064"));
  CHECK(test::metric_value(*m, R"(mcbacklog_collector_success{collector="sockdiag"})") == 1);
}

TEST_CASE(
    "memcached: a stat a compatible server prints its own way costs only that stat and what "
    "derives from it, with one warning naming it",
    "[integration][memcached]") {
  test::enter_private_netns();
  // rusage_user as "seconds:microseconds", a different value on every request; maxconns_fast
  // neither yes nor no.
  std::atomic<int> requests{0};
  test::StatsMap settings = test::parse_stat_lines(fixture("settings.txt"));
  settings["maxconns_fast"] = "maybe";
  test::FakeServer odd(test::fake::replies({
      {"stats",
       [&] {
         test::StatsMap stats = test::parse_stat_lines(fixture("stats.txt"));
         stats["rusage_user"] = "0:" + std::to_string(34530 + requests++);
         return test::fake::stats_reply(stats);
       }},
      {"stats settings", [&] { return test::fake::stats_reply(settings); }},
  }));
  test::Daemon d(config({{"odd", odd.address()}}));
  const auto m =
      d.wait_for_metrics([&](const std::string& t) { return up_is("odd", 1)(t) && requests >= 6; });
  REQUIRE(m.has_value());
  CHECK(of(*m, "memcached_current_connections", "odd") == 1);
  CHECK(of(*m, "memcached_max_connections", "odd") == 64);
  CHECK(of(*m, "memcached_process_system_cpu_seconds_total", "odd") == 0);
  CHECK_FALSE(of(*m, "memcached_process_user_cpu_seconds_total", "odd").has_value());
  CHECK_FALSE(of(*m, "mcbacklog_memcached_cpu_utilization_ratio", "odd").has_value());
  CHECK_FALSE(of(*m, "mcbacklog_memcached_maxconns_fast", "odd").has_value());
  CHECK(test::metric_value(*m, R"(mcbacklog_collector_success{collector="memcached"})") == 1);
  const std::string log = d.output();
  INFO(log);
  CHECK_THAT(log, Contains("memcached target odd (" + odd.address() + "): cannot read "));
  CHECK_THAT(log, Contains(R"(rusage_user "0:3453)"));
  CHECK_THAT(log, Contains(R"(maxconns_fast "maybe" (stats settings))"));
  // Six runs, one line: the changing value is no new reason.
  CHECK(count(log, "cannot read") == 1);
}

TEST_CASE(
    "memcached: memcached with -B binary is down as a connection accepted and closed without a "
    "text reply, and the log names the fix",
    "[integration][memcached]") {
  test::enter_private_netns();
  test::Memcached::Listen listen;
  listen.text_protocol = false;
  test::Memcached binary({"-B", "binary"}, listen);
  test::Memcached text;
  test::Daemon d(config({{"binary", binary.address(), "200ms"}, {"text", text.address()}}));
  const auto m = d.wait_for_metrics([](const std::string& t) {
    return up_is("binary", 0)(t) && up_is("text", 1)(t) &&
           of(t, "mcbacklog_probe_success", "binary") == 0;
  });
  REQUIRE(m.has_value());
  REQUIRE(test::eventually([&] {
    return d.output().find("memcached target binary (" + binary.address() + ") is down") !=
           std::string::npos;
  }));
  const std::string log = d.output();
  INFO(log);
  CHECK_THAT(log, Contains("is down: connection accepted, then closed without a text reply; "));
  CHECK_THAT(log, Contains("-B auto"));
  CHECK_THAT(log, Contains("notls:"));
  CHECK_THAT(log, Contains("probe of memcached target binary (" + binary.address() +
                           ") failed: connection accepted, then closed without a text reply"));

  // MemcachedDown says what was seen and names the likely causes and their fixes, not "read its
  // log"; the text target beside it is not down.
  const test::Alerts view = test::wait_for_alert(
      d, "MemcachedDown", Level::kCritical,
      {"connection accepted, then closed without a text reply", "sent no text reply", "-B binary"},
      "binary", /*condition=*/true);
  const AlertStatus& down = view.at("MemcachedDown");
  INFO(test::evidence(down) << "\nfix: " << down.remediation);
  CHECK_THAT(down.remediation, Contains("-B auto"));
  CHECK_THAT(down.remediation, Contains("notls:"));
  CHECK_THAT(down.remediation, !Contains("read its log"));
  CHECK(test::alerts_of(test::alerts(d), "text").at("MemcachedDown").condition == Level::kOk);
}

namespace {

// The distinct values of `label` among the series of `family{target="name",...}`.
std::set<std::string> label_values(const std::string& text, const std::string& family,
                                   const std::string& target, const std::string& label) {
  std::set<std::string> out;
  const std::regex series("^" + family + R"(\{target=")" + target + R"(",(.*)\} )");
  const std::regex value(label + R"re(="([^"]*)")re");
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    std::smatch v;
    const std::string rest = std::regex_search(line, m, series) ? m[1].str() : "";
    if (std::regex_search(rest, v, value)) out.insert(v[1]);
  }
  return out;
}

std::string differences(const std::vector<std::string>& d) {
  std::string out;
  for (const auto& line : d) out += "\n  " + line;
  return out;
}

}  // namespace

TEST_CASE(
    "memcached: a real memcached 1.6.18 with items in all 63 slab classes gives "
    "memcached_exporter's families on /metrics, and each target alone on /scrape",
    "[integration][memcached][exporter]") {
  test::enter_private_netns();
  // -f 1.08 makes the 63 classes memcached allows; stats items then holds about 53 KB.
  test::Memcached full({"-f", "1.08", "-m", "128"});
  test::Memcached other;
  REQUIRE(test::fill_slab_classes(full.address()) > 100);
  test::fill_slab_classes(other.address(), 1000);
  test::memcached_request(full.address(), "get class1 nothing\r\n");
  test::Daemon d(config({{"full", full.address()}, {"other", other.address()}}));
  const auto m = d.wait_for_metrics([](const std::string& t) {
    return up_is("full", 1)(t) && up_is("other", 1)(t) &&
           t.find(R"(memcached_slab_chunk_size_bytes{target="full",slab="63"})") !=
               std::string::npos;
  });
  REQUIRE(m.has_value());
  CHECK(label_values(*m, "memcached_slab_current_items", "full", "slab").size() == 63);
  const auto d_metrics = test::exporter_differences(*m, test::kDefaultSources);
  INFO("/metrics differs from memcached_exporter:" << differences(d_metrics));
  CHECK(d_metrics.empty());
  CHECK(test::metric_value(
            *m, R"(memcached_commands_total{target="full",command="get",status="hit"})") == 1);
  CHECK(test::metric_value(
            *m, R"(memcached_commands_total{target="full",command="get",status="miss"})") == 1);

  // One memcached per scrape, by name or by address, as memcached_exporter's /scrape.
  for (const auto& [query, name, not_name] : {std::tuple{std::string("full"), "full", "other"},
                                              std::tuple{other.address(), "other", "full"}}) {
    INFO("/scrape?target=" << query);
    auto r = d.get("/scrape?target=" + query);
    REQUIRE(r.ok());
    CHECK(r->status == 200);
    CHECK(r->headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(test::metric_value(r->body, std::string("memcached_up{target=\"") + name + "\"}") == 1);
    CHECK(r->body.find(std::string("target=\"") + not_name + "\"") == std::string::npos);
    CHECK(r->body.find("mcbacklog_somaxconn") == std::string::npos);  // the host stays on /metrics
    const auto d_scrape = test::exporter_differences(r->body, test::kDefaultSources);
    INFO("/scrape differs from memcached_exporter:" << differences(d_scrape));
    CHECK(d_scrape.empty());
  }
  auto zipped = d.get("/scrape?target=full", {{"Accept-Encoding", "gzip"}});
  REQUIRE(zipped.ok());
  CHECK(zipped->headers["content-encoding"] == "gzip");
  CHECK(test::metric_value(test::gunzip(zipped->body), R"(memcached_up{target="full"})") == 1);
  auto missing = d.get("/scrape");
  REQUIRE(missing.ok());
  CHECK(missing->status == 400);
  auto unknown = d.get("/scrape?target=nope");
  REQUIRE(unknown.ok());
  CHECK(unknown->status == 404);
  CHECK_THAT(unknown->body, Contains(R"(no memcached named "nope")"));
}

TEST_CASE(
    "memcached: stats items and stats slabs are asked every slab_stats_interval, and never "
    "when it is 0",
    "[integration][memcached]") {
  test::enter_private_netns();
  test::Memcached hourly_mc;
  test::Memcached never_mc;
  test::store_items(hourly_mc.address(), "small", 1, 10);
  test::store_items(never_mc.address(), "small", 1, 10);
  Target hourly{"hourly", hourly_mc.address()};
  hourly.slab_stats_interval = "1h";
  Target never{"never", never_mc.address()};
  never.slab_stats_interval = "0";
  test::Daemon d(config({hourly, never}));
  const auto first = d.wait_for_metrics([](const std::string& t) {
    return of(t, "memcached_current_items", "hourly") == 1 &&
           of(t, "memcached_current_items", "never") == 1;
  });
  REQUIRE(first.has_value());
  // The first query of a connection asks them all: one class now.
  CHECK(label_values(*first, "memcached_slab_current_items", "hourly", "slab") ==
        std::set<std::string>{"1"});
  // An item of another class: stats shows it at once, the slab families in an hour.
  test::store_items(hourly_mc.address(), "large", 1, 100 * 1000);
  const auto later = d.wait_for_metrics(
      [](const std::string& t) { return of(t, "memcached_current_items", "hourly") == 2; });
  REQUIRE(later.has_value());
  CHECK(label_values(*later, "memcached_slab_current_items", "hourly", "slab") ==
        std::set<std::string>{"1"});
  CHECK(of(*later, "memcached_malloced_bytes", "hourly").has_value());
  for (const std::string& text : {*first, *later}) {
    CHECK(text.find(R"(memcached_slab_current_items{target="never")") == std::string::npos);
    CHECK_FALSE(of(text, "memcached_malloced_bytes", "never").has_value());
    CHECK(of(text, "memcached_current_items", "never") == 1);
  }
}
