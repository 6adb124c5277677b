#pragma once
// Test isolation: moves the calling test process into its own network namespace with loopback
// up, so the kernel counters it reads (/proc/net/netstat, somaxconn) and the ports it binds are
// its own, and every child it starts (memcached, the daemon) shares them.
// Call first thing in a test case, before any thread is started.

namespace mcb::test {

// Throws std::runtime_error naming the reason when no namespace can be made (neither root nor
// unprivileged user namespaces): the test then fails loudly rather than measure the host.
void enter_private_netns();

}  // namespace mcb::test
