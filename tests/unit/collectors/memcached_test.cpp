// The memcached protocol parsers on real captures from memcached 1.6.18 and on malformed replies,
// and the pure parts of the collector: families, CPU rate, backoff, histogram, log limiting.

#include <catch2/catch.hpp>

#include "collectors/failure_log.hpp"
#include "collectors/memcached.hpp"
#include "common/families.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

std::string fixture(const std::string& name) {
  return test::read_text_file(test::source_dir() + "/tests/fixtures/memcached/" + name);
}

std::string error_of(const Result<StatsMap>& r) {
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

// The typed stats of a map, which must all be readable.
MemcachedStats readable_stats(const StatsMap& map) {
  std::vector<UnreadableStat> unreadable;
  MemcachedStats s = memcached_stats(map, unreadable);
  CHECK(unreadable.empty());
  return s;
}

MemcachedSettings readable_settings(const StatsMap& map) {
  std::vector<UnreadableStat> unreadable;
  MemcachedSettings s = memcached_settings(map, unreadable);
  CHECK(unreadable.empty());
  return s;
}

MemcachedSample sample_from_fixtures(const std::string& stats, const std::string& settings) {
  MemcachedSample s;
  s.target = "main";
  s.address = "127.0.0.1:11211";
  s.up = true;
  s.stats = memcached_stats(*parse_stats(fixture(stats)), s.unreadable);
  s.settings = memcached_settings(*parse_stats(fixture(settings)), s.unreadable);
  REQUIRE(s.unreadable.empty());
  return s;
}

}  // namespace

TEST_CASE("memcached: the captured stats of 1.6.18 parse into the typed stats",
          "[collectors][memcached]") {
  const std::string text = fixture("stats.txt");
  auto stats = parse_stats(text);
  REQUIRE(stats.ok());
  CHECK(stats->size() == 92);
  CHECK(stats->at("libevent") == "2.1.12-stable");
  const MemcachedStats s = readable_stats(*stats);
  CHECK(s.version == "1.6.18");
  CHECK(s.pid == 12043);
  CHECK(s.uptime == 4);
  CHECK(s.rusage_user == Approx(0.007843));
  CHECK(s.rusage_system == 0.0);
  CHECK(s.threads == 2);
  CHECK(s.max_connections == 64);
  CHECK(s.curr_connections == 1);
  CHECK(s.total_connections == 51);
  CHECK(s.rejected_connections == 32);  // 80 clients against -c 64 in maxconns_fast mode
  CHECK(s.connection_structures == 49);
  CHECK(s.reserved_fds == 10);
  CHECK(s.listen_disabled_num == 0);
  CHECK(s.time_in_listen_disabled_us == 0);
  CHECK(s.accepting_conns == 1);
  CHECK(s.conn_yields == 0);
  CHECK(s.bytes == 0);
  CHECK(s.limit_maxbytes == 32 * 1024 * 1024);
  CHECK(s.evictions == 0);
  CHECK(s.bytes_read == 7);
  CHECK(s.bytes_written == 0);
}

TEST_CASE(
    "memcached: with no_maxconns_fast rejected_connections is absent and the listener "
    "counters move",
    "[collectors][memcached]") {
  const MemcachedStats s = readable_stats(*parse_stats(fixture("stats-no_maxconns_fast.txt")));
  CHECK_FALSE(s.rejected_connections.has_value());
  CHECK(s.listen_disabled_num == 1);
  CHECK(s.time_in_listen_disabled_us == 1007845);
  CHECK(s.total_connections == 83);
  const MemcachedSettings settings =
      readable_settings(*parse_stats(fixture("settings-no_maxconns_fast.txt")));
  CHECK(settings.maxconns_fast == false);
}

TEST_CASE("memcached: the captured stats settings give -c, -b, -t and -R",
          "[collectors][memcached]") {
  auto map = parse_stats(fixture("settings.txt"));
  REQUIRE(map.ok());
  CHECK(map->at("domain_socket") == "NULL");
  CHECK(map->at("stat_key_prefix") == ":");
  const MemcachedSettings s = readable_settings(*map);
  CHECK(s.maxconns == 64);
  CHECK(s.tcp_backlog == 256);
  CHECK(s.maxconns_fast == true);
  CHECK(s.num_threads == 2);
  CHECK(s.reqs_per_event == 20);
}

TEST_CASE("memcached: error replies and garbage are errors that say what came",
          "[collectors][memcached]") {
  CHECK_THAT(error_of(parse_stats("ERROR\r\n")), Contains("memcached replied \"ERROR\""));
  CHECK_THAT(error_of(parse_stats("CLIENT_ERROR bad command line format\r\n")),
             Contains("CLIENT_ERROR bad command line format"));
  CHECK_THAT(error_of(parse_stats("STAT pid 1\r\nSERVER_ERROR out of memory\r\n")),
             Contains("SERVER_ERROR out of memory"));
  CHECK_THAT(error_of(parse_stats("STAT pid 1\r\nHTTP/1.1 400 Bad Request\r\nEND\r\n")),
             Contains("line 2: unexpected \"HTTP/1.1 400 Bad Request\""));
  CHECK_THAT(error_of(parse_stats(std::string("STAT pid \x01\xff\r\nEND\r\n", 16))),
             Contains("line 1: unexpected \"STAT pid \\x01\\xff\""));
  CHECK_THAT(error_of(parse_stats("STAT pid\r\nEND\r\n")), Contains("unexpected \"STAT pid\""));
  CHECK_THAT(error_of(parse_stats("STAT  1\r\nEND\r\n")), Contains("unexpected"));
  CHECK_THAT(error_of(parse_stats("STAT pid 1\r\nSTAT pid 2\r\nEND\r\n")),
             Contains("stat \"pid\" given twice"));
  CHECK_THAT(error_of(parse_stats("STAT pid 1\r\n")), Contains("ends without END"));
  CHECK_THAT(error_of(parse_stats("STAT pid 1\r\nEN")), Contains("ends without END"));
  CHECK_THAT(error_of(parse_stats("")), Contains("ends without END"));
  CHECK_THAT(error_of(parse_stats("END\r\nSTAT pid 1\r\n")), Contains("bytes after END"));
  // A bare "\n" is tolerated, and an empty reply is an empty map.
  CHECK(parse_stats("STAT pid 1\nEND\n")->at("pid") == "1");
  CHECK(parse_stats("END\r\n")->empty());
}

TEST_CASE(
    "memcached: a stat with a value of the wrong form is left out and named, the rest is read",
    "[collectors][memcached]") {
  std::vector<UnreadableStat> unreadable;
  const MemcachedStats s = memcached_stats(
      {{"curr_connections", "12abc"}, {"rusage_user", "0:34530"}, {"pid", "7"}}, unreadable);
  CHECK_FALSE(s.curr_connections.has_value());
  CHECK_FALSE(s.rusage_user.has_value());
  CHECK(s.pid == 7);
  REQUIRE(unreadable.size() == 2);
  // In the order the typed stats list them.
  CHECK(unreadable[0].command == "stats");
  CHECK(unreadable[0].name == "rusage_user");
  CHECK(unreadable[0].value == "0:34530");
  CHECK(unreadable[1].name == "curr_connections");
  CHECK(unreadable[1].value == "12abc");

  auto unreadable_value = [](const StatsMap& m) {
    std::vector<UnreadableStat> u;
    (void)memcached_stats(m, u);
    return u.size() == 1 ? u.front().value : "(" + std::to_string(u.size()) + " unreadable)";
  };
  CHECK(unreadable_value({{"rusage_user", "-1.5"}}) == "-1.5");
  // std::from_chars reads these as doubles; no memcached sends them.
  for (const char* value : {"inf", "infinity", "nan"}) {
    INFO(value);
    CHECK(unreadable_value({{"rusage_system", value}}) == value);
  }
  std::vector<UnreadableStat> in_settings;
  const MemcachedSettings settings =
      memcached_settings({{"maxconns_fast", "maybe"}, {"maxconns", "64"}}, in_settings);
  CHECK_FALSE(settings.maxconns_fast.has_value());
  CHECK(settings.maxconns == 64);
  REQUIRE(in_settings.size() == 1);
  CHECK(in_settings[0].command == "stats settings");
  CHECK(in_settings[0].name == "maxconns_fast");
  // Unknown stats and missing ones are fine: old versions and proxies report fewer.
  const MemcachedStats few = readable_stats({{"pid", "7"}, {"something_new", "x y z"}});
  CHECK(few.pid == 7);
  CHECK(few.version.empty());
  CHECK_FALSE(few.curr_connections.has_value());
}

TEST_CASE("memcached: at the connection limit is told from other error replies",
          "[collectors][memcached]") {
  CHECK(at_connection_limit("ERROR Too many open connections\r\n"));
  CHECK_FALSE(at_connection_limit("ERROR\r\n"));
  CHECK_FALSE(at_connection_limit("SERVER_ERROR out of memory\r\n"));
  CHECK_FALSE(at_connection_limit("STAT pid 1\r\nEND\r\n"));
}

TEST_CASE("memcached: replies are framed line by line with a cap on line length",
          "[collectors][memcached]") {
  using Kind = ReplyEnd::Kind;
  const std::string full = fixture("stats.txt");
  for (std::size_t cut : {std::size_t{0}, std::size_t{1}, std::size_t{17}, full.size() - 1}) {
    CHECK(find_reply_end(full.substr(0, cut), 4096).kind == Kind::kIncomplete);
  }
  const ReplyEnd whole = find_reply_end(full, 4096);
  CHECK(whole.kind == Kind::kComplete);
  CHECK(whole.length == full.size());
  // An error line ends a reply too; what follows it is left for the caller.
  const ReplyEnd error = find_reply_end("ERROR\r\nSTAT", 4096);
  CHECK(error.kind == Kind::kComplete);
  CHECK(error.length == 7);
  CHECK(find_reply_end("ERROR Too many open connections\r\n", 4096).kind == Kind::kComplete);

  const ReplyEnd garbage = find_reply_end("STAT pid 1\r\nhello\r\n", 4096);
  CHECK(garbage.kind == Kind::kMalformed);
  CHECK(garbage.error == "unexpected line \"hello\"");
  CHECK(find_reply_end(std::string("\0\0\0\n", 4), 4096).kind == Kind::kMalformed);
  // A line over the cap is malformed before its newline arrives, and after.
  const ReplyEnd endless = find_reply_end("STAT x " + std::string(5000, 'x'), 4096);
  CHECK(endless.kind == Kind::kMalformed);
  CHECK(endless.error == "a line longer than 4096 bytes");
  CHECK(find_reply_end("STAT x " + std::string(5000, 'x') + "\r\nEND\r\n", 4096).kind ==
        Kind::kMalformed);
  CHECK(find_reply_end("STAT x " + std::string(100, 'x'), 4096).kind == Kind::kIncomplete);
}

TEST_CASE("memcached: the probe accepts VERSION and nothing else", "[collectors][memcached]") {
  CHECK(*parse_version_reply("VERSION 1.6.18\r\n") == "1.6.18");
  CHECK_THAT(parse_version_reply("ERROR Too many open connections\r\n").error().message,
             Contains("unexpected reply to version: \"ERROR Too many open connections\""));
  CHECK_FALSE(parse_version_reply("VERSION \r\n").ok());
  CHECK_FALSE(parse_version_reply("version 1.6.18\r\n").ok());
}

TEST_CASE("memcached: families use memcached_exporter's names with a target label",
          "[collectors][memcached]") {
  MemcachedSample up = sample_from_fixtures("stats.txt", "settings.txt");
  up.cpu_utilization_ratio = 0.25;
  MemcachedSample down;
  down.target = "other";
  down.error = "connect: refused";
  const std::string text = render_families(memcached_families({up, down}));
  auto v = [&](const std::string& series) { return test::metric_value(text, series); };
  CHECK(v(R"(memcached_up{target="main"})") == 1);
  CHECK(v(R"(memcached_up{target="other"})") == 0);
  CHECK(v(R"(memcached_version{target="main",version="1.6.18"})") == 1);
  CHECK(v(R"(memcached_current_connections{target="main"})") == 1);
  CHECK(v(R"(memcached_max_connections{target="main"})") == 64);
  CHECK(v(R"(memcached_connections_total{target="main"})") == 51);
  CHECK(v(R"(memcached_connections_rejected_total{target="main"})") == 32);
  CHECK(v(R"(memcached_connections_listener_disabled_total{target="main"})") == 0);
  CHECK(v(R"(memcached_accepting_connections{target="main"})") == 1);
  CHECK(v(R"(memcached_process_user_cpu_seconds_total{target="main"})") == Approx(0.007843));
  CHECK(v(R"(memcached_limit_bytes{target="main"})") == 33554432);
  CHECK(v(R"(memcached_listen_backlog{target="main"})") == 256);
  CHECK(v(R"(memcached_maxconns_fast{target="main"})") == 1);
  CHECK(v(R"(memcached_threads{target="main"})") == 2);
  CHECK(v(R"(memcached_uptime_seconds{target="main"})") == 4);
  CHECK(v(R"(mcbacklog_memcached_cpu_utilization_ratio{target="main"})") == 0.25);
  // Types as memcached_exporter declares them (uptime aside: see docs/metrics.md).
  CHECK_THAT(text, Contains("# TYPE memcached_connections_total counter"));
  CHECK_THAT(text, Contains("# TYPE memcached_current_connections gauge"));
  CHECK_THAT(text, Contains("# TYPE memcached_version gauge"));
  CHECK_THAT(text, Contains("# TYPE memcached_uptime_seconds gauge"));
  // A target that is down has only memcached_up; no probe ran, so no probe series.
  CHECK_FALSE(v(R"(memcached_current_connections{target="other"})").has_value());
  CHECK(text.find("mcbacklog_probe") == std::string::npos);
}

TEST_CASE(
    "memcached: listener-disabled time is in seconds and rejected is absent without "
    "maxconns_fast",
    "[collectors][memcached]") {
  const MemcachedSample s =
      sample_from_fixtures("stats-no_maxconns_fast.txt", "settings-no_maxconns_fast.txt");
  const std::string text = render_families(memcached_families({s}));
  CHECK(test::metric_value(
            text, R"(memcached_connections_listener_disabled_seconds_total{target="main"})") ==
        Approx(1.007845));
  CHECK(test::metric_value(text, R"(memcached_maxconns_fast{target="main"})") == 0);
  CHECK(text.find("memcached_connections_rejected_total") == std::string::npos);
}

TEST_CASE("memcached: without stats settings the settings series are absent, max from stats",
          "[collectors][memcached]") {
  MemcachedSample s = sample_from_fixtures("stats.txt", "settings.txt");
  s.settings.reset();
  const std::string text = render_families(memcached_families({s}));
  CHECK(test::metric_value(text, R"(memcached_up{target="main"})") == 1);
  CHECK(test::metric_value(text, R"(memcached_max_connections{target="main"})") == 64);
  CHECK(text.find("memcached_listen_backlog") == std::string::npos);
  CHECK(text.find("memcached_maxconns_fast") == std::string::npos);
}

TEST_CASE(
    "memcached: 1.4.15 reports -c only as maxconns of stats settings, and every reader gets it",
    "[collectors][memcached]") {
  const MemcachedSample s = sample_from_fixtures("stats-1.4.15.txt", "settings-1.4.15.txt");
  CHECK(s.stats.version == "1.4.15");
  CHECK_FALSE(s.stats.max_connections.has_value());
  CHECK_FALSE(s.stats.rejected_connections.has_value());
  CHECK(max_connections(s) == 64);
  CHECK(worker_threads(s) == 2);
  CHECK(listen_backlog(s) == 256);
  CHECK(maxconns_fast(s) == false);
  const std::string text = render_families(memcached_families({s}));
  CHECK(test::metric_value(text, R"(memcached_max_connections{target="main"})") == 64);

  // Without stats settings there is no -c to give.
  MemcachedSample no_settings = s;
  no_settings.settings.reset();
  CHECK_FALSE(max_connections(no_settings).has_value());
  CHECK_FALSE(listen_backlog(no_settings).has_value());
  CHECK_FALSE(maxconns_fast(no_settings).has_value());
  CHECK(worker_threads(no_settings) == 2);
  // A target that is down has no values, whatever its last stats said.
  MemcachedSample down = s;
  down.up = false;
  CHECK_FALSE(max_connections(down).has_value());
  CHECK_FALSE(worker_threads(down).has_value());
  CHECK_FALSE(maxconns_fast(down).has_value());
}

TEST_CASE("memcached: stats win over stats settings, and threads falls back to num_threads",
          "[collectors][memcached]") {
  MemcachedSample s = sample_from_fixtures("stats.txt", "settings.txt");
  s.stats.max_connections = 100;
  s.settings->maxconns = 64;
  CHECK(max_connections(s) == 100);
  s.stats.threads.reset();
  s.settings->num_threads = 6;
  CHECK(worker_threads(s) == 6);
  const std::string text = render_families(memcached_families({s}));
  CHECK(test::metric_value(text, R"(memcached_threads{target="main"})") == 6);
}

TEST_CASE(
    "memcached: an unreadable stat loses its own series and what derives from it, the target "
    "stays up",
    "[collectors][memcached]") {
  StatsMap map = *parse_stats(fixture("stats.txt"));
  map["rusage_user"] = "0:34530";
  MemcachedSample s;
  s.target = "main";
  s.up = true;
  s.stats = memcached_stats(map, s.unreadable);
  s.settings = readable_settings(*parse_stats(fixture("settings.txt")));
  REQUIRE(s.unreadable.size() == 1);
  CHECK(s.unreadable[0].name == "rusage_user");
  const std::string text = render_families(memcached_families({s}));
  auto v = [&](const std::string& series) { return test::metric_value(text, series); };
  CHECK(v(R"(memcached_up{target="main"})") == 1);
  CHECK_FALSE(v(R"(memcached_process_user_cpu_seconds_total{target="main"})").has_value());
  CHECK(v(R"(memcached_process_system_cpu_seconds_total{target="main"})") == 0);
  CHECK(v(R"(memcached_current_connections{target="main"})") == 1);
  CHECK(v(R"(memcached_max_connections{target="main"})") == 64);
  // The CPU ratio needs both rusages.
  CHECK_FALSE(
      cpu_utilization(s.stats, {}, s.stats, SteadyClock::time_point{} + 1s, worker_threads(s))
          .has_value());
}

TEST_CASE("memcached: probe series include the histogram with buckets 100us to 10s",
          "[collectors][memcached]") {
  MemcachedSample s;
  s.target = "main";
  ProbeResult r;
  r.success = true;
  r.duration_seconds = 0.003;
  s.probe = r;
  for (double d : {0.00005, 0.003, 0.2, 20.0}) s.probe_latency.observe(d);
  s.probe_failures = 2;
  const std::string text = render_families(memcached_families({s}));
  auto v = [&](const std::string& series) { return test::metric_value(text, series); };
  CHECK(v(R"(mcbacklog_probe_success{target="main"})") == 1);
  CHECK(v(R"(mcbacklog_probe_duration_seconds{target="main"})") == 0.003);
  CHECK(v(R"(mcbacklog_probe_failures_total{target="main"})") == 2);
  CHECK(v(R"(mcbacklog_probe_latency_seconds_bucket{target="main",le="0.0001"})") == 1);
  CHECK(v(R"(mcbacklog_probe_latency_seconds_bucket{target="main",le="0.005"})") == 2);
  CHECK(v(R"(mcbacklog_probe_latency_seconds_bucket{target="main",le="0.25"})") == 3);
  CHECK(v(R"(mcbacklog_probe_latency_seconds_bucket{target="main",le="10"})") == 3);
  CHECK(v(R"(mcbacklog_probe_latency_seconds_bucket{target="main",le="+Inf"})") == 4);
  CHECK(v(R"(mcbacklog_probe_latency_seconds_count{target="main"})") == 4);
  CHECK(v(R"(mcbacklog_probe_latency_seconds_sum{target="main"})") == Approx(20.20305));
}

TEST_CASE("memcached: CPU utilisation is the rusage rate per worker thread",
          "[collectors][memcached]") {
  MemcachedStats a;
  a.pid = 10;
  a.rusage_user = 1.0;
  a.rusage_system = 0.5;
  a.threads = 4;
  MemcachedStats b = a;
  b.rusage_user = 2.5;
  b.rusage_system = 1.0;  // 2 CPU seconds over 1 s on 4 threads
  const SteadyClock::time_point t0{};
  CHECK(cpu_utilization(a, t0, b, t0 + 1s, 4) == Approx(0.5));
  CHECK(cpu_utilization(a, t0, b, t0 + 2s, 4) == Approx(0.25));
  CHECK(cpu_utilization(a, t0, b, t0 + 1s, 2) == Approx(1.0));
  CHECK_FALSE(cpu_utilization(a, t0, b, t0, 4).has_value());  // no time passed
  MemcachedStats restarted = b;
  restarted.pid = 11;
  CHECK_FALSE(cpu_utilization(a, t0, restarted, t0 + 1s, 4).has_value());
  CHECK_FALSE(cpu_utilization(b, t0, a, t0 + 1s, 4).has_value());  // CPU went backwards
  CHECK_FALSE(cpu_utilization(a, t0, b, t0 + 1s, std::nullopt).has_value());
  CHECK_FALSE(cpu_utilization(a, t0, b, t0 + 1s, 0).has_value());
  MemcachedStats unreadable = b;
  unreadable.rusage_user.reset();
  CHECK_FALSE(cpu_utilization(a, t0, unreadable, t0 + 1s, 4).has_value());
  // Rusages whose sum is too large for a double give no rate rather than NaN.
  MemcachedStats huge = a;
  huge.rusage_user = 1e308;
  huge.rusage_system = 1e308;
  CHECK_FALSE(cpu_utilization(huge, t0, huge, t0 + 1s, 4).has_value());
  MemcachedStats more = huge;
  more.rusage_user = 1.5e308;
  CHECK_FALSE(cpu_utilization(a, t0, more, t0 + 1s, 4).has_value());
}

TEST_CASE("memcached: reconnect delays double up to the cap with jitter",
          "[collectors][memcached]") {
  const Duration base = 1s;
  const Duration cap = 30s;
  CHECK(reconnect_delay(0, base, cap, 0.5) == Duration{0});
  CHECK(reconnect_delay(1, base, cap, 0.0) == 500ms);
  CHECK(reconnect_delay(1, base, cap, 1.0) == 1s);
  CHECK(reconnect_delay(2, base, cap, 1.0) == 2s);
  CHECK(reconnect_delay(5, base, cap, 1.0) == 16s);
  CHECK(reconnect_delay(6, base, cap, 1.0) == 30s);
  CHECK(reconnect_delay(1000, base, cap, 1.0) == 30s);
  CHECK(reconnect_delay(1000, base, cap, 0.0) == 15s);
}

TEST_CASE("memcached: the run timeout is half the interval, at most 5s",
          "[collectors][memcached]") {
  CHECK(MemcachedTiming::for_interval(1s).run_timeout == 500ms);
  CHECK(MemcachedTiming::for_interval(200ms).run_timeout == 100ms);
  CHECK(MemcachedTiming::for_interval(1h).run_timeout == 5s);
  CHECK(MemcachedTiming::for_interval(1s).connection.backoff_base == 1s);
  CHECK(MemcachedTiming::for_interval(1h).connection.backoff_base == 5s);
}

TEST_CASE("failure log: first failure, a new reason, then once per period, and recovery once",
          "[collectors]") {
  FailureLog log(1min);
  const FailureLog::Clock::time_point t0{};
  CHECK(log.failed("refused", t0));
  CHECK_FALSE(log.failed("refused", t0 + 1s));
  CHECK(log.failed("timeout", t0 + 2s));
  CHECK_FALSE(log.failed("timeout", t0 + 61s));
  CHECK(log.failed("timeout", t0 + 62s));
  CHECK(log.succeeded());
  CHECK_FALSE(log.succeeded());
  CHECK(log.failed("timeout", t0 + 63s));  // failing again is news
}
