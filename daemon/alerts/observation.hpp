#pragma once
// Observation: what the collectors published in their last runs, as the alert rules, /alerts and
// `diagnose` read it. It points at the collectors' own samples, never a copy, so every view reads
// the same value with the same fallbacks as /metrics (collectors/memcached.hpp's accessors); it
// adds only the join no single collector makes: each memcached target with the listeners it
// listens on, and through them the connections that came to it.
//
// A target's listeners: the one on its own address and port; else, for an address with no
// listener of its own, the wildcard listeners (0.0.0.0, ::) on its port; for a target named by a
// host name, every listener on its port; for a unix-socket target, the listener of its path. So
// two memcached on one port at different addresses never share a listener's queue or
// connections. A memcached found listening here also has the listeners of the other addresses
// its `stats settings` name (-l with several addresses or ports, memcached_listen_endpoints),
// which the app has sockdiag watch (SockdiagCollector::watch_more_ports).
//
// Built once per evaluation in time linear in targets and listeners. Valid until the collectors
// run again (it holds pointers into their samples). Plain value; loop thread only.

#include <chrono>
#include <span>
#include <string>
#include <vector>

#include "collectors/cpu.hpp"
#include "collectors/memcached.hpp"
#include "collectors/memcached_threads.hpp"
#include "collectors/netdev.hpp"
#include "collectors/netstat.hpp"
#include "collectors/sockdiag.hpp"
#include "collectors/softnet.hpp"
#include "collectors/sysctl.hpp"

namespace mcb {

struct CollectorSet;

struct TargetView {
  const MemcachedSample* memcached = nullptr;
  std::vector<const ListenerSample*> listeners;  // see above; listening ones first
  // Its worker threads' CPU (joined by target name); null when that collector is off or has not
  // seen the target yet.
  const MemcachedThreads* threads = nullptr;
};

// One network namespace: the daemon's own, or another that targets live in (`netns` names it).
// The kernel figures are that namespace's; the targets are those living there.
struct Observation {
  std::chrono::steady_clock::time_point now;   // windows and `for` durations
  std::chrono::system_clock::time_point wall;  // `since` timestamps shown to people
  std::string netns;  // the `netns` label; empty for the daemon's own namespace
  // Null when the collector is off or its last run failed: nothing it would have said is known.
  const NetstatSample* netstat = nullptr;
  const SysctlSample* sysctl = nullptr;
  const SockdiagSample* sockets = nullptr;
  const NetdevSample* netdev = nullptr;    // the daemon's own namespace only
  const CpuSample* cpu = nullptr;          // the daemon's own namespace only
  const SoftnetSample* softnet = nullptr;  // the daemon's own namespace only
  std::vector<TargetView> targets;         // one per memcached target, in configuration order
};

// The host-wide samples beside the ones every observation has.
struct HostSamples {
  const CpuSample* cpu = nullptr;
  const SoftnetSample* softnet = nullptr;
  const MemcachedThreadsSample* threads = nullptr;
};

// The observation of these samples at `now`; the pointers must outlive it.
Observation observe(std::chrono::steady_clock::time_point now,
                    std::chrono::system_clock::time_point wall, const NetstatSample* netstat,
                    const SysctlSample* sysctl, std::span<const MemcachedSample> memcached,
                    const SockdiagSample* sockets, const NetdevSample* netdev,
                    HostSamples host = {});

// The observations of the collectors' last samples: the daemon's own namespace first (with the
// targets that live there), then each other namespace of the collector set in its order.
std::vector<Observation> observe(const CollectorSet& collectors,
                                 std::chrono::steady_clock::time_point now,
                                 std::chrono::system_clock::time_point wall);

// Has each namespace's sockdiag collector watch the ports of every listener its memcached targets
// say they have (MemcachedSample::listen_endpoints: -l with several addresses or ports), so that
// an overflow there shows as memcached's from the next run. Only targets found listening in that
// namespace count: another host's ports are not this host's. `observations` are observe()'s of
// `collectors`. True when a collector watches other ports from now on.
bool watch_memcached_listeners(const CollectorSet& collectors,
                               std::span<const Observation> observations);

}  // namespace mcb
