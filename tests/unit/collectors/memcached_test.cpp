// The memcached protocol parsers on real captures from memcached 1.6.18 and on malformed replies,
// and the pure parts of the collector: families, CPU rate, backoff, histogram, log limiting.

#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <set>

#include "collectors/failure_log.hpp"
#include "collectors/memcached.hpp"
#include "common/families.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/memcached_exporter_families.hpp"
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
  CHECK(s.tcpport == 22122);
  CHECK(s.inter == "127.0.0.1");
}

TEST_CASE("memcached: the listeners of -p and -l are read as memcached reads them",
          "[collectors][memcached]") {
  auto listening = [](std::optional<std::int64_t> tcpport, std::optional<std::string> inter) {
    MemcachedSettings s;
    s.tcpport = tcpport;
    s.inter = std::move(inter);
    std::vector<std::string> out;
    for (const Endpoint& e : memcached_listen_endpoints(s)) out.push_back(e.to_string());
    return out;
  };
  using V = std::vector<std::string>;
  // No -l: every address (an empty host) on -p.
  CHECK(listening(11211, std::nullopt) == V{":11211"});
  // The captured 1.6.18 answer, and "NULL" read as no -l.
  CHECK(listening(22122, "127.0.0.1") == V{"127.0.0.1:22122"});
  CHECK_FALSE(readable_settings(parse_stats(fixture("settings.txt"))->with("inter", "NULL"))
                  .inter.has_value());
  // Several -l, joined by memcached with ','; ';' separates too; a port per entry or -p.
  CHECK(listening(11211, "127.0.0.1:11211,127.0.0.1:11212") ==
        V{"127.0.0.1:11211", "127.0.0.1:11212"});
  CHECK(listening(11211, "10.0.0.1;10.0.0.2:11300") == V{"10.0.0.1:11211", "10.0.0.2:11300"});
  // IPv6: in brackets with or without a port; without brackets it takes no port.
  CHECK(listening(11211, "[::1]:11213,[fe80::1]") == V{"[::1]:11213", "[fe80::1]:11211"});
  CHECK(listening(11211, "fd00::5") == V{"[fd00::5]:11211"});
  // "*" is every address; "notls:" before a listener without TLS (memcached -Z).
  CHECK(listening(11211, "*:11214,notls:127.0.0.1:11215") == V{":11214", "127.0.0.1:11215"});
  // -p 0 opens no TCP listener at all, whatever -l says; an unknown -p says nothing.
  CHECK(listening(0, "127.0.0.1:11212").empty());
  CHECK(listening(std::nullopt, "127.0.0.1:11212").empty());
  // Ports that are none (memcached refuses them, or port 0 binds one we cannot know) are left out.
  CHECK(listening(11211, "127.0.0.1:0,127.0.0.1:70000,127.0.0.1:x,[::1,127.0.0.2") ==
        V{"127.0.0.2:11211"});
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
  CHECK(v(R"(mcbacklog_memcached_listen_backlog{target="main"})") == 256);
  CHECK(v(R"(mcbacklog_memcached_maxconns_fast{target="main"})") == 1);
  CHECK(v(R"(mcbacklog_memcached_threads{target="main"})") == 2);
  CHECK(v(R"(mcbacklog_memcached_reserved_fds{target="main"})") == 10);
  CHECK(v(R"(mcbacklog_memcached_connection_structures{target="main"})") == 49);
  CHECK(v(R"(mcbacklog_memcached_unreadable_stats{target="main"})") == 0);
  CHECK(v(R"(memcached_uptime_seconds{target="main"})") == 4);
  CHECK(v(R"(mcbacklog_memcached_cpu_utilization_ratio{target="main"})") == 0.25);
  // Types as memcached_exporter writes them, uptime a counter.
  CHECK_THAT(text, Contains("# TYPE memcached_connections_total counter"));
  CHECK_THAT(text, Contains("# TYPE memcached_current_connections gauge"));
  CHECK_THAT(text, Contains("# TYPE memcached_version gauge"));
  CHECK_THAT(text, Contains("# TYPE memcached_uptime_seconds counter"));
  // The names memcached_exporter does not have are mcbacklogd's own.
  for (const char* name :
       {"memcached_listen_backlog", "memcached_maxconns_fast", "memcached_threads",
        "memcached_reserved_fds", "memcached_connection_structures",
        "memcached_connections_listener_disabled_seconds_total"}) {
    INFO(name);
    CHECK_THAT(text, !Contains("\n" + std::string(name)));
  }
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
            text,
            R"(mcbacklog_memcached_connections_listener_disabled_seconds_total{target="main"})") ==
        Approx(1.007845));
  CHECK(test::metric_value(text, R"(mcbacklog_memcached_maxconns_fast{target="main"})") == 0);
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
  CHECK(test::metric_value(text, R"(mcbacklog_memcached_threads{target="main"})") == 6);
}

TEST_CASE(
    "memcached: an unreadable stat loses its own series and what derives from it, the target "
    "stays up",
    "[collectors][memcached]") {
  const StatsMap map = parse_stats(fixture("stats.txt"))->with("rusage_user", "0:34530");
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
  CHECK(v(R"(mcbacklog_memcached_unreadable_stats{target="main"})") == 1);
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

namespace {

// The sample of the capture with items in all 63 slab classes (capture_memcached_slabs.py).
MemcachedSample sample_with_slabs() {
  MemcachedSample s = sample_from_fixtures("stats-slabs.txt", "settings-slabs.txt");
  auto slabs = std::make_shared<SlabStats>();
  REQUIRE(parse_stats_items(fixture("items-slabs.txt"), *slabs, s.unreadable).ok());
  REQUIRE(parse_stats_slabs(fixture("slabs-slabs.txt"), *slabs, s.unreadable).ok());
  REQUIRE(s.unreadable.empty());
  s.slabs = std::move(slabs);
  return s;
}

std::string differences(const std::vector<std::string>& d) {
  std::string out;
  for (const auto& line : d) out += "\n  " + line;
  return out;
}

}  // namespace

TEST_CASE("memcached: stats items and stats slabs of 63 classes parse into the slab stats",
          "[collectors][memcached]") {
  const MemcachedSample s = sample_with_slabs();
  const SlabStats& slabs = *s.slabs;
  REQUIRE(slabs.classes.size() == 63);
  for (std::size_t i = 0; i < slabs.classes.size(); ++i) {
    CHECK(slabs.classes[i].id == static_cast<int>(i) + 1);
  }
  CHECK(slabs.active_slabs == 63);
  CHECK(slabs.total_malloced == 73400320);
  const SlabClassStats& first = slabs.classes.front();
  CHECK(first.number == 87376);
  CHECK(first.number_hot == 17252);
  CHECK(first.number_cold == 70124);
  CHECK_FALSE(first.number_temp.has_value());  // no temporary LRU
  CHECK(first.age == 7);
  CHECK(first.mem_requested == 6891569);
  CHECK(first.outofmemory == 20);  // -M: the small items memcached refused
  CHECK(first.moves_to_cold == 70124);
  CHECK(first.hits_to_hot == 1);
  CHECK(first.hits_to_cold == 1);
  CHECK(first.chunk_size == 96);
  CHECK(first.total_pages == 8);
  CHECK(first.used_chunks == 87376);
  CHECK(first.cmd_set == 87410);
  CHECK(first.cas_hits == 1);
  CHECK(first.cas_badval == 1);
  const SlabClassStats& last = slabs.classes.back();
  CHECK(last.chunk_size == 524288);
  CHECK(last.number == 1);
  CHECK(last.mem_requested == 269044);
}

TEST_CASE("memcached: slab replies that are errors, malformed or unreadable in part",
          "[collectors][memcached]") {
  std::vector<UnreadableStat> unreadable;
  SlabStats out;
  CHECK_THAT(parse_stats_items("ERROR\r\n", out, unreadable).error().message,
             Contains("memcached replied \"ERROR\""));
  CHECK_THAT(parse_stats_slabs("STAT 1:chunk_size 96\r\nhello\r\nEND\r\n", out, unreadable)
                 .error()
                 .message,
             Contains("line 2: unexpected \"hello\""));
  CHECK_THAT(parse_stats_items("STAT items:1:number 5\r\n", out, unreadable).error().message,
             Contains("ends without END"));
  CHECK_THAT(parse_stats_slabs("END\r\nEND\r\n", out, unreadable).error().message,
             Contains("bytes after END"));
  CHECK(unreadable.empty());

  // An empty memcached: no classes, and its totals.
  SlabStats empty;
  REQUIRE(parse_stats_items("END\r\n", empty, unreadable).ok());
  REQUIRE(parse_stats_slabs("STAT active_slabs 0\r\nSTAT total_malloced 0\r\nEND\r\n", empty,
                            unreadable)
              .ok());
  CHECK(empty.classes.empty());
  CHECK(empty.total_malloced == 0);

  // One stat of the wrong form, and keys that name no class, cost only themselves; stats a
  // newer memcached adds are ignored; classes come out in order of id whatever the reply's.
  SlabStats some;
  REQUIRE(parse_stats_items("STAT items:12:number 3\r\nSTAT items:12:age 1.5\r\n"
                            "STAT items:x:number 1\r\nSTAT itemz:1:number 1\r\n"
                            "STAT items:2:number 7\r\nSTAT items:2:brand_new 9\r\nEND\r\n",
                            some, unreadable)
              .ok());
  REQUIRE(parse_stats_slabs("STAT 2:chunk_size 120\r\nSTAT 3:chunk_size -\r\n"
                            "STAT active_slabs two\r\nSTAT new_global 1\r\nEND\r\n",
                            some, unreadable)
              .ok());
  REQUIRE(some.classes.size() == 3);
  CHECK(some.classes[0].id == 2);
  CHECK(some.classes[0].number == 7);
  CHECK(some.classes[0].chunk_size == 120);
  CHECK(some.classes[1].id == 3);
  CHECK_FALSE(some.classes[1].chunk_size.has_value());
  CHECK(some.classes[2].id == 12);
  CHECK(some.classes[2].number == 3);
  CHECK_FALSE(some.classes[2].age.has_value());
  CHECK_FALSE(some.active_slabs.has_value());
  std::vector<std::string> names;
  for (const UnreadableStat& u : unreadable) names.push_back(u.command + " " + u.name);
  CHECK(names == std::vector<std::string>{"stats items items:12:age", "stats items items:x:number",
                                          "stats items itemz:1:number", "stats slabs 3:chunk_size",
                                          "stats slabs active_slabs"});
}

TEST_CASE(
    "memcached: a peer's slab ids past any memcached's are unreadable, and ids in any order are "
    "read in one pass",
    "[collectors][memcached]") {
  // A hostile reply: 9000 classes counting down from 99999 made 9000 series, and inserting each
  // at the front held the loop for seconds.
  std::string items;
  std::string slabs;
  for (int id = 99999; id > 90999; --id) {
    items += "STAT items:" + std::to_string(id) + ":number 1\r\n";
    slabs += "STAT " + std::to_string(id) + ":chunk_size 96\r\n";
  }
  // Then the ids a memcached may use, backwards: 255 to 0.
  for (int id = 255; id >= 0; --id) items += "STAT items:" + std::to_string(id) + ":number 2\r\n";
  items += "END\r\n";
  slabs += "END\r\n";
  SlabStats out;
  std::vector<UnreadableStat> unreadable;
  REQUIRE(parse_stats_items(items, out, unreadable).ok());
  REQUIRE(parse_stats_slabs(slabs, out, unreadable).ok());
  REQUIRE(out.classes.size() == 256);
  CHECK(out.classes.front().id == 0);
  CHECK(out.classes.back().id == kMaxSlabClassId);
  CHECK(
      std::is_sorted(out.classes.begin(), out.classes.end(),
                     [](const SlabClassStats& a, const SlabClassStats& b) { return a.id < b.id; }));
  CHECK(out.classes[63].number == 2);
  CHECK(unreadable.size() == 18000);
  CHECK(unreadable.front().name == "items:99999:number");
}

TEST_CASE(
    "memcached: the families of memcached 1.6.18 with items in all 63 classes are "
    "memcached_exporter's, name, type and labels",
    "[collectors][memcached]") {
  const std::string text = render_families(memcached_families({sample_with_slabs()}));
  const auto d = test::exporter_differences(text, test::kDefaultSources);
  INFO("differences:" << differences(d));
  CHECK(d.empty());
  // 69 of memcached_exporter's 103 families: all but extstore's 19, the proxy's 14 and the
  // temporary LRU's one.
  std::set<std::string> families;
  for (const auto& f : memcached_families({sample_with_slabs()})) {
    if (f.name.rfind("memcached_", 0) == 0) families.insert(f.name);
  }
  CHECK(families.size() == 69);
}

TEST_CASE("memcached: extstore's and the proxy's families come when memcached reports them",
          "[collectors][memcached]") {
  MemcachedSample s = sample_from_fixtures("stats-extstore.txt", "settings.txt");
  REQUIRE(s.stats.extstore.has_value());
  CHECK(s.stats.extstore->limit_maxbytes == 67108864);
  CHECK_FALSE(s.stats.proxy.has_value());  // round_robin_fallback alone is no proxy
  // A proxy's stats, by the names memcached's protocol.txt gives them.
  StatsMap proxy_stats = *parse_stats(fixture("stats.txt"));
  for (const char* name :
       {"proxy_conn_requests", "proxy_conn_errors", "proxy_conn_oom", "proxy_req_active",
        "proxy_config_reloads", "proxy_config_reload_fails", "proxy_config_cron_runs",
        "proxy_config_cron_fails", "proxy_backend_total", "proxy_backend_marked_bad",
        "proxy_backend_failed", "proxy_request_failed_depth"}) {
    proxy_stats = proxy_stats.with(name, "3");
  }
  MemcachedSample proxy = sample_from_fixtures("stats.txt", "settings.txt");
  proxy.target = "proxy";
  proxy.stats = readable_stats(proxy_stats);
  REQUIRE(proxy.stats.proxy.has_value());
  CHECK(proxy.stats.proxy->backend_total == 3);
  CHECK(proxy.stats.proxy->round_robin_fallback == 0);

  const std::string text = render_families(memcached_families({s, proxy}));
  for (auto source : {test::ExporterSource::kExtstore, test::ExporterSource::kProxy}) {
    const auto d = test::exporter_differences(text, {source});
    INFO("differences:" << differences(d));
    CHECK(d.empty());
  }
  CHECK(test::metric_value(text, R"(memcached_extstore_bytes_limit{target="main"})") == 67108864);
  CHECK(test::metric_value(text, R"(memcached_proxy_backend_total{target="proxy"})") == 3);
  CHECK_FALSE(
      test::metric_value(text, R"(memcached_proxy_backend_total{target="main"})").has_value());
}

TEST_CASE("memcached: commands are counted as memcached_exporter counts them, sets without cas",
          "[collectors][memcached]") {
  const std::string text = render_families(memcached_families({sample_with_slabs()}));
  auto command = [&](const char* c, const char* status) {
    return test::metric_value(text, std::string("memcached_commands_total{target=\"main\",") +
                                        "command=\"" + c + "\",status=\"" + status + "\"}");
  };
  CHECK(command("get", "hit") == 3);
  CHECK(command("get", "miss") == 1);
  CHECK(command("delete", "hit") == 2);
  CHECK(command("delete", "miss") == 1);
  CHECK(command("incr", "hit") == 1);
  CHECK(command("incr", "miss") == 1);
  CHECK(command("decr", "hit") == 1);
  CHECK(command("decr", "miss") == 0);
  CHECK(command("touch", "hit") == 1);
  CHECK(command("touch", "miss") == 1);
  CHECK(command("cas", "hit") == 1);
  CHECK(command("cas", "miss") == 1);
  CHECK(command("cas", "badval") == 1);
  CHECK(command("flush", "hit") == 0);
  CHECK(command("set", "hit") == 87473 - 3);  // cmd_set less cas hits, misses and bad values
  auto slab = [&](const std::string& series) { return test::metric_value(text, series); };
  CHECK(
      slab(R"(memcached_slab_commands_total{target="main",slab="1",command="set",status="hit"})") ==
      87410 - 2);
  CHECK(
      slab(
          R"(memcached_slab_commands_total{target="main",slab="1",command="cas",status="badval"})") ==
      1);
  CHECK(slab(R"(memcached_slab_lru_hits_total{target="main",slab="1",lru="cold"})") == 1);
  CHECK(slab(R"(memcached_slab_items_outofmemory_total{target="main",slab="1"})") == 20);
  CHECK(slab(R"(memcached_slab_chunk_size_bytes{target="main",slab="63"})") == 524288);
  CHECK(slab(R"(memcached_slab_mem_requested_bytes{target="main",slab="63"})") == 269044);
  CHECK(slab(R"(memcached_malloced_bytes{target="main"})") == 73400320);
  CHECK(slab(R"(memcached_current_items{target="main"})") == 87438);
  CHECK(slab(R"(memcached_item_no_memory_total{target="main"})") == 20);
  CHECK(slab(R"(memcached_lru_crawler_enabled{target="main"})") == 1);
  CHECK(slab(R"(memcached_lru_crawler_hot_max_factor{target="main"})") == Approx(0.2));
}

TEST_CASE(
    "memcached: the crawler's settings only while it is on, and mem_requested of stats slabs "
    "where stats items has none",
    "[collectors][memcached]") {
  MemcachedSample s = sample_from_fixtures("stats.txt", "settings.txt");
  s.settings->lru_crawler = false;
  auto slabs = std::make_shared<SlabStats>();
  std::vector<UnreadableStat> unreadable;
  REQUIRE(parse_stats_slabs("STAT 5:chunk_size 240\r\nSTAT 5:mem_requested 1000\r\nEND\r\n", *slabs,
                            unreadable)
              .ok());
  s.slabs = slabs;
  const std::string text = render_families(memcached_families({s}));
  CHECK(text.find("memcached_lru_crawler_enabled") == std::string::npos);
  CHECK(text.find("memcached_lru_crawler_sleep") == std::string::npos);
  CHECK(test::metric_value(text, R"(memcached_slab_mem_requested_bytes{target="main",slab="5"})") ==
        1000);
  // A target that is down has no slab series, whatever its last slab stats.
  s.up = false;
  const std::string down = render_families(memcached_families({s}));
  CHECK(down.find("memcached_slab_") == std::string::npos);
  CHECK(test::metric_value(down, R"(memcached_up{target="main"})") == 0);
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

TEST_CASE("memcached: the run timeout is the interval, at most 5s", "[collectors][memcached]") {
  // No earlier than the next cycle (which ends a run still waiting, overdue()), at most 5 s.
  CHECK(MemcachedTiming::for_interval(1s).run_timeout == 1s);
  CHECK(MemcachedTiming::for_interval(200ms).run_timeout == 200ms);
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
  CHECK(log.succeeded(t0 + 62s));
  CHECK(log.note().empty());
  CHECK_FALSE(log.succeeded(t0 + 63s));
  CHECK(log.failed("timeout", t0 + 63s));  // failing again is news
}

TEST_CASE(
    "failure log: a peer that flaps gets 5 lines a minute, then the state it settles in with the "
    "count left out",
    "[collectors]") {
  FailureLog log(1min);
  const FailureLog::Clock::time_point t0{};
  int lines = 0;
  // Down, up, down, up: a change every second for 20 s, as a server alternating an error and an
  // answer makes.
  for (int i = 1; i <= 20; ++i) {
    const auto t = t0 + std::chrono::seconds(i);
    if (i % 2 == 1 ? log.failed("ERROR", t) : log.succeeded(t)) ++lines;
  }
  CHECK(lines == 5);
  // Up since 20 s: logged once it has held 10 s, saying how many changes were left out.
  CHECK_FALSE(log.succeeded(t0 + 25s));
  REQUIRE(log.succeeded(t0 + 30s));
  CHECK(log.note() == " (after 15 changes not logged: it flaps)");
  CHECK_FALSE(log.succeeded(t0 + 31s));
  // Reasons that flip while down are budgeted alike; the settled failure is logged too.
  for (int i = 1; i <= 10; ++i) {
    const auto t = t0 + 2min + std::chrono::seconds(i);
    if (log.failed(i % 2 == 1 ? "refused" : "timeout", t)) ++lines;
  }
  CHECK(lines == 10);
  CHECK_FALSE(log.failed("timeout", t0 + 2min + 15s));
  REQUIRE(log.failed("timeout", t0 + 2min + 20s));
  CHECK(log.note() == " (after 5 changes not logged: it flaps)");
}
