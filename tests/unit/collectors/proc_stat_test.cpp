// /proc/stat's cpu line, a thread's stat and schedstat, and /proc/net/softnet_stat: real captures
// (tests/fixtures/README.md) and malformed input.

#include <catch2/catch.hpp>

#include "collectors/cpu.hpp"
#include "collectors/proc_stat.hpp"
#include "collectors/softnet.hpp"
#include "common/families.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using Catch::Matchers::Contains;

namespace {

std::string fixture(const std::string& relative) {
  return test::read_text_file(test::source_dir() + "/tests/fixtures/" + relative);
}

}  // namespace

TEST_CASE("proc stat: the captured /proc/stat gives every CPU mode and the CPU count",
          "[collectors][cpu]") {
  auto s = parse_cpu_stat(fixture("proc/stat"));
  REQUIRE(s.ok());
  CHECK(s->cpus == 2);
  CHECK(s->times.user == 1265575);
  CHECK(s->times.nice == 47852);
  CHECK(s->times.system == 191690);
  CHECK(s->times.idle == 105223);
  CHECK(s->times.iowait == 2018);
  CHECK(s->times.softirq == 4699);
  CHECK(s->times.steal == 774);
  CHECK(s->times.total() == 1265575 + 47852 + 191690 + 105223 + 2018 + 4699 + 774);
  // The older capture too.
  auto older = parse_cpu_stat(fixture("process/stat"));
  REQUIRE(older.ok());
  CHECK(older->times.steal == 1770);
}

TEST_CASE("proc stat: a cpu line of an old kernel has no steal, and a bad one is an error",
          "[collectors][cpu]") {
  auto old = parse_cpu_stat("cpu  10 20 30 40\ncpu0 10 20 30 40\n");
  REQUIRE(old.ok());
  CHECK(old->times.steal == 0);
  CHECK(old->times.idle == 40);
  CHECK(old->cpus == 1);
  CHECK_THAT(parse_cpu_stat("intr 5\n").error().message, Contains("no \"cpu\" line"));
  CHECK_THAT(parse_cpu_stat("cpu  1 2 3\n").error().message, Contains("3 values"));
  CHECK_THAT(parse_cpu_stat("cpu  1 2 x 4 5\n").error().message, Contains("cpu value 3"));
  CHECK_THAT(parse_cpu_stat("cpu  1 2 -3 4 5\n").error().message, Contains("cpu value 3"));
  // A "cpu0" line alone is not the total.
  CHECK_FALSE(parse_cpu_stat("cpu0 1 2 3 4\n").ok());
}

TEST_CASE("proc stat: the cpu collector's series are seconds per mode", "[collectors][cpu]") {
  CpuSample s;
  s.times.steal = 250;
  s.times.user = 1000;
  const std::string text = render_families(cpu_families(s, 100));
  CHECK_THAT(text, Contains("mcbacklog_cpu_seconds_total{mode=\"steal\"} 2.5"));
  CHECK_THAT(text, Contains("mcbacklog_cpu_seconds_total{mode=\"user\"} 10"));
  CHECK_THAT(text, Contains("mcbacklog_cpu_seconds_total{mode=\"iowait\"} 0"));
}

TEST_CASE("proc stat: a captured memcached worker thread's stat and schedstat",
          "[collectors][memcached_threads]") {
  auto stat = parse_proc_stat(fixture("process/task_stat"));
  REQUIRE(stat.ok());
  CHECK(stat->comm == "mc-worker");
  CHECK(stat->utime_ticks == 2);
  CHECK(stat->stime_ticks == 7);
  CHECK(stat->start_ticks == 810028);
  CHECK(*parse_schedstat(fixture("process/task_schedstat")) == 99561192);
  // A command with spaces and parentheses.
  auto odd = parse_proc_stat(fixture("process/pid_stat"));
  REQUIRE(odd.ok());
  CHECK(odd->comm == "mc (worker) 1");
}

TEST_CASE("proc stat: malformed schedstat and task stat are errors",
          "[collectors][memcached_threads]") {
  CHECK_THAT(parse_schedstat("").error().message, Contains("0 values"));
  CHECK_THAT(parse_schedstat("1 2\n").error().message, Contains("2 values"));
  CHECK_THAT(parse_schedstat("1 x 3\n").error().message, Contains("value 2"));
  CHECK_THAT(parse_schedstat("-1 2 3\n").error().message, Contains("value 1"));
  CHECK_THAT(parse_proc_stat("12 (mc-worker S 1 2").error().message, Contains("parentheses"));
  CHECK_THAT(parse_proc_stat(") 12 (x").error().message, Contains("parentheses"));
  CHECK_THAT(parse_proc_stat("12 (mc-worker) S 1 2 3").error().message, Contains("fields"));
  std::string bad = fixture("process/task_stat");
  bad.replace(bad.find(" 2 7 "), 5, " 2 z ");  // stime
  CHECK_THAT(parse_proc_stat(bad).error().message, Contains("field 15"));
}

TEST_CASE("softnet: the captured softnet_stat of a 6.18 kernel, one line per CPU",
          "[collectors][softnet]") {
  auto cpus = parse_softnet_stat(fixture("proc/net/softnet_stat"));
  REQUIRE(cpus.ok());
  REQUIRE(cpus->size() == 2);
  CHECK((*cpus)[0].cpu == 0);
  CHECK((*cpus)[1].cpu == 1);  // the 13th column
  CHECK((*cpus)[0].processed == 0x003ab418);
  CHECK((*cpus)[0].time_squeeze == 1);
  const SoftnetSample s = sum_softnet(*cpus);
  CHECK(s.processed == 0x003ab418u + 0x0040aac5u);
  CHECK(s.dropped == 0);
  CHECK(s.time_squeeze == 1);
  CHECK(s.cpus == 2);
}

TEST_CASE("softnet: the 10- and 11-column lines of older kernels number CPUs by line",
          "[collectors][softnet]") {
  auto cpus = parse_softnet_stat(
      "0000000a 00000001 00000002 00000000 00000000 00000000 00000000 00000000 00000000 "
      "00000000\n"
      "0000000b 00000003 00000004 00000000 00000000 00000000 00000000 00000000 00000000 "
      "00000000 00000000\n");
  REQUIRE(cpus.ok());
  REQUIRE(cpus->size() == 2);
  CHECK((*cpus)[1].cpu == 1);
  CHECK(sum_softnet(*cpus).dropped == 4);
}

TEST_CASE("softnet: a CPU's 32-bit counter that wraps keeps the total rising",
          "[collectors][softnet]") {
  const std::vector<SoftnetCpu> before{{0, 0xfffffff0u, 5, 1}, {1, 100, 0, 0}};
  const std::vector<SoftnetCpu> after{{0, 0x00000010u, 7, 1}, {1, 150, 0, 2}, {2, 999, 9, 9}};
  const SoftnetSample start = sum_softnet(before);
  const SoftnetSample next = advance_softnet(start, before, after);
  CHECK(next.processed == start.processed + 0x20 + 50);
  CHECK(next.dropped == start.dropped + 2);  // the CPU that came online adds nothing
  CHECK(next.time_squeeze == start.time_squeeze + 2);
  CHECK(next.cpus == 3);
}

TEST_CASE("softnet: malformed softnet_stat is an error naming the line", "[collectors][softnet]") {
  CHECK_THAT(parse_softnet_stat("").error().message, Contains("no line"));
  CHECK_THAT(parse_softnet_stat("00000001 00000002\n").error().message,
             Contains("line 1: 2 columns"));
  CHECK_THAT(parse_softnet_stat("00000001 00000002 00000003\n0000000g 0 0\n").error().message,
             Contains("line 2: column 1"));
  CHECK_THAT(parse_softnet_stat("1 100000000 3\n").error().message,
             Contains("column 2 is not a 32-bit"));
  const std::string fifteen = "00000001 00000002 00000003 0 0 0 0 0 0 0 0 0 zz 0 0\n";
  CHECK_THAT(parse_softnet_stat(fifteen).error().message, Contains("column 13"));
}
