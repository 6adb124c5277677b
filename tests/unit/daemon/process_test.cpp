#include <catch2/catch.hpp>

#include "common/families.hpp"
#include "daemon/process_metrics.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/process.hpp"

using namespace mcb;

TEST_CASE("process metrics: /proc/self/stat is parsed even with odd command names",
          "[daemon][process]") {
  const std::string stat =
      "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 3 0 "
      "987654 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  auto s = parse_proc_stat(stat);
  REQUIRE(s.ok());
  CHECK(s->utime_ticks == 250);
  CHECK(s->stime_ticks == 50);
  CHECK(s->start_ticks == 987654);
  CHECK(s->virtual_bytes == 123456789);
  CHECK(s->rss_pages == 2048);
  CHECK_FALSE(parse_proc_stat("1234 (x) S 1 2 3").ok());
  CHECK_FALSE(parse_proc_stat("no parentheses").ok());
  CHECK(*parse_boot_time("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n") == 1700000000);
  CHECK_FALSE(parse_boot_time("cpu 1\n").ok());
}

TEST_CASE("process metrics: real captures of /proc/<pid>/stat and /proc/stat parse",
          "[daemon][process]") {
  const std::string dir = test::source_dir() + "/tests/fixtures/process/";
  auto s = parse_proc_stat(test::read_text_file(dir + "pid_stat"));  // command "mc (worker) 1"
  REQUIRE(s.ok());
  CHECK(s->start_ticks == 377805);
  CHECK(s->virtual_bytes == 2990080);
  CHECK(s->rss_pages == 414);
  CHECK(*parse_boot_time(test::read_text_file(dir + "stat")) == 1795511715);
}

TEST_CASE("process metrics: the daemon's own process is described", "[daemon][process]") {
  ProcessMetrics p;
  std::map<std::string, double> values;
  for (const auto& f : p.Collect()) {
    values[f.name] = f.metric.at(0).gauge.value + f.metric.at(0).counter.value;
  }
  CHECK(values.count("process_cpu_seconds_total") == 1);
  CHECK(values["process_resident_memory_bytes"] > 0);
  CHECK(values["process_open_fds"] >= 3);
  CHECK(values["process_max_fds"] >= values["process_open_fds"]);
  CHECK(values["process_start_time_seconds"] > 1.6e9);
}
