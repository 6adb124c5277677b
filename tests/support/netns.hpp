#pragma once
// Test isolation: moves the calling test process into its own network namespace with loopback
// up, so the kernel counters it reads (/proc/net/netstat, somaxconn) and the ports it binds are
// its own, and every child it starts (memcached, the daemon) shares them.
// Call first thing in a test case, before any thread is started.

#include <chrono>
#include <string>

#include "tests/support/process.hpp"

namespace mcb::test {

// Throws std::runtime_error naming the reason when no namespace can be made (neither root nor
// unprivileged user namespaces): the test then fails loudly rather than measure the host.
void enter_private_netns();

// A sysfs of the calling process's network namespace (sysfs shows the network devices of the
// namespace that mounted it) mounted on a temporary directory, inside a private mount namespace
// so nothing outside this process and its children sees it; unmounted when the handle goes.
// Create after enter_private_netns() to point paths.sysfs at the devices a test makes.
class PrivateSysfs {
 public:
  // Throws std::runtime_error naming the reason.
  PrivateSysfs();
  ~PrivateSysfs();
  PrivateSysfs(const PrivateSysfs&) = delete;
  PrivateSysfs& operator=(const PrivateSysfs&) = delete;

  const std::string& path() const { return dir_.path(); }

 private:
  TempDir dir_;
};

// A DNS server that never answers, for the calling process and every child it starts later: a
// UDP socket on 127.0.0.1:53 of the private network namespace that takes queries and drops them,
// and /etc/resolv.conf and /etc/nsswitch.conf replaced (bind mounts in a private mount
// namespace) so that host names are looked up there alone, with the longest timeouts glibc
// allows (30 s per try, 5 tries). Create after enter_private_netns(), before any thread starts.
class SilentResolver {
 public:
  // Throws std::runtime_error naming the reason.
  SilentResolver();
  ~SilentResolver();
  SilentResolver(const SilentResolver&) = delete;
  SilentResolver& operator=(const SilentResolver&) = delete;

  // Waits until a query arrives (and drops it); false after `timeout`.
  bool wait_for_query(std::chrono::milliseconds timeout);

  // How long a lookup waits for its first try to time out, at the least.
  static constexpr std::chrono::seconds kFirstTimeout{30};

 private:
  TempDir dir_;
  int fd_ = -1;
};

}  // namespace mcb::test
