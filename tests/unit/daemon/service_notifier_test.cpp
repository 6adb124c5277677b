#include <catch2/catch.hpp>

#include <cstddef>
#include <string>

#include "daemon/service_notifier.hpp"

using namespace mcb;
using namespace std::chrono_literals;

namespace {

constexpr pid_t kSelf = 4242;

std::string path_of(const NotifyAddress& a) {
  const std::size_t n = a.length - offsetof(sockaddr_un, sun_path);
  return {a.address.sun_path, n};
}

}  // namespace

TEST_CASE("service notifier: without NOTIFY_SOCKET nothing is sent and the watchdog is off",
          "[daemon][notify]") {
  const auto env = parse_notify_environment(nullptr, "30000000", nullptr, kSelf);
  CHECK_FALSE(env.socket.has_value());
  CHECK_FALSE(env.watchdog_timeout.has_value());
  CHECK(env.problems.empty());
}

TEST_CASE("service notifier: a socket path is addressed with its terminating NUL",
          "[daemon][notify]") {
  const auto env = parse_notify_environment("/run/systemd/notify", nullptr, nullptr, kSelf);
  REQUIRE(env.socket.has_value());
  CHECK(env.socket->address.sun_family == AF_UNIX);
  CHECK(path_of(*env.socket) == std::string("/run/systemd/notify\0", 20));
  CHECK_FALSE(env.watchdog_timeout.has_value());
}

TEST_CASE("service notifier: an @name is the abstract namespace, a leading NUL and no trailing one",
          "[daemon][notify]") {
  const auto env = parse_notify_environment("@mcb/notify", nullptr, nullptr, kSelf);
  REQUIRE(env.socket.has_value());
  CHECK(path_of(*env.socket) == std::string("\0mcb/notify", 11));
}

TEST_CASE("service notifier: a relative, empty or overlong NOTIFY_SOCKET is a problem, not a crash",
          "[daemon][notify]") {
  for (const std::string& bad :
       {std::string("run/notify"), std::string(""), std::string("@"), std::string("/"),
        std::string("vsock:2:1234"), "/" + std::string(sizeof(sockaddr_un::sun_path), 'x')}) {
    INFO(bad);
    const auto env = parse_notify_environment(bad.c_str(), "1000000", nullptr, kSelf);
    CHECK_FALSE(env.socket.has_value());
    CHECK_FALSE(env.watchdog_timeout.has_value());
    REQUIRE(env.problems.size() == 1);
    CHECK_THAT(env.problems[0], Catch::Matchers::StartsWith("NOTIFY_SOCKET="));
  }
}

TEST_CASE("service notifier: the longest path that fits is accepted", "[daemon][notify]") {
  const std::string longest = "/" + std::string(sizeof(sockaddr_un::sun_path) - 2, 'x');
  const auto env = parse_notify_environment(longest.c_str(), nullptr, nullptr, kSelf);
  REQUIRE(env.socket.has_value());
  CHECK(env.socket->length == sizeof(sockaddr_un));
}

TEST_CASE("service notifier: WATCHDOG_USEC turns the watchdog on for this process",
          "[daemon][notify]") {
  CHECK(parse_notify_environment("/n", "20000000", nullptr, kSelf).watchdog_timeout == 20s);
  CHECK(parse_notify_environment("/n", "20000000", "4242", kSelf).watchdog_timeout == 20s);
}

TEST_CASE("service notifier: a watchdog meant for another process is not ours",
          "[daemon][notify]") {
  const auto env = parse_notify_environment("/n", "20000000", "1", kSelf);
  CHECK(env.socket.has_value());
  CHECK_FALSE(env.watchdog_timeout.has_value());
  CHECK(env.problems.empty());
}

TEST_CASE("service notifier: a malformed WATCHDOG_USEC or WATCHDOG_PID leaves the watchdog off",
          "[daemon][notify]") {
  for (const auto& [usec, pid] :
       {std::pair{"0", "4242"}, std::pair{"-5", "4242"}, std::pair{"20s", "4242"},
        std::pair{"", "4242"}, std::pair{"20000000", "me"}, std::pair{"20000000", "0"}}) {
    INFO(usec << " " << pid);
    const auto env = parse_notify_environment("/n", usec, pid, kSelf);
    CHECK(env.socket.has_value());  // READY and STOPPING still go out
    CHECK_FALSE(env.watchdog_timeout.has_value());
    CHECK(env.problems.size() == 1);
  }
}
