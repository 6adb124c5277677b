#pragma once
// What the process needs of its environment before the event loop starts, whoever started it
// (systemd, a shell, a container runtime): signals the daemon does not use cannot end it, the
// ones it handles are not blocked, and its descriptor limit fits the configuration. Called from
// main before any thread starts; check_descriptor_budget() again on every reload (loop thread).

#include <cstddef>
#include <cstdint>

#include "common/result.hpp"
#include "config/config.hpp"

namespace mcb {

// Descriptors whatever the configuration: standard streams, the loop's epoll, eventfd, timers
// and signal pipe, the HTTP listeners (and one connection parked on each), the spare descriptor
// of the HTTP server, the sock_diag sockets, a file being read, the service notifier, and the
// sockets of the name-lookup threads; rounded up.
inline constexpr std::size_t kFixedDescriptors = 32;
// Per memcached target: the persistent stats connection and the probe's connection.
inline constexpr std::size_t kDescriptorsPerTarget = 2;

// Per target in another network namespace, beside kDescriptorsPerTarget: the stats connection's
// watch on that namespace (a pidfd).
inline constexpr std::size_t kDescriptorsPerTargetElsewhere = 1;
// Per other network namespace: netstat's two files, sysctl's, sockdiag's netlink socket, and
// the watch of each of the three collectors on it, rounded up.
inline constexpr std::size_t kDescriptorsPerNamespace = 7;
// Per discovered target beyond kDescriptorsPerTarget, at most: as a target in a namespace of its
// own.
inline constexpr std::size_t kDescriptorsPerDiscoveredTarget =
    kDescriptorsPerTargetElsewhere + kDescriptorsPerNamespace;
// How many discovered targets fit beside `config`'s own targets in the process's descriptor
// limit, at kDescriptorsPerTarget + kDescriptorsPerDiscoveredTarget each.
std::size_t discovered_targets_that_fit(const Config& config);
// Descriptors a configuration needs at most, with `http_sessions` HTTP sessions kept free for
// scrapers (HttpLimits::max_sessions): the reserve that lets the listener always answer.
std::size_t descriptors_needed(const Config& config, std::size_t http_sessions);

// An error naming what is needed and what the limit is, and how to raise it, when the
// configuration does not fit `soft_limit` descriptors.
Status check_descriptor_budget(const Config& config, std::uint64_t soft_limit,
                               std::uint64_t hard_limit);
// The same against the process's own RLIMIT_NOFILE.
Status check_descriptor_budget(const Config& config);

// Ignores SIGPIPE (a peer that closes is an error value, never a signal), SIGUSR1, SIGUSR2 and
// SIGALRM (no meaning here; a stray one must not end the daemon), unblocks SIGINT, SIGTERM and
// SIGHUP (a parent may have blocked them), raises the soft RLIMIT_NOFILE to the hard limit, and
// checks the configuration's descriptor budget. The error says why the daemon cannot run.
Status prepare_process(const Config& config);

// Returns the heap's free pages to the system when it goes out of scope (malloc_trim): a reload
// parses a file of up to 256 KiB into some 15 MiB of YAML nodes, freed after, which the
// allocator would otherwise keep. Loop thread.
struct ReleaseFreeMemory {
  ReleaseFreeMemory() = default;
  ~ReleaseFreeMemory();
  ReleaseFreeMemory(const ReleaseFreeMemory&) = delete;
  ReleaseFreeMemory& operator=(const ReleaseFreeMemory&) = delete;
};

}  // namespace mcb
