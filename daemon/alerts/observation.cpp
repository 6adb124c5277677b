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

std::vector<const ListenerSample*> listeners_of(const Endpoint& e, const ByPort& by_port,
                                                const SockdiagSample* sockets) {
  std::vector<const ListenerSample*> out;
  if (e.is_unix()) {
    if (sockets == nullptr) return out;
    const std::string name = e.to_string();
    for (const ListenerSample& l : sockets->listeners) {
      if (l.unix_socket && l.address == name) out.push_back(&l);
    }
    return out;
  }
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

// The listeners of `m`'s memcached: those of its address and, once one of them is found here (the
// memcached runs in this network namespace), those of every other address its settings say it
// listens on (-l), each once, listening ones first.
// Whether `m`'s settings may name more of its listeners: a TCP target at an IP address whose own
// listener (`own`) is found here. At a host name the listener on its port may be another's.
bool names_its_listeners(const MemcachedSample& m, const std::vector<const ListenerSample*>& own) {
  return !own.empty() && !m.endpoint.is_unix() && parse_ip(m.endpoint.host).has_value();
}

// An entry of memcached's -l whose listener can be told apart: every address ("*", or no -l) or
// an IP address; a host name's is not known.
bool addressed(const Endpoint& e) { return e.host.empty() || parse_ip(e.host).has_value(); }

std::vector<const ListenerSample*> memcached_listeners(const MemcachedSample& m,
                                                       const ByPort& by_port,
                                                       const SockdiagSample* sockets) {
  std::vector<const ListenerSample*> out = listeners_of(m.endpoint, by_port, sockets);
  if (!names_its_listeners(m, out)) return out;
  const std::optional<std::uint32_t> uid = out.front()->uid;
  for (const Endpoint& e : *m.listen_endpoints) {
    if (!addressed(e)) continue;
    for (const ListenerSample* l : listeners_of(e, by_port, sockets)) {
      if (e.host.empty() && !is_wildcard(l->address)) continue;
      if (uid && l->uid && *l->uid != *uid) continue;  // another user's: another service
      if (std::find(out.begin(), out.end(), l) == out.end()) out.push_back(l);
    }
  }
  std::stable_partition(out.begin(), out.end(), [](const auto* l) { return l->listening; });
  return out;
}

Observation observe_targets(std::chrono::steady_clock::time_point now,
                            std::chrono::system_clock::time_point wall,
                            const NetstatSample* netstat, const SysctlSample* sysctl,
                            const std::vector<const MemcachedSample*>& memcached,
                            const SockdiagSample* sockets, const NetdevSample* netdev,
                            HostSamples host) {
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
    for (const ListenerSample& l : sockets->listeners) {
      if (!l.unix_socket) by_port.emplace(l.port, &l);
    }
  }
  o.targets.reserve(memcached.size());
  std::map<std::string_view, const MemcachedThreads*> threads;
  if (host.threads != nullptr) {
    for (const MemcachedThreads& t : host.threads->targets) threads.emplace(t.target, &t);
  }
  for (const MemcachedSample* m : memcached) {
    const auto t = threads.find(m->target);
    o.targets.push_back(TargetView{m, memcached_listeners(*m, by_port, sockets),
                                   t == threads.end() ? nullptr : t->second});
  }
  return o;
}

}  // namespace

Observation observe(std::chrono::steady_clock::time_point now,
                    std::chrono::system_clock::time_point wall, const NetstatSample* netstat,
                    const SysctlSample* sysctl, std::span<const MemcachedSample> memcached,
                    const SockdiagSample* sockets, const NetdevSample* netdev, HostSamples host) {
  std::vector<const MemcachedSample*> targets;
  targets.reserve(memcached.size());
  for (const MemcachedSample& m : memcached) targets.push_back(&m);
  return observe_targets(now, wall, netstat, sysctl, targets, sockets, netdev, host);
}

std::vector<Observation> observe(const CollectorSet& c, std::chrono::steady_clock::time_point now,
                                 std::chrono::system_clock::time_point wall) {
  // Each target to the namespace it lives in.
  std::vector<const MemcachedSample*> own;
  std::map<std::string, std::vector<const MemcachedSample*>, std::less<>> elsewhere;
  if (c.memcached) {
    for (const MemcachedSample& m : c.memcached->samples()) {
      const auto it = c.target_netns.find(m.target);
      if (it == c.target_netns.end()) {
        own.push_back(&m);
      } else {
        elsewhere[it->second].push_back(&m);
      }
    }
  }
  std::vector<Observation> out;
  out.reserve(1 + c.namespaces.size());
  out.push_back(observe_targets(
      now, wall, last_of(c.netstat), last_of(c.sysctl), own, last_of(c.sockdiag), last_of(c.netdev),
      HostSamples{last_of(c.cpu), last_of(c.softnet), last_of(c.memcached_threads)}));
  for (const NamespaceCollectors& n : c.namespaces) {
    // The host's CPU and softnet are the daemon's namespace's; worker threads are per target.
    Observation o = observe_targets(now, wall, last_of(n.netstat), last_of(n.sysctl),
                                    elsewhere[n.label], last_of(n.sockdiag), nullptr,
                                    HostSamples{nullptr, nullptr, last_of(c.memcached_threads)});
    o.netns = n.label;
    out.push_back(std::move(o));
  }
  return out;
}

bool watch_memcached_listeners(const CollectorSet& c, std::span<const Observation> observations) {
  bool changed = false;
  // observe() lists the daemon's namespace first, then c.namespaces in order.
  for (std::size_t i = 0; i < observations.size(); ++i) {
    SockdiagCollector* sockdiag = i == 0                     ? c.sockdiag.get()
                                  : i <= c.namespaces.size() ? c.namespaces[i - 1].sockdiag.get()
                                                             : nullptr;
    // No sample this run (a dump failed): the set stands until one says otherwise.
    if (sockdiag == nullptr || observations[i].sockets == nullptr) continue;
    std::map<std::uint16_t, std::uint32_t> owners;  // port -> the user of that memcached
    for (const TargetView& t : observations[i].targets) {
      if (!names_its_listeners(*t.memcached, t.listeners) || !t.listeners.front()->uid) continue;
      for (const Endpoint& e : *t.memcached->listen_endpoints) {
        if (addressed(e)) owners.emplace(e.port, *t.listeners.front()->uid);
      }
    }
    changed = sockdiag->watch_more_ports(owners) || changed;
  }
  return changed;
}

}  // namespace mcb
