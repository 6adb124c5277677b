#include <catch2/catch.hpp>

#include "config/address.hpp"
#include "config/duration.hpp"

using namespace mcb;
using namespace std::chrono_literals;

TEST_CASE("duration: Prometheus notation parses to milliseconds", "[config][duration]") {
  CHECK(*parse_duration("0") == 0ms);
  CHECK(*parse_duration("100ms") == 100ms);
  CHECK(*parse_duration("1s") == 1000ms);
  CHECK(*parse_duration("1m30s") == 90s);
  CHECK(*parse_duration("2h") == 2h);
  CHECK(*parse_duration("1d") == 24h);
  CHECK(*parse_duration("1w") == 7 * 24h);
  CHECK(*parse_duration("1m1s1ms") == 61001ms);
}

TEST_CASE("duration: malformed text is an error, never a number", "[config][duration]") {
  for (const char* bad :
       {"", "1", "s", "1x", "-1s", "1.5s", "1s1m", "1s1s", "1 s", "9999999999999999999y"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad).ok());
  }
}

TEST_CASE("duration: formatting is the shortest notation and round-trips", "[config][duration]") {
  CHECK(format_duration(0ms) == "0s");
  CHECK(format_duration(100ms) == "100ms");
  CHECK(format_duration(90s) == "1m30s");
  CHECK(format_duration(3600s) == "1h");
  for (Duration d :
       {Duration(1ms), Duration(999ms), Duration(1001ms), Duration(61s), Duration(25h)})
    CHECK(*parse_duration(format_duration(d)) == d);
}

TEST_CASE("address: target addresses accept host:port, [v6]:port and unix paths",
          "[config][address]") {
  auto v4 = parse_target_address("127.0.0.1:11211");
  REQUIRE(v4.ok());
  CHECK(v4->host == "127.0.0.1");
  CHECK(v4->port == 11211);
  CHECK(v4->to_string() == "127.0.0.1:11211");
  auto v6 = parse_target_address("[::1]:11211");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->to_string() == "[::1]:11211");
  auto unix_socket = parse_target_address("unix:/run/m.sock");
  REQUIRE(unix_socket.ok());
  CHECK(unix_socket->is_unix());
  CHECK(unix_socket->to_string() == "unix:/run/m.sock");
  auto name = parse_target_address("cache-1.example:11211");
  REQUIRE(name.ok());
  CHECK(name->host == "cache-1.example");
}

TEST_CASE("address: malformed target addresses are errors", "[config][address]") {
  for (const char* bad : {"",
                          "127.0.0.1",
                          ":11211",
                          "127.0.0.1:0",
                          "127.0.0.1:65536",
                          "::1:11211",
                          "[::1]11211",
                          "[::1:11211",
                          "host:port",
                          "unix:",
                          "unix:x.sock",
                          "[[t2]:9741",
                          "[]:11211",
                          "[1.2.3.4]:11211",
                          "[::1%]:11211",
                          "[::g]:11211",
                          "a b:11211",
                          "a]b:11211",
                          "user@host:11211",
                          "host/x:11211"}) {
    INFO(bad);
    CHECK_FALSE(parse_target_address(bad).ok());
  }
  // A URL's scheme is named as such, not taken for an IPv6 host without brackets.
  CHECK(parse_target_address("tcp://127.0.0.1:11211").error().message ==
        "address \"tcp://127.0.0.1:11211\": no scheme (tcp://, memcache://); write \"host:port\"");
}

TEST_CASE("address: listen addresses allow an empty host and port 0", "[config][address]") {
  auto all = parse_listen_address(":9741");
  REQUIRE(all.ok());
  CHECK(all->host.empty());
  CHECK(all->port == 9741);
  CHECK(parse_listen_address("127.0.0.1:0")->port == 0);
  CHECK(parse_listen_address("[::]:9741")->host == "::");
  CHECK(parse_listen_address("[fe80::1%eth0]:9741")->host == "fe80::1%eth0");
  CHECK_FALSE(parse_listen_address("9741").ok());
  CHECK_FALSE(parse_listen_address("[]:9741").ok());
  // A name would be looked up at the start without a deadline: IP addresses and localhost only.
  CHECK(parse_listen_address("localhost:9741").ok());
  for (const char* name : {"1.2.3.4.5:9741", "blackhole.example:9741", "mc-host:9741"}) {
    CAPTURE(name);
    const auto e = parse_listen_address(name);
    REQUIRE_FALSE(e.ok());
    CHECK_THAT(e.error().message,
               Catch::Matchers::Contains("the host must be an IP address of this host, localhost, "
                                         "or empty for every address"));
  }
}
