#pragma once
// Test isolation: moves the calling test process into its own network namespace with loopback
// up, so the kernel counters it reads (/proc/net/netstat, somaxconn) and the ports it binds are
// its own, and every child it starts (memcached, the daemon) shares them.
// Call first thing in a test case, before any thread is started.

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

}  // namespace mcb::test
