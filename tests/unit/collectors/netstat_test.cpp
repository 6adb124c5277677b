#include <catch2/catch.hpp>

#include "collectors/netstat.hpp"
#include "collectors/sysctl.hpp"
#include "common/clock.hpp"
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
  NetstatSample s;
  REQUIRE(parse_netstat(fixture("net/netstat"), s).ok());
  REQUIRE(parse_netstat(fixture("net/snmp"), s).ok());
  CHECK(s.listen_overflows == 18);
  CHECK(s.listen_drops == 18);
  CHECK(s.syn_queue_drops == 0);
  CHECK(s.syncookies_sent == 0);
  CHECK(s.passive_opens == 3);
  CHECK(s.established == 6);
  CHECK(s.out_segments == 18);
  CHECK(s.retransmitted_segments == 9);
}

TEST_CASE("netstat: signed values parse", "[collectors][netstat]") {
  NetstatSample s;
  REQUIRE(parse_netstat("Tcp: RtoAlgorithm MaxConn CurrEstab\nTcp: 1 -1 -2\n", s).ok());
  CHECK(s.established == -2);
}

TEST_CASE("netstat: a counter the kernel lacks is absent, not zero", "[collectors][netstat]") {
  NetstatSample s;
  REQUIRE(parse_netstat("TcpExt: ListenOverflows\nTcpExt: 7\n", s).ok());
  CHECK(s.listen_overflows == 7);
  CHECK_FALSE(s.listen_drops.has_value());
  const Families f = netstat_families(s);
  REQUIRE(f.size() == 1);
  CHECK(f[0].name == "mcbacklog_listen_overflows_total");
}

TEST_CASE("netstat: a counter is taken from its own prefix only", "[collectors][netstat]") {
  // MPTcpExt and IpExt have names of their own; a TcpExt name under another prefix is not it.
  NetstatSample s;
  REQUIRE(parse_netstat("IpExt: ListenOverflows CurrEstab\nIpExt: 5 6\n"
                        "Tcp: ListenDrops CurrEstab\nTcp: 7 8\n",
                        s)
              .ok());
  CHECK_FALSE(s.listen_overflows.has_value());
  CHECK_FALSE(s.listen_drops.has_value());
  CHECK(s.established == 8);
}

TEST_CASE("netstat: a second file adds to the sample and keeps what it does not name",
          "[collectors][netstat]") {
  NetstatSample s;
  REQUIRE(parse_netstat("TcpExt: ListenOverflows ListenDrops\nTcpExt: 1 2\n", s).ok());
  REQUIRE(parse_netstat("Tcp: PassiveOpens\r\nTcp: 3\r\n\n", s).ok());
  CHECK(s.listen_overflows == 1);
  CHECK(s.listen_drops == 2);
  CHECK(s.passive_opens == 3);
}

TEST_CASE("netstat: tabs and runs of blanks separate words", "[collectors][netstat]") {
  NetstatSample s;
  REQUIRE(parse_netstat("TcpExt:\tA  ListenDrops \nTcpExt: 1\t\t 9  \n", s).ok());
  CHECK(s.listen_drops == 9);
}

TEST_CASE("netstat: a header/value count mismatch is an error", "[collectors][netstat]") {
  NetstatSample s;
  auto st = parse_netstat("TcpExt: A B C\nTcpExt: 1 2\n", s);
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.error().message, Contains("line 2: 3 names but 2 values"));
  st = parse_netstat("TcpExt: A\nTcpExt: 1 2\n", s);
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.error().message, Contains("line 2: 1 names but 2 values"));
}

TEST_CASE("netstat: a truncated file is an error", "[collectors][netstat]") {
  for (const std::string name : {"net/netstat", "net/snmp"}) {
    const std::string full = fixture(name);
    for (std::size_t cut : {full.find('\n') + 1, full.size() / 2, full.size() - 5}) {
      INFO(name << " cut at " << cut);
      NetstatSample s;
      CHECK_FALSE(parse_netstat(full.substr(0, cut), s).ok());
    }
  }
}

TEST_CASE("netstat: non-numbers and mismatched prefixes are errors", "[collectors][netstat]") {
  NetstatSample s;
  CHECK_THAT(parse_netstat("TcpExt: A B\nTcpExt: 1 x\n", s).error().message,
             Contains("value \"x\" of B is not an integer"));
  // A counter the sample does not hold is checked all the same.
  CHECK_THAT(parse_netstat("Ip: Forwarding\nIp: 2x\n", s).error().message,
             Contains("line 2: value \"2x\" of Forwarding is not an integer"));
  CHECK_THAT(parse_netstat("TcpExt: A\nIpExt: 1\n", s).error().message,
             Contains("do not follow their header"));
  CHECK_THAT(parse_netstat("TcpExt A\nTcpExt 1\n", s).error().message,
             Contains("line 1: expected \"Prefix: Name ...\""));
  CHECK_THAT(parse_netstat("Tcp: A\nTcp: 1\n  \t \nTcp: 1\n", s).error().message,
             Contains("line 3: expected"));
  CHECK_THAT(parse_netstat("Tcp: A\nTcp: 1\nTcp: B\n", s).error().message,
             Contains("line 3: a header line without its value line"));
  CHECK_FALSE(parse_netstat("TcpExt: A\nTcpExt: 99999999999999999999999\n", s).ok());
  CHECK_FALSE(parse_netstat(std::string("TcpExt: A\nTcpExt: 1\0 2\n", 21), s).ok());
  CHECK_FALSE(parse_netstat("TcpExt: A\nTcpExt: +1\n", s).ok());
  CHECK_FALSE(parse_netstat("TcpExt: A\nTcpExt: -\n", s).ok());
  CHECK(parse_netstat(":\n:\n", s).ok());  // a bare colon: a prefix of no counter
}

TEST_CASE("netstat: an empty file parses to nothing", "[collectors][netstat]") {
  NetstatSample s;
  CHECK(parse_netstat("", s).ok());
  CHECK(parse_netstat("\n\r\n", s).ok());
  CHECK(netstat_families(s).empty());
}

TEST_CASE("netstat: the collector reads the network namespace's files run after run",
          "[collectors][netstat]") {
  // The real kernel's files, through descriptors kept open: every run formats them anew.
  NetstatCollector c("/proc");
  for (int run = 0; run < 3; ++run) {
    Status result = fail("not called");
    c.collect([&](Status s) { result = std::move(s); });
    REQUIRE(result.ok());
    REQUIRE(c.last().has_value());
    CHECK(c.last()->listen_overflows.has_value());
    CHECK(c.last()->passive_opens.has_value());
    CHECK(c.last()->established.has_value());
  }
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
  SysctlCollector c(dir.path(), Duration::zero());  // every run reads
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

TEST_CASE("sysctl: the settings are read once a minute, and every run after a failure",
          "[collectors][sysctl]") {
  ManualTime time;
  test::TempDir dir;
  dir.write("sys/net/core/somaxconn", "128\n");
  SysctlCollector c(dir.path());
  Status result = fail("not called");
  auto run = [&] {
    result = fail("not called");
    c.collect([&](Status s) { result = std::move(s); });
  };
  run();
  REQUIRE(result.ok());
  CHECK(c.last()->somaxconn == 128);

  // Changed by hand: the runs of the next minute keep the value read, and its families.
  dir.write("sys/net/core/somaxconn", "4096\n");
  time.advance(std::chrono::seconds(59));
  run();
  REQUIRE(result.ok());
  CHECK(c.last()->somaxconn == 128);
  REQUIRE(c.Collect().size() == 1);
  CHECK(c.Collect()[0].metric.at(0).gauge.value == 128);
  time.advance(std::chrono::seconds(1));
  run();
  REQUIRE(result.ok());
  CHECK(c.last()->somaxconn == 4096);
  CHECK(c.Collect()[0].metric.at(0).gauge.value == 4096);

  // A failed read is tried again at the next run, not a minute later.
  time.advance(std::chrono::minutes(1));
  dir.write("sys/net/core/somaxconn", "lots\n");
  run();
  REQUIRE_FALSE(result.ok());
  CHECK(c.Collect().empty());
  dir.write("sys/net/core/somaxconn", "256\n");
  time.advance(std::chrono::seconds(1));
  run();
  REQUIRE(result.ok());
  CHECK(c.last()->somaxconn == 256);
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

  // The files appear: the next run opens them.
  dir.write("net/netstat", "TcpExt: ListenOverflows\nTcpExt: 4\n");
  dir.write("net/snmp", "Tcp: CurrEstab\nTcp: 2\n");
  c.collect([&](Status s) { result = std::move(s); });
  REQUIRE(result.ok());
  CHECK(c.last()->listen_overflows == 4);
  CHECK(c.last()->established == 2);

  // A garbled file fails the run with its path, and a good one is read again after.
  dir.write("net/snmp", "Tcp: CurrEstab\nTcp: many\n");
  c.collect([&](Status s) { result = std::move(s); });
  REQUIRE_FALSE(result.ok());
  CHECK_THAT(result.error().message, Contains(dir.path() + "/net/snmp: line 2"));
  CHECK(c.Collect().empty());
  dir.write("net/snmp", "Tcp: CurrEstab\nTcp: 3\n");
  c.collect([&](Status s) { result = std::move(s); });
  REQUIRE(result.ok());
  CHECK(c.last()->established == 3);
}
