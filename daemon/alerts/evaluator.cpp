#include "daemon/alerts/evaluator.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

#include "common/families.hpp"
#include "common/text.hpp"

namespace mcb {
namespace {

// Numbers as a person reads them: whole numbers without decimals, small ones with three digits.
std::string num(double v) {
  if (std::fabs(v) >= 1e15 || std::isnan(v)) return fmt::format("{}", v);
  if (v == std::floor(v)) return fmt::format("{:.0f}", v);
  if (std::fabs(v) < 1) return fmt::format("{:.3g}", v);
  return fmt::format("{:.1f}", v);
}

std::string percent(double ratio) { return fmt::format("{:.0f}%", ratio * 100); }

std::string track_key(std::string_view alert, const AlertLabels& labels) {
  std::string k(alert);
  for (const auto& [name, value] : labels) k += "\x1f" + name + "=" + value;
  return k;
}

void append(std::string& evidence, const std::string& more) {
  if (more.empty()) return;
  if (!evidence.empty()) evidence += "; ";
  evidence += more;
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string listener_name(const ListenerSignals& l) {
  return fmt::format("{}:{}", l.address, l.port);
}

std::string drops_key(const ListenerSignals& l) {
  return "listener/" + listener_name(l) + "/drops";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  return fmt::format("{}", v);
}

}  // namespace

const std::vector<AlertDefinition>& alert_catalogue() {
  static const std::vector<AlertDefinition> kCatalogue{
      {"MemcachedDown", "memcached is not answering",
       "Check that memcached runs and listens on the configured address (systemctl status "
       "memcached, ss -ltnp) and read its log for why it stopped."},
      {"ListenQueueOverflow",
       "symptom: the kernel drops new connections because a listen queue is full",
       "Look at the cause alerts firing with it: the queue fills when memcached accepts too "
       "slowly (connection limit, CPU) or clients connect too fast (no pooling). A larger "
       "net.core.somaxconn and memcached -b absorb bursts."},
      {"AcceptQueueFilling", "symptom: new connections wait in memcached's accept queue",
       "memcached is not accepting as fast as clients connect: see MaxConnectionsNear, "
       "MemcachedCpuSaturated and ConnectionSprawl for why; raise net.core.somaxconn and -b if "
       "the peaks are short bursts."},
      {"ProbeSlow", "symptom: a fresh connection to memcached waits to be served",
       "A fresh connection stands in the accept queue behind the others: find the cause among "
       "the other alerts (connection limit, CPU, sprawl, a small backlog)."},
      {"ConnectionSprawl", "cause 1: clients open connections instead of pooling them",
       "Pool connections in the clients: create the memcached client once per process and reuse "
       "it rather than connecting per request, with a bounded pool. Start with the clients "
       "named in the evidence."},
      {"MaxConnectionsNear", "cause 2: memcached's connection limit (-c) is nearly used up",
       "Raise memcached's -c (e.g. -c 4096 in its ExecStart or /etc/memcached.conf) together "
       "with its open-files limit (LimitNOFILE), then restart it. If connections keep growing, "
       "look for connection sprawl."},
      {"MemcachedCpuSaturated", "cause 3: memcached's worker threads are out of CPU",
       "Give memcached more CPU: more worker threads (-t) on more or faster cores, fewer round "
       "trips (multi-get), or shard the cache over more instances."},
      {"NetworkSaturated", "cause 4: the network interface is near its capacity",
       "Move memcached traffic to a dedicated or faster NIC or network, or send less across it "
       "(smaller values, only the data needed)."},
      {"SomaxconnTooLow", "cause 5: the kernel's listen queue limit is too small for memcached",
       "Raise net.core.somaxconn (sysctl -w net.core.somaxconn=4096, and persist it in "
       "/etc/sysctl.d/) to at least memcached's -b, raise -b if bursts still overflow, then "
       "restart memcached: a listener keeps the backlog it was created with."},
      {"SlowClients", "cause 6: clients do not read the replies they asked for",
       "Fix the slow consumers: application threads that block after fetching, or client hosts "
       "short of CPU or memory. memcached holds a connection and its buffers for each stalled "
       "client."},
      {"MemcachedMemoryFull", "out of memory next: the cache is full and evicting",
       "Raise memcached's memory limit (-m) or add instances; check item sizes and expiry "
       "times."},
  };
  return kCatalogue;
}

Evaluator::Evaluator(Thresholds thresholds) : thresholds_(std::move(thresholds)) {}

const AlertThreshold& Evaluator::threshold(std::string_view alert) const {
  static const AlertThreshold kNone{};
  auto it = thresholds_.find(alert);
  if (it != thresholds_.end()) return it->second;
  for (const auto& [name, t] : default_thresholds()) {
    if (name == alert) return t;
  }
  return kNone;
}

Level Evaluator::current(std::string_view alert, const AlertLabels& labels) const {
  auto it = tracks_.find(track_key(alert, labels));
  return it == tracks_.end() ? Level::kOk : it->second.state.state();
}

void Evaluator::judge(std::string_view alert, const AlertLabels& labels,
                      const std::optional<Verdict>& verdict, const Signals& s) {
  const std::string key = track_key(alert, labels);
  auto [it, inserted] = tracks_.try_emplace(key);
  Track& t = it->second;
  if (inserted) {
    t.alert = std::string(alert);
    t.labels = labels;
  }
  t.state.update(verdict, threshold(alert).for_, s.now, s.wall);
  t.seen = evaluation_;
}

double Evaluator::increase(const std::string& key, std::optional<double> value, const Signals& s,
                           Duration window, bool reset) {
  CounterWindow& w = counters_[key];
  if (value) w.add(s.now, *value, window, reset);
  return w.increase(s.now, window);
}

double Evaluator::rate(const std::string& key, std::optional<double> value, const Signals& s,
                       Duration window, bool reset) {
  CounterWindow& w = counters_[key];
  if (value) w.add(s.now, *value, window, reset);
  return w.rate(s.now, window);
}

void Evaluator::evaluate(const Signals& s) {
  ++evaluation_;
  // The listeners' own drop counters and when each was last full, for joining overflows to them.
  for (const ListenerSignals& l : s.listeners) {
    if (l.drops) increase(drops_key(l), l.drops, s, threshold("ListenQueueOverflow").window);
    if (l.queue_max > 0 && l.queue_peak >= l.queue_max) {
      full_[listener_name(l)] = {
          s.now, fmt::format("{} reached its max queue (peak {} of {})", listener_name(l),
                             num(l.queue_peak), num(l.queue_max))};
    }
  }
  check_host(s);
  for (const TargetSignals& t : s.targets) check_target(t, s);
  if (s.nics_known) {
    for (const NicSignals& n : s.nics) check_nic(n, s);
  }
  // Subjects that went away (a target removed on reload, a NIC unplugged) leave with their state.
  std::erase_if(tracks_, [this](const auto& kv) { return kv.second.seen != evaluation_; });
  const auto oldest = s.now - std::chrono::hours(24);
  std::erase_if(counters_, [oldest](const auto& kv) {
    auto last = kv.second.last_time();
    return !last || *last < oldest;
  });
}

std::string Evaluator::overflowed_listeners(const Signals& s, std::optional<std::uint16_t> port,
                                            Duration window) {
  std::string out;
  for (const ListenerSignals& l : s.listeners) {
    if (port && l.port != *port) continue;
    if (l.drops) {
      // The kernel's own count: exact, however short the burst.
      const double dropped = increase(drops_key(l), std::nullopt, s, window);
      if (dropped > 0) {
        append(out, fmt::format("{} dropped {} connections in the last {}", listener_name(l),
                                num(dropped), format_duration(window)));
      }
    } else if (l.queue_max == 0) {
      append(out, listener_name(l) + " is not accepting (max queue 0)");
    } else if (auto f = full_.find(listener_name(l));
               f != full_.end() && f->second.first > s.now - window) {
      append(out, f->second.second);
    }
  }
  return out;
}

void Evaluator::check_host(const Signals& s) {
  const AlertThreshold& th = threshold("ListenQueueOverflow");
  const double overflows = increase("host/listen_overflows", s.host.listen_overflows, s, th.window);
  const double drops = increase("host/listen_drops", s.host.listen_drops, s, th.window);
  std::optional<Verdict> v;
  if (s.host.listen_overflows) {
    v = Verdict{};
    v->value = overflows;
    v->level = graded(overflows, th, current("ListenQueueOverflow", {}));
    v->threshold = crossed_threshold(v->level, th);
    v->evidence = fmt::format(
        "{} listen overflows and {} listen drops in the last {} (kernel "
        "TcpExt counters, every listener of this host)",
        num(overflows), num(drops), format_duration(th.window));
    const std::string blamed = overflowed_listeners(s, std::nullopt, th.window);
    if (v->level != Level::kOk) {
      if (!blamed.empty()) {
        append(v->evidence, "memcached's listener overflowed: " + blamed);
      } else if (s.sockets_known && !s.listeners.empty()) {
        // Overflowing, but not at memcached's listener: say so, and do not page for it.
        v->level = std::min(v->level, Level::kWarning);
        std::string peaks;
        for (const ListenerSignals& l : s.listeners) {
          append(peaks, fmt::format("{} peak {} of {}{}", listener_name(l), num(l.queue_peak),
                                    num(l.queue_max), l.drops ? ", no drops" : ""));
        }
        append(v->evidence, "no watched memcached listener overflowed (" + peaks +
                                "): the overflows are on another listener of this host");
      } else {
        append(v->evidence, "the listeners' own queues are unknown (sockdiag collector off)");
      }
    }
    // A listener at its max queue right now is the overflow about to happen.
    for (const ListenerSignals& l : s.listeners) {
      if (l.queue_max > 0 && l.queue_length >= l.queue_max) {
        v->level = worse(v->level, Level::kWarning);
        append(v->evidence, fmt::format("listener {}:{} is at its max queue now ({} of {})",
                                        l.address, l.port, num(l.queue_length), num(l.queue_max)));
      }
    }
  }
  judge("ListenQueueOverflow", {}, v, s);
}

void Evaluator::check_target(const TargetSignals& t, const Signals& s) {
  const AlertLabels labels{{"target", t.name}};
  const std::string key = "target/" + t.name + "/";
  // A lower uptime than last cycle means memcached restarted: its counters start over.
  bool restarted = false;
  if (t.uptime) {
    auto it = uptimes_.find(t.name);
    restarted = it != uptimes_.end() && *t.uptime < it->second;
    uptimes_[t.name] = *t.uptime;
  }
  auto up_value = [&t](const std::optional<double>& v) {
    return t.up ? v : std::optional<double>{};
  };
  std::vector<const ListenerSignals*> listeners;
  for (const ListenerSignals& l : s.listeners) {
    if (t.port && l.port == *t.port) listeners.push_back(&l);
  }
  const PortSignals* port = nullptr;
  for (const PortSignals& p : s.ports) {
    if (t.port && p.port == *t.port) port = &p;
  }

  {  // MemcachedDown: the stats connection and the probe both fail, and not because memcached
     // is at its connection limit: it answered so, or its listener is open with a max queue of 0
     // (only a running memcached stops accepting). That is alive, and MaxConnectionsNear.
    const bool probe_failing =
        !t.probe_enabled || !t.probe_success.has_value() || !*t.probe_success;
    const auto not_accepting = std::find_if(listeners.begin(), listeners.end(),
                                            [](const auto* l) { return l->queue_max == 0; });
    const bool at_limit = t.refused_at_limit || not_accepting != listeners.end();
    Verdict v;
    v.value = !t.up && probe_failing && !at_limit ? 1 : 0;
    v.threshold = 1;
    v.level = v.value > 0 ? Level::kCritical : Level::kOk;
    v.evidence = t.up ? "stats answered" : "stats failed: " + t.stats_error;
    if (!t.probe_enabled) {
      append(v.evidence, "the fresh-connection probe is off");
    } else if (t.probe_success) {
      append(v.evidence, *t.probe_success
                             ? "the last fresh-connection probe succeeded"
                             : "the last fresh-connection probe failed: " + t.probe_error);
    }
    if (!t.up && not_accepting != listeners.end()) {
      append(v.evidence, fmt::format("its listener {} is open with a max queue of 0: memcached "
                                     "runs and stopped accepting",
                                     listener_name(**not_accepting)));
    }
    judge("MemcachedDown", labels, v, s);
  }

  {  // AcceptQueueFilling: peak length over max of memcached's listener(s).
    const AlertThreshold& th = threshold("AcceptQueueFilling");
    std::optional<Verdict> v;
    for (const ListenerSignals* l : listeners) {
      if (l->queue_max <= 0) continue;  // not accepting at all: MaxConnectionsNear says so
      const double ratio = l->queue_peak / l->queue_max;
      if (v && ratio <= v->value) continue;
      v = Verdict{};
      v->value = ratio;
      v->level = graded(ratio, th, current("AcceptQueueFilling", labels));
      v->threshold = crossed_threshold(v->level, th);
      v->evidence = fmt::format(
          "accept queue of {}:{} peaked at {} of {} ({}) over the peak "
          "window; {} waiting now",
          l->address, l->port, num(l->queue_peak), num(l->queue_max), percent(ratio),
          num(l->queue_length));
    }
    judge("AcceptQueueFilling", labels, v, s);
  }

  {  // ProbeSlow: a fresh connection is slow to be served, or not served while stats works.
    const AlertThreshold& th = threshold("ProbeSlow");
    std::optional<Verdict> v;
    if (t.probe_enabled && t.probe_success) {
      if (!*t.probe_success) {
        if (t.up) {
          v = Verdict{Level::kCritical, t.probe_seconds.value_or(0), th.critical,
                      "memcached answers on its existing connection, but a fresh connection was "
                      "not served (" +
                          t.probe_error +
                          "): its accept queue is full, it stopped accepting or it is at its "
                          "connection limit"};
        }
      } else if (t.probe_seconds) {
        v = Verdict{};
        v->value = *t.probe_seconds;
        v->level = graded(v->value, th, current("ProbeSlow", labels));
        v->threshold = crossed_threshold(v->level, th);
        v->evidence = fmt::format("a fresh connection was answered after {} s", num(v->value));
      }
    }
    judge("ProbeSlow", labels, v, s);
  }

  {  // ConnectionSprawl: connection churn, and many connections from few clients.
    const AlertThreshold& th = threshold("ConnectionSprawl");
    const double per_second =
        rate(key + "total_connections", up_value(t.total_connections), s, th.window, restarted);
    std::optional<Verdict> v;
    if (t.up && t.total_connections) {
      const Level cur = current("ConnectionSprawl", labels);
      v = Verdict{};
      v->value = per_second;
      v->level = graded(per_second, th, cur);
      v->threshold = crossed_threshold(v->level, th);
      v->evidence = fmt::format(
          "{} new connections/s over the last {} (memcached "
          "total_connections)",
          num(per_second), format_duration(th.window));
      if (port != nullptr) {
        // The same hysteresis proportion as for the rate.
        AlertThreshold held = th;
        held.warning = th.connections_warning;
        held.critical = th.connections_critical;
        held.clear = th.connections_warning * (th.warning > 0 ? th.clear / th.warning : 1);
        const Level by_count = graded(port->established, held, cur);
        if (by_count > v->level) {
          v->level = by_count;
          v->threshold = crossed_threshold(by_count, held);
        }
        std::string top;
        for (const ClientCount& c : port->top_clients) {
          top += fmt::format("{}{} ({})", top.empty() ? "" : ", ", c.client, num(c.connections));
        }
        append(v->evidence, fmt::format("{} connections established on port {} from {} clients",
                                        num(port->established), port->port, num(port->clients)));
        if (!top.empty()) v->evidence += ", most from " + top;
      }
    }
    judge("ConnectionSprawl", labels, v, s);
  }

  {  // MaxConnectionsNear: connections against the effective limit, and the limit being hit.
    const AlertThreshold& th = threshold("MaxConnectionsNear");
    const double rejected = increase(key + "rejected_connections", up_value(t.rejected_connections),
                                     s, th.window, restarted);
    const double disabled = increase(key + "listen_disabled_num", up_value(t.listen_disabled_num),
                                     s, th.window, restarted);
    std::optional<Verdict> v;
    // A hard sign of the limit being hit: critical whatever the ratio. `value` and `threshold`
    // stay those of the ratio (when there is one); the evidence says why.
    auto hit = [&v, &th](const std::string& why) {
      if (!v) v = Verdict{Level::kCritical, 1, th.critical, ""};
      v->level = Level::kCritical;
      append(v->evidence, why);
    };
    if (t.up && t.curr_connections && t.max_connections && *t.max_connections > 0) {
      // memcached keeps reserved_fds descriptors for itself out of -c.
      double limit = *t.max_connections;
      std::string limit_text = "-c " + num(limit);
      if (t.reserved_fds && *t.reserved_fds < limit) {
        limit -= *t.reserved_fds;
        limit_text += " less " + num(*t.reserved_fds) + " reserved descriptors";
      }
      v = Verdict{};
      v->value = *t.curr_connections / limit;
      v->level = graded(v->value, th, current("MaxConnectionsNear", labels));
      v->threshold = crossed_threshold(v->level, th);
      v->evidence =
          fmt::format("{} connections of an effective limit of {} ({}): {}",
                      num(*t.curr_connections), num(limit), limit_text, percent(v->value));
      if (rejected > 0) {
        hit(
            fmt::format("{} connections rejected with \"ERROR Too many open connections\" in the "
                        "last {}",
                        num(rejected), format_duration(th.window)));
      }
      if (disabled > 0) {
        hit(fmt::format("memcached stopped accepting {} times in the last {} (listen_disabled_num)",
                        num(disabled), format_duration(th.window)));
      }
      if (t.accepting_conns && *t.accepting_conns == 0) hit("memcached is not accepting now");
    }
    // These need no stats: they hold even when memcached cannot answer us.
    if (t.refused_at_limit) {
      hit("memcached answered a new connection with \"ERROR Too many open connections\"");
    }
    for (const ListenerSignals* l : listeners) {
      if (l->queue_max == 0) {
        hit(fmt::format("listener {}:{} has a max queue of 0: memcached stopped accepting",
                        l->address, l->port));
      }
    }
    judge("MaxConnectionsNear", labels, v, s);
  }

  {  // MemcachedCpuSaturated: CPU seconds per second per worker thread.
    const AlertThreshold& th = threshold("MemcachedCpuSaturated");
    std::optional<Verdict> v;
    if (t.up && t.cpu_utilization) {
      v = Verdict{};
      v->value = *t.cpu_utilization;
      v->level = graded(v->value, th, current("MemcachedCpuSaturated", labels));
      v->threshold = crossed_threshold(v->level, th);
      v->evidence = t.threads
                        ? fmt::format(
                              "memcached used {} CPU seconds per second over {} "
                              "worker threads: {} per thread",
                              num(v->value * *t.threads), num(*t.threads), num(v->value))
                        : fmt::format("{} CPU seconds per second per worker thread", num(v->value));
    }
    judge("MemcachedCpuSaturated", labels, v, s);
  }

  {  // SomaxconnTooLow: the kernel caps the backlog memcached asked for.
    const AlertThreshold& th = threshold("SomaxconnTooLow");
    std::optional<Verdict> v;
    if (t.up && t.tcp_backlog && s.host.somaxconn) {
      double effective = std::min(*s.host.somaxconn, *t.tcp_backlog);
      for (const ListenerSignals* l : listeners) {
        if (l->queue_max > 0) effective = l->queue_max;  // what the kernel actually applied
      }
      v = Verdict{Level::kOk, effective, th.warning,
                  fmt::format("listen backlog {}: memcached asks for {} (-b), net.core.somaxconn "
                              "is {}",
                              num(effective), num(*t.tcp_backlog), num(*s.host.somaxconn))};
      if (*s.host.somaxconn < *t.tcp_backlog) {
        v->level = Level::kWarning;
        append(v->evidence, "the kernel silently cuts -b down to somaxconn");
      }
      if (effective < th.warning) {
        v->level = Level::kWarning;
        append(v->evidence, "below the floor of " + num(th.warning));
      }
      // Overflows of a listener that is not accepting at all are the connection limit's
      // (MaxConnectionsNear), whatever its backlog.
      const bool accepting = std::all_of(listeners.begin(), listeners.end(),
                                         [](const auto* l) { return l->queue_max > 0; });
      const std::string overflowed =
          t.port && accepting ? overflowed_listeners(s, *t.port, th.window) : std::string();
      if (!overflowed.empty() && effective < th.critical &&
          increase("host/listen_overflows", std::nullopt, s, th.window) > 0) {
        v->level = Level::kCritical;
        v->threshold = th.critical;
        append(v->evidence, "its listener overflowed with a backlog under " + num(th.critical) +
                                ": " + overflowed);
      }
    }
    judge("SomaxconnTooLow", labels, v, s);
  }

  {  // SlowClients: connections whose replies sit unread in the send queue.
    const AlertThreshold& th = threshold("SlowClients");
    std::optional<Verdict> v;
    if (s.sockets_known && t.port) {
      v = Verdict{};
      v->value = port != nullptr ? port->send_queue_blocked : 0;
      v->level = graded(v->value, th, current("SlowClients", labels));
      v->threshold = crossed_threshold(v->level, th);
      v->evidence = fmt::format(
          "{} connections on port {} hold unread reply bytes above the "
          "send-queue threshold",
          num(v->value), *t.port);
    }
    judge("SlowClients", labels, v, s);
  }

  {  // MemcachedMemoryFull: memory nearly used up while items are evicted.
    const AlertThreshold& th = threshold("MemcachedMemoryFull");
    const double evicted =
        increase(key + "evictions", up_value(t.evictions), s, th.window, restarted);
    std::optional<Verdict> v;
    if (t.up && t.bytes && t.limit_maxbytes && *t.limit_maxbytes > 0) {
      v = Verdict{};
      v->value = *t.bytes / *t.limit_maxbytes;
      v->level =
          evicted > 0 ? graded(v->value, th, current("MemcachedMemoryFull", labels)) : Level::kOk;
      v->threshold = crossed_threshold(v->level, th);
      v->evidence = fmt::format("{} of {} bytes used ({}); {} items evicted in the last {}",
                                num(*t.bytes), num(*t.limit_maxbytes), percent(v->value),
                                num(evicted), format_duration(th.window));
    }
    judge("MemcachedMemoryFull", labels, v, s);
  }
}

void Evaluator::check_nic(const NicSignals& n, const Signals& s) {
  const AlertThreshold& th = threshold("NetworkSaturated");
  const AlertLabels labels{{"device", n.device}};
  const double drops =
      increase("nic/" + n.device + "/drops", n.receive_drops + n.transmit_drops, s, th.window);
  Verdict v;
  v.value = std::max(n.receive_utilization.value_or(0), n.transmit_utilization.value_or(0));
  v.level = graded(v.value, th, current("NetworkSaturated", labels));
  v.threshold = crossed_threshold(v.level, th);
  if (n.receive_utilization || n.transmit_utilization) {
    v.evidence = fmt::format("{} receive {}, transmit {} of its link speed", n.device,
                             percent(n.receive_utilization.value_or(0)),
                             percent(n.transmit_utilization.value_or(0)));
  } else {
    v.evidence = n.device + " link speed unknown, utilisation not measured";
  }
  append(v.evidence,
         fmt::format("{} packets dropped in the last {}", num(drops), format_duration(th.window)));
  if (drops > 0) v.level = worse(v.level, Level::kWarning);
  judge("NetworkSaturated", labels, v, s);
}

std::vector<AlertStatus> Evaluator::statuses() const {
  std::vector<AlertStatus> out;
  for (const AlertDefinition& def : alert_catalogue()) {
    for (const auto& [key, t] : tracks_) {
      if (t.alert != def.name) continue;
      out.push_back(AlertStatus{t.alert, t.labels, t.state.state(), t.state.since(), t.state.last(),
                                std::string(def.cause), std::string(def.remediation)});
    }
  }
  return out;
}

Level Evaluator::worst() const {
  Level w = Level::kOk;
  for (const auto& [key, t] : tracks_) w = worse(w, t.state.state());
  return w;
}

std::string Evaluator::json() const {
  std::string out = "{\"alerts\":[";
  bool first = true;
  for (const AlertStatus& a : statuses()) {
    if (!first) out += ",";
    first = false;
    std::string subject;
    std::string labels;
    for (const auto& [name, value] : a.labels) {
      if (subject.empty()) subject = value;
      if (!labels.empty()) labels += ",";
      labels += "\"" + json_escape(name) + "\":\"" + json_escape(value) + "\"";
    }
    out += "{\"name\":\"" + a.name + "\"";
    out += ",\"state\":\"" + std::string(level_name(a.state)) + "\"";
    out += ",\"target\":" +
           (subject.empty() ? std::string("null") : "\"" + json_escape(subject) + "\"");
    out += ",\"labels\":{" + labels + "}";
    out += ",\"since\":\"" + rfc3339(a.since) + "\"";
    out += ",\"value\":" + (a.verdict ? json_number(a.verdict->value) : "null");
    out += ",\"threshold\":" + (a.verdict ? json_number(a.verdict->threshold) : "null");
    out += ",\"cause\":\"" + json_escape(a.cause) + "\"";
    out += ",\"evidence\":\"" +
           json_escape(a.verdict ? a.verdict->evidence : "no data this cycle") + "\"";
    out += ",\"remediation\":\"" + json_escape(a.remediation) + "\"}";
  }
  out += "]}\n";
  return out;
}

std::vector<prometheus::MetricFamily> Evaluator::Collect() const {
  auto f = gauge("mcbacklog_alert_state",
                 "State of each alert as the daemon evaluates it every sample: 0 ok, 1 warning, "
                 "2 critical. See /alerts for the evidence.");
  for (const AlertStatus& a : statuses()) {
    mcb::Labels labels{{"alert", a.name}};
    for (const auto& [name, value] : a.labels) labels.push_back({name, value});
    f.add(static_cast<double>(static_cast<int>(a.state)), std::move(labels));
  }
  Families out;
  f.into(out);
  return out;
}

}  // namespace mcb
