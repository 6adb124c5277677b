#pragma once
// Test isolation: moves the calling test process into its own network namespace with loopback
// up, so the kernel counters it reads (/proc/net/netstat, somaxconn) and the ports it binds are
// its own, and every child it starts (memcached, the daemon) shares them.
// Call first thing in a test case, before any thread is started.

#include <chrono>
#include <functional>
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

// A second network namespace beside the test's own, as a pod's is beside the host's: loopback up,
// bind-mounted on a file named `name` in a temporary directory (what `ip netns add` does under
// /run/netns), inside a private mount namespace so nothing outside this process and its children
// sees the mount. The daemon watches it with `netns: path()`; a memcached started within
// inside() lives there. Create after enter_private_netns(), before any thread starts; unmounted
// when the handle goes (the namespace ends with its last process).
class NamedNetns {
 public:
  // Throws std::runtime_error naming the reason.
  explicit NamedNetns(const std::string& name);
  ~NamedNetns();
  NamedNetns(const NamedNetns&) = delete;
  NamedNetns& operator=(const NamedNetns&) = delete;

  const std::string& path() const { return path_; }

  // Runs `f` with the calling thread inside the namespace, then returns it to the one it was in
  // (also when `f` throws). Children started by `f` stay there.
  void inside(const std::function<void()>& f) const;

 private:
  TempDir dir_;
  std::string path_;
};

}  // namespace mcb::test
