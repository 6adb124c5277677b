#include <catch2/catch.hpp>

#include "collectors/netstat.hpp"
#include "collectors/sysctl.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using Catch::Matchers::Contains;

namespace {

std::string fixture(const std::string& rel) {
  return test::read_text_file(test::source_dir() + "/tests/fixtures/proc/" + rel);
}

}  // namespace

TEST_CASE("netstat: the captured netstat and snmp files give the overflow counters",
          "[collectors][netstat]") {
  NetstatTable t;
  REQUIRE(parse_netstat(fixture("net/netstat"), t).ok());
  REQUIRE(parse_netstat(fixture("net/snmp"), t).ok());
  const NetstatSample s = netstat_sample(t);
  CHECK(s.listen_overflows == 18);
  CHECK(s.listen_drops == 18);
  CHECK(s.syn_queue_drops == 0);
  CHECK(s.syncookies_sent == 0);
  CHECK(s.passive_opens == 3);
  CHECK(s.established == 6);
  CHECK(t.at("Tcp").at("MaxConn") == -1);  // signed values parse
}

TEST_CASE("netstat: a counter the kernel lacks is absent, not zero", "[collectors][netstat]") {
  NetstatTable t;
  REQUIRE(parse_netstat("TcpExt: ListenOverflows\nTcpExt: 7\n", t).ok());
  const NetstatSample s = netstat_sample(t);
  CHECK(s.listen_overflows == 7);
  CHECK_FALSE(s.listen_drops.has_value());
  const Families f = netstat_families(s);
  REQUIRE(f.size() == 1);
  CHECK(f[0].name == "mcbacklog_listen_overflows_total");
}

TEST_CASE("netstat: a header/value count mismatch is an error", "[collectors][netstat]") {
  NetstatTable t;
  auto st = parse_netstat("TcpExt: A B C\nTcpExt: 1 2\n", t);
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.error().message, Contains("line 2: 3 names but 2 values"));
}

TEST_CASE("netstat: a truncated file is an error", "[collectors][netstat]") {
  const std::string full = fixture("net/netstat");
  for (std::size_t cut : {full.find('\n') + 1, full.size() / 2, full.size() - 5}) {
    INFO(cut);
    NetstatTable t;
    CHECK_FALSE(parse_netstat(full.substr(0, cut), t).ok());
  }
}

TEST_CASE("netstat: non-numbers and mismatched prefixes are errors", "[collectors][netstat]") {
  NetstatTable t;
  CHECK_THAT(parse_netstat("TcpExt: A B\nTcpExt: 1 x\n", t).error().message,
             Contains("value \"x\" of B is not an integer"));
  CHECK_THAT(parse_netstat("TcpExt: A\nIpExt: 1\n", t).error().message,
             Contains("do not follow their header"));
  CHECK_FALSE(parse_netstat("TcpExt A\nTcpExt 1\n", t).ok());
  CHECK_FALSE(parse_netstat("TcpExt: A\nTcpExt: 99999999999999999999999\n", t).ok());
  CHECK_FALSE(parse_netstat(std::string("TcpExt: A\nTcpExt: 1\0 2\n", 21), t).ok());
}

TEST_CASE("netstat: an empty file parses to nothing", "[collectors][netstat]") {
  NetstatTable t;
  CHECK(parse_netstat("", t).ok());
  CHECK(t.empty());
}

TEST_CASE("sysctl: a value is one integer with optional whitespace", "[collectors][sysctl]") {
  CHECK(*parse_sysctl_value("4096\n") == 4096);
  CHECK(*parse_sysctl_value(fixture("sys/net/core/somaxconn")) == 4096);
  CHECK(*parse_sysctl_value(" 1 ") == 1);
  for (const char* bad : {"", "\n", "abc", "12 34", "1.5", "4096x"}) {
    INFO(bad);
    CHECK_FALSE(parse_sysctl_value(bad).ok());
  }
}

TEST_CASE("sysctl: the collector reads every setting from the procfs root",
          "[collectors][sysctl]") {
  SysctlCollector c(test::source_dir() + "/tests/fixtures/proc");
  Status result = fail("not called");
  c.collect([&](Status s) { result = std::move(s); });
  REQUIRE(result.ok());
  REQUIRE(c.last().has_value());
  CHECK(c.last()->somaxconn == 4096);
  CHECK(c.last()->tcp_max_syn_backlog == 2048);
  CHECK(c.last()->tcp_syncookies == 1);
  CHECK(c.last()->tcp_abort_on_overflow == 0);
  CHECK(c.Collect().size() == 4);
}

TEST_CASE(
    "sysctl: a missing setting is absent, a garbled one fails the run and clears the snapshot",
    "[collectors][sysctl]") {
  test::TempDir dir;
  dir.write("sys/net/core/somaxconn", "128\n");
  SysctlCollector c(dir.path());
  Status result = fail("not called");
  c.collect([&](Status s) { result = std::move(s); });
  REQUIRE(result.ok());
  CHECK(c.last()->somaxconn == 128);
  CHECK_FALSE(c.last()->tcp_syncookies.has_value());
  CHECK(c.Collect().size() == 1);

  dir.write("sys/net/core/somaxconn", "lots\n");
  c.collect([&](Status s) { result = std::move(s); });
  REQUIRE_FALSE(result.ok());
  CHECK_THAT(result.error().message, Contains("somaxconn"));
  CHECK_FALSE(c.last().has_value());
  CHECK(c.Collect().empty());
}

TEST_CASE("sysctl: the collector fails when none of its files exist", "[collectors][sysctl]") {
  test::TempDir dir;
  SysctlCollector c(dir.path());
  Status result = ok_status();
  c.collect([&](Status s) { result = std::move(s); });
  REQUIRE_FALSE(result.ok());
  CHECK_THAT(result.error().message,
             Contains("none of net.core.somaxconn") &&
                 Contains(dir.path() + "/sys/net: is paths.procfs a procfs?"));
  CHECK_FALSE(c.last().has_value());
  CHECK(c.Collect().empty());
}

TEST_CASE("netstat: the collector fails with the path when a file is missing",
          "[collectors][netstat]") {
  test::TempDir dir;
  NetstatCollector c(dir.path());
  Status result = ok_status();
  c.collect([&](Status s) { result = std::move(s); });
  REQUIRE_FALSE(result.ok());
  CHECK_THAT(result.error().message, Contains(dir.path() + "/net/netstat"));
  CHECK(c.Collect().empty());
}
