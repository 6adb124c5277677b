#include "daemon/service_notifier.hpp"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include <spdlog/spdlog.h>

namespace mcb {
namespace {

// A positive decimal number, the whole string.
std::optional<unsigned long long> positive_number(std::string_view s) {
  unsigned long long v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v == 0) return std::nullopt;
  return v;
}

std::optional<NotifyAddress> notify_address(std::string_view value, std::string& problem) {
  NotifyAddress a;
  a.address.sun_family = AF_UNIX;
  const bool abstract = !value.empty() && value.front() == '@';
  if (!abstract && (value.empty() || value.front() != '/')) {
    problem = "NOTIFY_SOCKET=" + std::string(value) +
              ": not an absolute path or an @abstract name; notifications are off";
    return std::nullopt;
  }
  // A path needs room for its terminating NUL; an abstract name has none but starts with one.
  if (value.size() < 2 || value.size() >= sizeof a.address.sun_path) {
    problem = "NOTIFY_SOCKET=" + std::string(value) + ": " +
              (value.size() < 2 ? "empty name" : "longer than a socket path may be") +
              "; notifications are off";
    return std::nullopt;
  }
  std::memcpy(a.address.sun_path, value.data(), value.size());
  if (abstract) a.address.sun_path[0] = '\0';
  a.length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + value.size() + (abstract ? 0 : 1));
  return a;
}

std::string one_line(std::string_view text) {
  std::string s(text);
  for (char& c : s) {
    if (c == '\n') c = ' ';
  }
  return s;
}

}  // namespace

NotifyEnvironment parse_notify_environment(const char* notify_socket, const char* watchdog_usec,
                                           const char* watchdog_pid, pid_t self) {
  NotifyEnvironment env;
  if (notify_socket == nullptr) return env;
  std::string problem;
  env.socket = notify_address(notify_socket, problem);
  if (!env.socket) {
    env.problems.push_back(problem);
    return env;
  }
  if (watchdog_usec == nullptr) return env;
  const auto usec = positive_number(watchdog_usec);
  if (!usec) {
    env.problems.push_back(std::string("WATCHDOG_USEC=") + watchdog_usec +
                           ": not a positive number of microseconds; the watchdog is off");
    return env;
  }
  if (watchdog_pid != nullptr) {
    const auto pid = positive_number(watchdog_pid);
    if (!pid) {
      env.problems.push_back(std::string("WATCHDOG_PID=") + watchdog_pid +
                             ": not a process id; the watchdog is off");
      return env;
    }
    if (*pid != static_cast<unsigned long long>(self)) return env;  // another process's watchdog
  }
  env.watchdog_timeout = std::chrono::microseconds(*usec);
  return env;
}

ServiceNotifier::ServiceNotifier(boost::asio::io_context& io)
    : watchdog_timer_(io, LoopClock::duration::zero(), [this] { send("WATCHDOG=1"); }) {
  NotifyEnvironment env =
      parse_notify_environment(std::getenv("NOTIFY_SOCKET"), std::getenv("WATCHDOG_USEC"),
                               std::getenv("WATCHDOG_PID"), ::getpid());
  for (const std::string& p : env.problems) spdlog::warn("{}", p);
  if (!env.socket) return;
  fd_ = FileDescriptor(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd_.valid()) {
    spdlog::warn("cannot create the notification socket: {}; notifications are off",
                 std::strerror(errno));
    return;
  }
  socket_address_ = env.socket;
  if (env.watchdog_timeout) watchdog_period_ = *env.watchdog_timeout / 2;
}

void ServiceNotifier::start_watchdog() {
  if (watchdog_period_.count() == 0) return;
  spdlog::info("service watchdog: pinging every {} ms",
               std::chrono::duration_cast<std::chrono::milliseconds>(watchdog_period_).count());
  send("WATCHDOG=1");
  watchdog_timer_.set_interval(watchdog_period_);
  watchdog_timer_.start(watchdog_period_);
}

void ServiceNotifier::ready(std::string_view status) {
  send("READY=1\nSTATUS=" + one_line(status));
}

void ServiceNotifier::reloading() {
  // MONOTONIC_USEC lets a service manager that supports reload notification (systemd 253 and
  // later) tell this reload from an earlier one; older ones ignore it.
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const long long usec = static_cast<long long>(now.tv_sec) * 1'000'000 + now.tv_nsec / 1000;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void ServiceNotifier::stopping() {
  watchdog_timer_.stop();
  send("STOPPING=1");
}

void ServiceNotifier::send(const std::string& message) {
  if (!socket_address_) return;
  const auto* to = reinterpret_cast<const sockaddr*>(&socket_address_->address);
  const ssize_t n = ::sendto(fd_.get(), message.data(), message.size(), MSG_NOSIGNAL, to,
                             socket_address_->length);
  if (n == static_cast<ssize_t>(message.size())) {
    if (!last_error_.empty()) spdlog::info("service manager notifications work again");
    last_error_.clear();
    return;
  }
  const std::string reason = n < 0 ? std::strerror(errno) : "short write";
  if (reason != last_error_) {
    spdlog::warn("cannot notify the service manager ({}): {}",
                 message.substr(0, message.find('\n')), reason);
  }
  last_error_ = reason;
}

}  // namespace mcb
