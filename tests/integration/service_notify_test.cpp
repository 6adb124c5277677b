// The built daemon talking to a service manager: the test plays systemd's side of the sd_notify
// protocol with a real unix datagram socket named by NOTIFY_SOCKET, and reads what arrives, in
// order. (Starting the daemon under systemd itself is tested by tests/packaging.)

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "tests/support/daemon.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

// The service manager's end: a datagram socket bound to a path or an abstract "@name".
class NotifyListener {
 public:
  explicit NotifyListener(const std::string& name) : name_(name) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, name.data(), name.size());
    if (name.front() == '@') a.sun_path[0] = '\0';
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&a), len) != 0) {
      throw std::runtime_error("bind " + name + ": " + std::strerror(errno));
    }
  }
  ~NotifyListener() { ::close(fd_); }
  NotifyListener(const NotifyListener&) = delete;
  NotifyListener& operator=(const NotifyListener&) = delete;

  // A launcher that starts the daemon with NOTIFY_SOCKET naming this socket, the given watchdog
  // timeout, and WATCHDOG_PID as the daemon's own pid unless `watchdog_pid` names another.
  std::vector<std::string> launcher(const std::string& watchdog_usec,
                                    const std::string& watchdog_pid = "$$") const {
    return {"/bin/sh", "-c",
            "NOTIFY_SOCKET='" + name_ + "' WATCHDOG_USEC=" + watchdog_usec +
                " WATCHDOG_PID=" + watchdog_pid + " exec \"$0\" \"$@\""};
  }

  // The next message, or nullopt if none arrives within `timeout`.
  std::optional<std::string> next(std::chrono::milliseconds timeout = 10s) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    std::string m(buf, static_cast<std::size_t>(n));
    received_.push_back(m);
    return m;
  }

  // Reads until a message other than a watchdog ping arrives; returns it (nullopt on timeout).
  std::optional<std::string> next_state(std::chrono::milliseconds timeout = 10s) {
    for (;;) {
      auto m = next(timeout);
      if (!m || *m != "WATCHDOG=1") return m;
      ++pings_;
    }
  }

  int pings() const { return pings_; }
  const std::vector<std::string>& received() const { return received_; }

 private:
  std::string name_;
  int fd_ = -1;
  int pings_ = 0;
  std::vector<std::string> received_;
};

std::string config(const std::string& interval = "100ms") {
  return "interval: " + interval + "\ntargets: []\ncollectors: { sockdiag: { enabled: false } }\n";
}

std::string all(const std::vector<std::string>& messages) {
  std::string s;
  for (const auto& m : messages) s += "[" + m + "] ";
  return s;
}

}  // namespace

TEST_CASE("service notify: READY=1 arrives only once /-/ready answers 200, then WATCHDOG=1 repeats",
          "[integration][notify]") {
  test::enter_private_netns();
  test::TempDir dir;
  NotifyListener manager(dir.path() + "/notify");
  // 400 ms timeout: a ping every 200 ms.
  test::Daemon d(config(), {}, manager.launcher("400000"));

  const auto ready = manager.next_state();
  INFO("received: " << all(manager.received()) << "\ndaemon output:\n" << d.output());
  REQUIRE(ready.has_value());
  CHECK_THAT(*ready,
             StartsWith("READY=1\nSTATUS=sampling every 100ms with the configuration from "));
  // Sent after the first sample, so the daemon already says it is ready, on HTTP and in its log.
  const auto r = d.get("/-/ready");
  REQUIRE(r.ok());
  CHECK(r->status == 200);
  CHECK_THAT(d.output(), Contains("first sample complete; ready"));

  // The first ping goes out when the loop starts; more follow while it runs.
  const int before = manager.pings();
  CHECK(before >= 1);
  for (int i = 0; i < 3; ++i) {
    const auto m = manager.next();
    REQUIRE(m.has_value());
    CHECK(*m == "WATCHDOG=1");
  }
  CHECK_THAT(d.output(), Contains("service watchdog: pinging every 200 ms"));
}

TEST_CASE("service notify: SIGHUP sends RELOADING=1 then READY=1, also when the new file is bad",
          "[integration][notify]") {
  test::enter_private_netns();
  test::TempDir dir;
  NotifyListener manager(dir.path() + "/notify");
  test::Daemon d(config(), {}, manager.launcher("10000000"));
  REQUIRE_THAT(manager.next_state().value_or(""), StartsWith("READY=1\n"));

  // Writes the file and sends SIGHUP; returns the next two messages other than pings.
  auto reload = [&](const std::string& yaml) {
    std::ofstream(d.config_path()) << yaml;
    d.process().signal(SIGHUP);
    std::string first = manager.next_state().value_or("(none)");
    return std::pair{first, manager.next_state().value_or("(none)")};
  };
  const std::regex reloading(R"(RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*)");

  auto [begin, end] = reload(config("250ms"));
  INFO("received: " << all(manager.received()) << "\ndaemon output:\n" << d.output());
  CHECK(std::regex_match(begin, reloading));
  CHECK_THAT(end, StartsWith("READY=1\nSTATUS=sampling every 250ms"));

  // A bad file keeps the running configuration, and the daemon says so.
  std::tie(begin, end) = reload("interval: soon\n");
  CHECK(std::regex_match(begin, reloading));
  CHECK_THAT(end, StartsWith("READY=1\nSTATUS=reload failed, see the log; sampling every 250ms"));
  CHECK(d.get("/-/ready")->status == 200);
}

TEST_CASE("service notify: SIGTERM sends STOPPING=1 last, and the daemon exits 0",
          "[integration][notify]") {
  test::enter_private_netns();
  test::TempDir dir;
  NotifyListener manager(dir.path() + "/notify");
  test::Daemon d(config(), {}, manager.launcher("200000"));
  REQUIRE_THAT(manager.next_state().value_or(""), StartsWith("READY=1\n"));

  d.process().signal(SIGTERM);
  const auto stopping = manager.next_state();
  REQUIRE(d.process().wait_exit(10s) == 0);
  INFO("received: " << all(manager.received()) << "\ndaemon output:\n" << d.output());
  CHECK(stopping == "STOPPING=1");
  // The daemon has exited, so whatever it sent is queued: no ping came after STOPPING=1.
  CHECK_FALSE(manager.next(0ms).has_value());
}

TEST_CASE("service notify: an abstract @socket works, and a watchdog meant for another pid is off",
          "[integration][notify]") {
  test::enter_private_netns();  // abstract names belong to the network namespace
  NotifyListener manager("@mcbacklogd-test-" + std::to_string(::getpid()));
  test::Daemon d(config(), {}, manager.launcher("100000", "1"));
  const auto ready = manager.next_state();
  d.process().signal(SIGTERM);
  const auto stopping = manager.next_state();
  REQUIRE(d.process().wait_exit(10s) == 0);
  INFO("received: " << all(manager.received()) << "\ndaemon output:\n" << d.output());
  CHECK_THAT(ready.value_or(""), StartsWith("READY=1\n"));
  CHECK(stopping == "STOPPING=1");
  // With the watchdog on, the first ping goes out as the loop starts, before READY=1.
  CHECK(manager.pings() == 0);
  CHECK_THAT(d.output(), !Contains("service watchdog"));
}

TEST_CASE("service notify: a NOTIFY_SOCKET nobody listens on is logged and the daemon serves",
          "[integration][notify]") {
  test::enter_private_netns();
  test::TempDir dir;
  test::Daemon d(config(), {},
                 {"/bin/sh", "-c", "NOTIFY_SOCKET=" + dir.path() + "/nobody exec \"$0\" \"$@\""});
  CHECK_FALSE(d.metrics().empty());  // waits for /-/ready
  CHECK(test::eventually([&] {
    return d.output().find(
               "cannot notify the service manager (READY=1): No such file or "
               "directory") != std::string::npos;
  }));
  CHECK(d.process().running());
}
