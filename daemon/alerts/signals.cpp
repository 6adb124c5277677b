#include "daemon/alerts/signals.hpp"

#include "collectors/table.hpp"
#include "config/config.hpp"

namespace mcb {
namespace {

template <class T>
std::optional<double> as_double(const std::optional<T>& v) {
  return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
}

TargetSignals target_signals(const MemcachedSample& m, const Config& config) {
  TargetSignals t;
  t.name = m.target;
  t.address = m.address;
  for (const TargetConfig& c : config.targets) {
    if (c.name != m.target) continue;
    if (!c.address.is_unix()) t.port = c.address.port;
    t.probe_enabled = c.probe_interval.count() > 0;
  }
  t.up = m.up;
  if (m.up) {
    const MemcachedStats& s = m.stats;
    t.version = s.version;
    t.curr_connections = as_double(s.curr_connections);
    t.max_connections = as_double(s.max_connections);
    t.reserved_fds = as_double(s.reserved_fds);
    t.total_connections = as_double(s.total_connections);
    t.rejected_connections = as_double(s.rejected_connections);
    t.listen_disabled_num = as_double(s.listen_disabled_num);
    t.time_in_listen_disabled_us = as_double(s.time_in_listen_disabled_us);
    t.accepting_conns = as_double(s.accepting_conns);
    t.cpu_utilization = m.cpu_utilization_ratio;
    t.threads = as_double(s.threads);
    t.bytes = as_double(s.bytes);
    t.limit_maxbytes = as_double(s.limit_maxbytes);
    t.evictions = as_double(s.evictions);
    t.uptime = as_double(s.uptime);
    if (m.settings) {
      t.tcp_backlog = as_double(m.settings->tcp_backlog);
      t.maxconns_fast = m.settings->maxconns_fast;
    }
  } else {
    t.stats_error = m.error;
  }
  if (m.probe) {
    t.probe_success = m.probe->success;
    t.probe_seconds = m.probe->duration_seconds;
    t.probe_error = m.probe->error;
  }
  t.refused_at_limit = classify_failure(t.stats_error) == FailureKind::kAtLimit ||
                       classify_failure(t.probe_error) == FailureKind::kAtLimit;
  return t;
}

}  // namespace

Signals collect_signals(const CollectorSet& c, const Config& config,
                        std::chrono::steady_clock::time_point now,
                        std::chrono::system_clock::time_point wall) {
  Signals s;
  s.now = now;
  s.wall = wall;
  if (c.netstat && c.netstat->last()) {
    s.host.listen_overflows = as_double(c.netstat->last()->listen_overflows);
    s.host.listen_drops = as_double(c.netstat->last()->listen_drops);
  }
  if (c.sysctl && c.sysctl->last()) s.host.somaxconn = as_double(c.sysctl->last()->somaxconn);
  if (c.memcached) {
    for (const MemcachedSample& m : c.memcached->samples()) {
      s.targets.push_back(target_signals(m, config));
    }
  }
  if (c.sockdiag && c.sockdiag->last()) {
    s.sockets_known = true;
    for (const ListenerSample& l : c.sockdiag->last()->listeners) {
      s.listeners.push_back(ListenerSignals{l.address, l.port, static_cast<double>(l.queue_length),
                                            static_cast<double>(l.queue_max),
                                            static_cast<double>(l.queue_peak), as_double(l.drops)});
    }
    for (const PortSample& p : c.sockdiag->last()->ports) {
      PortSignals ps;
      ps.port = p.port;
      if (auto e = p.connections.find("established"); e != p.connections.end()) {
        ps.established = static_cast<double>(e->second);
      }
      ps.clients = static_cast<double>(p.clients);
      for (const ClientConnections& cc : p.top_clients) {
        ps.top_clients.push_back(ClientCount{cc.client, static_cast<double>(cc.connections)});
      }
      ps.send_queue_blocked = static_cast<double>(p.send_queue_blocked);
      s.ports.push_back(std::move(ps));
    }
  }
  if (c.netdev && c.netdev->last()) {
    s.nics_known = true;
    for (const NetdevDevice& d : c.netdev->last()->devices) {
      s.nics.push_back(NicSignals{d.counters.device, d.receive_utilization, d.transmit_utilization,
                                  static_cast<double>(d.counters.receive_drops),
                                  static_cast<double>(d.counters.transmit_drops)});
    }
  }
  return s;
}

}  // namespace mcb
