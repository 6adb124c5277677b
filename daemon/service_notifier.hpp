#pragma once
// ServiceNotifier: tells the service manager (systemd, Type=notify) what state the daemon is in,
// and pings its watchdog from the event loop so that a loop that stalls gets the daemon restarted.
//
// The sd_notify protocol is one AF_UNIX datagram of newline-separated KEY=VALUE lines sent to the
// socket named by $NOTIFY_SOCKET: an absolute path, or "@name" for the abstract namespace. systemd
// documents it as a stable interface that services may implement themselves (sd_notify(3),
// NOTES), so it is done here in one non-blocking sendto() rather than by linking libsystemd,
// which would load libgcrypt, liblzma, libzstd and liblz4 into a network-facing daemon for that
// one call, and add a build dependency.
//
// Without NOTIFY_SOCKET (started by hand, or by another init system) every call does nothing.
// The watchdog runs when WATCHDOG_USEC is set and WATCHDOG_PID is unset or names this process: a
// timer on the loop sends WATCHDOG=1 every WATCHDOG_USEC/2. A send that fails never blocks the
// loop; it is logged (once per distinct reason) and the next ping is the retry.
//
// Owned by App; loop thread only; not thread-safe.

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/clock.hpp"
#include "common/files.hpp"

namespace mcb {

// The notification socket as an address for sendto().
struct NotifyAddress {
  sockaddr_un address{};
  socklen_t length = 0;
};

// What the service manager asked for through the environment.
struct NotifyEnvironment {
  std::optional<NotifyAddress> socket;  // nullopt: nobody listens for notifications
  std::optional<std::chrono::microseconds> watchdog_timeout;  // nullopt: no watchdog for us
  std::vector<std::string> problems;  // variables that were set but malformed, for the log
};

// Pure: interprets NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (null when unset) for the
// process `self`. A malformed variable adds a problem and is ignored. A watchdog without a
// socket is off: there is nobody to ping.
NotifyEnvironment parse_notify_environment(const char* notify_socket, const char* watchdog_usec,
                                           const char* watchdog_pid, pid_t self);

class ServiceNotifier {
 public:
  // Reads the environment and logs what is malformed in it.
  explicit ServiceNotifier(boost::asio::io_context& io);
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  // Starts the watchdog pings, if the service manager asked for them.
  void start_watchdog();

  // READY=1: startup or a reload is complete. `status` (one line) is shown by systemctl status.
  void ready(std::string_view status);

  // RELOADING=1 with MONOTONIC_USEC: a reload begins; ready() ends it.
  void reloading();

  // STOPPING=1: shutdown begins. Stops the watchdog pings.
  void stopping();

 private:
  void send(const std::string& message);

  PeriodicTimer watchdog_timer_;
  std::optional<NotifyAddress> socket_address_;
  std::chrono::microseconds watchdog_period_{0};  // 0: no watchdog
  FileDescriptor fd_;
  std::string last_error_;  // the reason of the last failed send, empty after a success
};

}  // namespace mcb
