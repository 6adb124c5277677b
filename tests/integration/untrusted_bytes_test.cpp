// Bytes from a hostile peer never reach a log line or a reply raw: a memcached-like server that
// answers the probe with terminal escapes, a carriage return that would forge a log line and a
// NUL, then closes without a newline. The daemon's log shows them escaped, and /alerts stays
// valid JSON in valid UTF-8. Runs in its own network namespace.

#include <catch2/catch.hpp>

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <sstream>

#include "common/text.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/memcached.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using namespace std::string_literals;
using Catch::Matchers::Contains;

namespace {

// Neither a terminal control nor a byte that would end or rewrite a log line.
bool has_raw_control(const std::string& text) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\n') || u == 0x7f) return true;
  }
  return false;
}

}  // namespace

TEST_CASE(
    "untrusted bytes: a peer that closes the probe after escapes, a CR and a NUL without a "
    "newline is logged quoted and /alerts stays valid JSON",
    "[integration][memcached][quoting]") {
  test::enter_private_netns();
  const std::string hostile =
      "\x1b]0;owned\x07\x1b[2J\x1b[31mVERSION 1.6\r2026-01-01T00:00:00Z "
      "error forged line\0\xff\xfe"s;
  test::FakeServer peer([&](test::FakeConnection& c) {
    for (;;) {
      auto line = c.read_line(10s);
      if (!line) return;
      if (*line == "version") {
        c.send(hostile);
        return;  // closed, no newline sent
      }
      if (*line == "stats") c.send(test::fake::stats_reply({{"pid", "1"}, {"version", "9.9"}}));
      if (*line == "stats settings") c.send("ERROR\r\n");
    }
  });
  test::Daemon d(
      "interval: 200ms\ncollectors:\n  sockdiag: { enabled: false }\n"
      "  netdev: { enabled: false }\ntargets:\n"
      "  - { name: hostile, address: \"" +
      peer.address() + "\", probe_interval: 200ms }\n");
  auto failed = d.process().wait_for_output(
      std::regex("probe of memcached target hostile \\([^)]*\\) failed: ([^\\n]*)"), 15s);
  REQUIRE(failed.has_value());
  INFO("logged: " << *failed);
  // Its first byte is no text: the probe says so (kNotTextProtocol) and quotes what came.
  CHECK_THAT(*failed,
             Contains(R"(connection accepted, but the reply is not text: "\x1b]0;owned\x07)"));
  CHECK_THAT(*failed, Contains(R"(\rVERSION)") || Contains(R"(VERSION 1.6\r2026)"));
  CHECK_THAT(*failed, Contains(R"(\x00\xff\xfe")"));
  const std::string log = d.output();
  CHECK_FALSE(has_raw_control(log));
  CHECK(is_valid_utf8(log));

  // /alerts carries the probe's error as evidence: JSON, valid UTF-8, the bytes escaped.
  std::string body;
  REQUIRE(test::eventually(
      [&] {
        auto r = d.get("/alerts");
        if (!r.ok() || r->status != 200) return false;
        body = r->body;
        return body.find("owned") != std::string::npos;
      },
      15s));
  INFO(body);
  CHECK(is_valid_utf8(body));
  CHECK_FALSE(has_raw_control(body));
  std::istringstream in(body);
  boost::property_tree::ptree tree;
  CHECK_NOTHROW(boost::property_tree::read_json(in, tree));
  CHECK(d.process().running());
}

TEST_CASE(
    "untrusted bytes: NIC names with a terminal escape and bytes that are not UTF-8 are escaped "
    "in diagnose's report",
    "[integration][netdev][quoting][diagnosis]") {
  // The kernel takes any byte but '/', ':' and white space in a device name, and anyone with
  // CAP_NET_ADMIN in a watched namespace (a pod's) can make one.
  test::enter_private_netns();
  const auto made =
      test::run_command(R"sh(ip link add "$(printf 'e\033[31mx')" type veth peer name )sh"
                        R"sh("$(printf 'b\377\376')")sh");
  INFO(made.output);
  REQUIRE(made.exit_code == 0);
  test::TempDir dir;
  const std::string config = dir.write(
      "nic.yaml", "targets: []\ncollectors: { netdev: { include: \".\", exclude: \"^lo$\" } }\n");
  test::Child diagnose({test::daemon_binary(), "diagnose", "--wait=1s", "--config.file=" + config});
  const auto code = diagnose.wait_exit(60s);
  const std::string out = diagnose.output();
  INFO(out);
  REQUIRE(code.has_value());
  CHECK_THAT(out, Contains(R"(NIC e\x1b[31mx)"));
  CHECK_THAT(out, Contains(R"(NIC b\xff\xfe)"));
  CHECK_THAT(out, Contains(R"(NetworkSaturated [e\x1b[31mx])"));
  CHECK_FALSE(has_raw_control(out));
  CHECK(is_valid_utf8(out));
}
