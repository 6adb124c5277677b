#include "daemon/alerts/observation.hpp"

#include <algorithm>
#include <map>

#include "collectors/table.hpp"

namespace mcb {
namespace {

// The last sample of a collector that keeps one, or null (off, or its last run failed).
template <class C>
auto last_of(const std::shared_ptr<C>& c) -> const typename C::Sample* {
  return c && c->last() ? &*c->last() : nullptr;
}

// Listeners by port, to join targets in time linear in both.
using ByPort = std::multimap<std::uint16_t, const ListenerSample*>;

std::vector<const ListenerSample*> listeners_of(const Endpoint& e, const ByPort& by_port) {
  std::vector<const ListenerSample*> out;
  if (e.is_unix()) return out;
  const auto [first, last] = by_port.equal_range(e.port);
  const auto ip = parse_ip(e.host);
  if (!ip) {  // a host name: whatever listens on its port
    for (auto it = first; it != last; ++it) out.push_back(it->second);
  } else {
    const std::string own = to_string(*ip);
    bool listening = false;
    for (auto it = first; it != last; ++it) {
      if (it->second->address == own) {
        out.push_back(it->second);
        listening = listening || it->second->listening;
      }
    }
    if (!listening) {
      for (auto it = first; it != last; ++it) {
        if (it->second->listening && is_wildcard(it->second->address)) out.push_back(it->second);
      }
    }
  }
  std::stable_partition(out.begin(), out.end(), [](const auto* l) { return l->listening; });
  return out;
}

}  // namespace

Observation observe(std::chrono::steady_clock::time_point now,
                    std::chrono::system_clock::time_point wall, const NetstatSample* netstat,
                    const SysctlSample* sysctl, std::span<const MemcachedSample> memcached,
                    const SockdiagSample* sockets, const NetdevSample* netdev, HostSamples host) {
  Observation o;
  o.now = now;
  o.wall = wall;
  o.netstat = netstat;
  o.sysctl = sysctl;
  o.sockets = sockets;
  o.netdev = netdev;
  o.cpu = host.cpu;
  o.softnet = host.softnet;
  ByPort by_port;
  if (sockets != nullptr) {
    for (const ListenerSample& l : sockets->listeners) by_port.emplace(l.port, &l);
  }
  o.targets.reserve(memcached.size());
  std::map<std::string_view, const MemcachedThreads*> threads;
  if (host.threads != nullptr) {
    for (const MemcachedThreads& t : host.threads->targets) threads.emplace(t.target, &t);
  }
  for (const MemcachedSample& m : memcached) {
    const auto t = threads.find(m.target);
    o.targets.push_back(TargetView{&m, listeners_of(m.endpoint, by_port),
                                   t == threads.end() ? nullptr : t->second});
  }
  return o;
}

Observation observe(const CollectorSet& c, std::chrono::steady_clock::time_point now,
                    std::chrono::system_clock::time_point wall) {
  std::span<const MemcachedSample> memcached;
  if (c.memcached) memcached = c.memcached->samples();
  return observe(now, wall, last_of(c.netstat), last_of(c.sysctl), memcached, last_of(c.sockdiag),
                 last_of(c.netdev),
                 HostSamples{last_of(c.cpu), last_of(c.softnet), last_of(c.memcached_threads)});
}

}  // namespace mcb
