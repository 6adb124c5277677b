#include "daemon/alerts/rules.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>
#include <vector>

#include <fmt/format.h>

#include "config/bit_rate.hpp"

namespace mcb {

std::string format_number(double v) {
  // std::to_chars: the figures of fmt's "{:.0f}", "{:.3g}" and "{:.1f}" without parsing a format
  // string, for the few dozen numbers every evaluation words.
  if (std::fabs(v) >= 1e15 || std::isnan(v)) {
    return fmt::format("{}", v);  // fmt's shortest form, which to_chars does not match here
  }
  std::array<char, 64> buffer{};
  char* const first = buffer.data();
  char* const last = first + buffer.size();
  std::to_chars_result r{};
  if (v == std::floor(v)) {
    r = std::to_chars(first, last, v, std::chars_format::fixed, 0);
  } else if (std::fabs(v) < 1) {
    r = std::to_chars(first, last, v, std::chars_format::general, 3);
  } else {
    r = std::to_chars(first, last, v, std::chars_format::fixed, 1);
  }
  return std::string(first, r.ptr);
}

std::string format_percent(double ratio) { return fmt::format("{:.0f}%", ratio * 100); }

std::string plural(double n, std::string_view one) {
  return format_number(n) + " " + std::string(one) + (n == 1 ? "" : "s");
}

namespace {

using std::chrono::seconds;
using Steady = std::chrono::steady_clock::time_point;

// Linux's default ephemeral port range (net.ipv4.ip_local_port_range 32768-60999) and how long a
// closed connection holds its port in TIME_WAIT on the side that closed first.
constexpr double kEphemeralPorts = 28232;
constexpr double kTimeWaitSeconds = 60;
// Connections growing is a trend only once it rose this many samples in a row.
constexpr int kRisingSamples = 3;
// The span over which the growth rate of connections is measured.
constexpr Duration kTrendSpan = seconds(10);

std::string num(double v) { return format_number(v); }
std::string pct(double r) { return format_percent(r); }
std::string dur(Duration d) { return format_duration(d); }

void append(std::string& evidence, const std::string& more) {
  if (more.empty()) return;
  if (!evidence.empty()) evidence += "; ";
  evidence += more;
}

// A verdict graded on `value` against the rule's levels.
Verdict graded_verdict(double value, const RuleInput& in, bool lower_is_worse = false) {
  Verdict v;
  v.value = value;
  v.level = graded(value, in.threshold, in.current, lower_is_worse);
  v.threshold = crossed_threshold(v.level, in.threshold);
  return v;
}

// A hard sign (a limit hit, a listener closed to new connections): critical whatever the value,
// which stays the graded one when there is one.
void hit(std::optional<Verdict>& v, const AlertThreshold& th, const std::string& why,
         bool immediate = true) {
  if (!v) v = Verdict{Level::kCritical, std::nullopt, th.critical, "", "", false};
  v->level = Level::kCritical;
  v->threshold = th.critical;
  v->immediate = v->immediate || immediate;
  append(v->evidence, why);
}

const MemcachedSample& memcached(const RuleInput& in) { return *in.target->memcached; }

template <class T>
std::optional<double> as_double(const std::optional<T>& v) {
  return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
}

// What the target's listeners (when the connection walk knows them) say, summed.
struct Held {
  bool known = false;  // the sockdiag collector ran and the target has a listener
  double established = 0;
  double clients = 0;
  double blocked = 0;
  std::vector<ClientConnections> top;  // largest first over all its listeners
};

Held held(const RuleInput& in) {
  Held h;
  if (in.observation.sockets == nullptr || in.target->listeners.empty()) return h;
  std::map<std::string, std::uint64_t> merged;
  for (const ListenerSample* l : in.target->listeners) {
    if (l->unix_socket) continue;  // its connections are not walked
    h.known = true;
    h.established += static_cast<double>(l->established());
    h.clients += static_cast<double>(l->clients);
    h.blocked += static_cast<double>(l->send_queue_blocked);
    for (const ClientConnections& c : l->top_clients) merged[c.client] += c.connections;
  }
  for (const auto& [client, n] : merged) h.top.push_back({client, n});
  std::stable_sort(h.top.begin(), h.top.end(),
                   [](const auto& a, const auto& b) { return a.connections > b.connections; });
  return h;
}

std::string top_clients_text(const Held& h, std::size_t most = 5) {
  std::string out;
  for (std::size_t i = 0; i < h.top.size() && i < most; ++i) {
    out += fmt::format("{}{} ({})", out.empty() ? "" : ", ", h.top[i].client,
                       num(static_cast<double>(h.top[i].connections)));
  }
  return out;
}

// The share of established connections the few largest clients hold; nullopt when unknown.
std::optional<double> top_share(const Held& h, std::size_t few = 3) {
  if (!h.known || h.established <= 0) return std::nullopt;
  double top = 0;
  for (std::size_t i = 0; i < h.top.size() && i < few; ++i) {
    top += static_cast<double>(h.top[i].connections);
  }
  return top / h.established;
}

// Connections growing: rising in each of the last samples, by how much over the window, and at
// what rate over the trend span. Nullopt unless they keep rising.
struct Growth {
  double rate = 0;   // connections per second
  double added = 0;  // over the window
};

std::optional<Growth> connections_growing(const RuleInput& in, double limit) {
  const SeriesWindow& w = at(in.windows.target(memcached(in).target), Series::kCurrConnections);
  if (!w.rising(kRisingSamples)) return std::nullopt;
  Growth g;
  g.rate = w.slope(in.observation.now, kTrendSpan);
  g.added = w.growth(in.observation.now, in.threshold.window);
  // A ramp of a few connections is no trend: at least 10, or 5% of the limit, over the window.
  if (g.rate <= 0 || g.added < std::max(10.0, 0.05 * limit)) return std::nullopt;
  return g;
}

double seconds_of(Duration d) { return std::chrono::duration<double>(d).count(); }

// ---------------------------------------------------------------------------------------------
// The checks, in catalogue order.

std::optional<Verdict> check_memcached_down(const RuleInput& in) {
  const MemcachedSample& m = memcached(in);
  const bool probe_failing = !m.probe_enabled || !m.probe || !m.probe->success;
  const ListenerSample* closed = nullptr;
  for (const ListenerSample* l : in.target->listeners) {
    if (l->listening && l->queue_max == 0) closed = l;
  }
  // Alive and at its connection limit: it said so, or its listener is open with a max queue of 0
  // (only a running memcached stops accepting). That is MaxConnectionsNear, not down.
  const bool at_limit = m.failure == FailureKind::kAtLimit ||
                        (m.probe && m.probe->failure == FailureKind::kAtLimit) || closed != nullptr;
  Verdict v;
  v.value = !m.up && probe_failing && !at_limit ? 1 : 0;
  v.threshold = 1;
  v.level = *v.value > 0 ? Level::kCritical : Level::kOk;
  v.evidence = m.up ? "stats answered" : "stats failed: " + m.error;
  if (!m.probe_enabled) {
    append(v.evidence, "the fresh-connection probe is off");
  } else if (m.probe) {
    append(v.evidence, m.probe->success
                           ? "the last fresh-connection probe succeeded"
                           : "the last fresh-connection probe failed: " + m.probe->error);
  }
  if (!m.up && closed != nullptr) {
    append(v.evidence, fmt::format("its listener {} is open with a max queue of 0: memcached "
                                   "runs and stopped accepting",
                                   listener_name(*closed)));
  }
  // What the failures were, by kind: the stats connection's, else the probe's.
  const auto failed_with = [&](FailureKind kind) {
    return m.failure == kind || (m.probe && !m.probe->success && m.probe->failure == kind);
  };
  if (!m.up && failed_with(FailureKind::kNotTextProtocol)) {
    append(v.evidence,
           "memcached accepted the connection but sent no text reply: a listener without the "
           "text protocol (-B binary, -S), a TLS listener (-Z), or a TCP proxy whose backend is "
           "down");
  }
  if (v.level != Level::kOk) {
    if (failed_with(FailureKind::kNotTextProtocol)) {
      v.fix =
          "memcached accepted the connection but did not answer in the text protocol, the only "
          "one mcbacklogd reads: it runs with -B binary (or -S, which implies it), or with TLS "
          "(-Z) on this port. Start it with -B auto; for TLS give the target a tls: block, or "
          "give mcbacklogd a plain listener (-l notls:ADDRESS:PORT) and point the target "
          "there.";
    } else if (failed_with(FailureKind::kTls)) {
      v.fix =
          "mcbacklogd reaches memcached but cannot speak TLS with it; the evidence says why. Fix "
          "the target's tls: settings (ca_file, server_name) or memcached's certificate, or "
          "remove tls: when memcached runs without -Z.";
    } else if (failed_with(FailureKind::kNamespace)) {
      v.fix =
          "mcbacklogd cannot enter the target's network namespace, so it cannot tell whether "
          "memcached runs: give it the privilege the evidence names (CAP_SYS_ADMIN for setns, "
          "CAP_SYS_PTRACE or the same user for /proc/PID/ns/net; see docs/containers.md), or "
          "run it inside the pod as a sidecar. If the evidence says the namespace is gone, point "
          "the target's netns or netns_pid at the one memcached runs in now.";
    } else if (failed_with(FailureKind::kPermissionDenied) && m.endpoint.is_unix()) {
      v.fix = "The unix socket " + m.endpoint.path +
              " does not let mcbacklogd connect: memcached creates it with the mode of its -a "
              "option (default 0700). Start memcached with -a 0770 and add mcbacklogd's user to "
              "the socket's group, or run both as one user.";
    }
  }
  return v;
}

const SeriesWindow& host_drops(const RuleInput& in) {
  return at(in.windows.host(in.observation.netns), Series::kListenDrops);
}

// A listener first watched within a window (memcached named it late: its settings came late, or
// it restarted on other ports): what it had dropped when first seen, and what the host's listen
// drops counted in the window before that moment. Those drops may be among the host's, and no
// increase of its own shows them.
struct DroppedBeforeWatched {
  double listener = 0;
  double host = 0;
};

DroppedBeforeWatched dropped_before_watched(const SeriesWindow& drops, const RuleInput& in,
                                            Duration window) {
  // SomaxconnTooLow asks every sample: a listener watched longer than the window (all of them, at
  // rest) answers before the host's windows are looked up.
  const auto first = drops.first_time();
  if (!first || *first <= in.observation.now - window) return {};
  const SeriesWindow& host = host_drops(in);
  const auto host_first = host.first_time();
  // The host's count in the window begins at its start, or at the host's first sample in it.
  if (!host_first || *first <= *host_first) return {};
  const Steady since = std::max(*host_first, in.observation.now - window);
  return {drops.first_value().value_or(0), host.increase_between(since, *first)};
}

// In words, the target's listeners (or, with no target, every watched listener) that overflowed
// within `window`: their own drop counter rose or, where the kernel does not report it, they
// were seen at their max queue or not accepting at all. A listener first watched within the
// window with drops already counted gets them too when the host's listen drops before that moment
// hold all of them. `text` is empty when none did.
struct Overflowed {
  std::string text;
  double dropped = 0;      // the connections their own drop counters lost in the window
  bool uncounted = false;  // one was blamed for its queue alone (no drop counter): not all counted
};

Overflowed overflowed_listeners(const RuleInput& in, std::span<const ListenerSample* const> only,
                                Duration window) {
  Overflowed result;
  std::string& out = result.text;
  const Steady now = in.observation.now;
  auto judge = [&](const ListenerSample& l) {
    if (!l.listening) return;
    const SubjectWindows& w = in.windows.listener(listener_name(l), in.observation.netns);
    if (l.drops) {
      // The kernel's own count: exact, however short the burst.
      const SeriesWindow& drops = at(w, Series::kListenerDrops);
      const double dropped = drops.increase(now, window);
      // Credited when the host's drops before then hold them all; more are partly older.
      const auto [before, host_before] = dropped_before_watched(drops, in, window);
      if (before > 0 && before <= host_before) {
        result.dropped += dropped + before;
        append(out, fmt::format("{} dropped {} in the last {}, {} of them before it was first "
                                "watched",
                                listener_name(l), plural(dropped + before, "connection"),
                                dur(window), num(before)));
      } else if (dropped > 0) {
        result.dropped += dropped;
        append(out, fmt::format("{} dropped {} in the last {}", listener_name(l),
                                plural(dropped, "connection"), dur(window)));
      }
    } else if (l.queue_max == 0) {
      result.uncounted = true;
      append(out, listener_name(l) + " is not accepting (max queue 0)");
    } else if (const auto peak = at(w, Series::kListenerPeak).highest(now, window);
               peak && *peak >= l.queue_max) {
      result.uncounted = true;
      append(out, fmt::format("{} reached its max queue (peak {} of {})", listener_name(l),
                              num(*peak), num(l.queue_max)));
    }
  };
  if (!only.empty()) {
    for (const ListenerSample* l : only) judge(*l);
  } else if (in.observation.sockets != nullptr) {
    for (const ListenerSample& l : in.observation.sockets->listeners) judge(l);
    // A listener that went away within the window (memcached restarted on other ports, or
    // stopped) keeps what it dropped: those overflows were memcached's, not another service's.
    for (const auto& [name, w] : in.windows.gone_listeners(in.observation.netns, now, window)) {
      const double dropped = at(*w, Series::kListenerDrops).increase(now, window);
      if (dropped > 0) {
        result.dropped += dropped;
        append(out, fmt::format("{}, no longer listening, dropped {} in the last {}", name,
                                plural(dropped, "connection"), dur(window)));
      }
    }
  }
  return result;
}

// In words, memcached's listeners that may have taken some of the window's overflows unseen: one
// that closed within it while the host dropped connections (its last drops were never read), one
// opened anew on the same address within it (memcached restarted between two samples: its drop
// counter began again) while the host dropped connections, or one first watched within it with
// drops already counted (dropped_before_watched). Empty when none may have.
std::string partly_watched_listeners(const RuleInput& in, Duration window) {
  std::string out;
  auto add = [&out](const std::string& what) { out += (out.empty() ? "" : ", ") + what; };
  const Observation& o = in.observation;
  const SeriesWindow& host = host_drops(in);
  for (const auto& [name, w] : in.windows.gone_listeners(o.netns, o.now, window)) {
    // Its last sample, then the host's first read after it: the drops in between may be its own.
    const auto last = at(*w, Series::kListenerDrops).last_time();
    const auto next = last ? host.first_after(*last) : std::nullopt;
    if (next && host.increase_between(*last, *next) > 0) add(name + " closed");
  }
  for (const ListenerSample& l : o.sockets->listeners) {
    if (!l.listening || !l.drops) continue;
    const SubjectWindows& w = in.windows.listener(listener_name(l), o.netns);
    const SeriesWindow& drops = at(w, Series::kListenerDrops);
    if (const auto reset = drops.last_reset(o.now, window);
        reset && host.increase_between(reset->before, reset->at) > 0) {
      add(listener_name(l) + " was opened anew (its drop counter began again)");
    }
    const auto [before, host_before] = dropped_before_watched(drops, in, window);
    if (before > 0 && host_before > 0) {
      add(fmt::format("{} had dropped {} when first watched within it", listener_name(l),
                      num(before)));
    }
  }
  return out;
}

std::optional<Verdict> check_listen_queue_overflow(const RuleInput& in) {
  const Observation& o = in.observation;
  if (o.netstat == nullptr || !o.netstat->listen_overflows) return std::nullopt;
  const AlertThreshold& th = in.threshold;
  const SubjectWindows& host = in.windows.host(in.observation.netns);
  const double overflows = at(host, Series::kListenOverflows).increase(o.now, th.window);
  const double drops = at(host, Series::kListenDrops).increase(o.now, th.window);
  Verdict v = graded_verdict(overflows, in);
  v.evidence = fmt::format(
      "{} and {} in the last {} (kernel TcpExt counters, every listener of this network "
      "namespace)",
      plural(overflows, "listen overflow"), plural(drops, "listen drop"), dur(th.window));
  if (v.level != Level::kOk) {
    const Overflowed blamed = overflowed_listeners(in, {}, th.window);
    if (!blamed.text.empty()) {
      append(v.evidence, "memcached's listener overflowed: " + blamed.text);
      // Graded on memcached's own drops when every listener blamed counts them: another
      // service's overflows in the same namespace are not memcached's to page for.
      // Not when a listener of memcached's may have dropped some unseen (it closed, or opened
      // anew, while the host dropped): those are in the namespace's count only.
      const bool own_count = !blamed.uncounted && blamed.dropped < overflows;
      const std::string partly = own_count ? partly_watched_listeners(in, th.window) : "";
      if (own_count && !partly.empty()) {
        append(v.evidence,
               "graded on the namespace's count: not all of memcached's listeners "
               "were watched for the whole window (" +
                   partly + ")");
      } else if (own_count) {
        const Verdict own = graded_verdict(blamed.dropped, in);
        v.level = own.level;
        v.value = own.value;
        v.threshold = own.threshold;
        append(v.evidence,
               fmt::format("graded on memcached's {}: the other {} are on another listener of "
                           "this host",
                           num(blamed.dropped), num(overflows - blamed.dropped)));
      }
      // A full queue drops handshakes now: no reason to wait.
      v.immediate = true;
    } else if (o.sockets != nullptr) {
      // Overflowing, but not at a listener of memcached's seen overflowing: do not page for it.
      v.level = std::min(v.level, Level::kWarning);
      v.threshold = crossed_threshold(v.level, th);
      std::string peaks;
      for (const ListenerSample& l : o.sockets->listeners) {
        if (!l.listening) continue;
        append(peaks, fmt::format("{} peak {} of {}{}", listener_name(l), num(l.queue_peak),
                                  num(l.queue_max), l.drops ? ", no drops" : ""));
      }
      const std::string partly = partly_watched_listeners(in, th.window);
      const std::string watched = peaks.empty()
                                      ? std::string("no watched memcached listener is open")
                                      : "no watched memcached listener overflowed (" + peaks + ")";
      if (partly.empty()) {
        append(v.evidence, watched + ": the overflows are on another listener of this host");
        v.fix =
            "The overflows are on a listener mcbacklogd does not watch: find it with "
            "`ss -ltn` (Recv-Q at Send-Q) or `nstat -az TcpExtListenOverflows` per process, and "
            "fix that service. memcached's own queue is not full, so its -b and somaxconn are "
            "not the cause.";
      } else {
        // A listener of memcached's that closed, or was found late, may have taken them unseen.
        append(v.evidence, watched +
                               ", but not all of memcached's listeners were watched for "
                               "the whole window (" +
                               partly + "): the overflows may be memcached's");
        v.fix =
            "Some of memcached's listeners were not watched for the whole window: it stopped, "
            "restarted, or named a listener late. If it stalled or restarted, the cause alerts of "
            "that time say why. If the overflows go on while its listeners show no drops, they "
            "are another service's: find it with `ss -ltn` (Recv-Q at Send-Q).";
      }
    } else {
      append(v.evidence,
             "the listeners' own queues are unknown (sockdiag collector off, or its dump failed)");
    }
  }
  // A listener at its max queue right now is the overflow about to happen.
  if (o.sockets != nullptr) {
    for (const ListenerSample& l : o.sockets->listeners) {
      if (l.listening && l.queue_max > 0 && l.queue_length >= l.queue_max) {
        v.level = worse(v.level, Level::kWarning);
        append(v.evidence, fmt::format("listener {} is at its max queue now ({} of {})",
                                       listener_name(l), num(l.queue_length), num(l.queue_max)));
      }
    }
  }
  return v;
}

std::optional<Verdict> check_accept_queue_filling(const RuleInput& in) {
  std::optional<Verdict> v;
  for (const ListenerSample* l : in.target->listeners) {
    if (!l->listening || l->queue_max <= 0) continue;  // not accepting: MaxConnectionsNear
    const double ratio = static_cast<double>(l->queue_peak) / l->queue_max;
    if (v && ratio <= *v->value) continue;
    v = graded_verdict(ratio, in);
    v->evidence = fmt::format(
        "accept queue of {} peaked at {} of {} ({}) over the peak window; {} "
        "waiting now",
        listener_name(*l), num(l->queue_peak), num(l->queue_max), pct(ratio), num(l->queue_length));
    if (l->queue_peak >= l->queue_max) {
      // Full: the kernel drops handshakes now.
      v->immediate = v->level == Level::kCritical;
      append(v->evidence, "the queue was full: new connections are being dropped");
    }
  }
  return v;
}

std::optional<Verdict> check_probe_slow(const RuleInput& in) {
  const MemcachedSample& m = memcached(in);
  if (!m.probe_enabled || !m.probe) return std::nullopt;
  const ProbeResult& p = *m.probe;
  if (!p.success) {
    if (!m.up) return std::nullopt;  // MemcachedDown says it; no second page
    // Not served in time, or turned away: the accept queue or the limit. Anything else (a reply
    // that is not memcached's, TLS, a refused connect) is no queue's doing: its kind says what.
    const bool queued = p.failure == FailureKind::kNoReply || p.failure == FailureKind::kAtLimit ||
                        p.failure == FailureKind::kNone;
    return Verdict{Level::kCritical,
                   p.duration_seconds,
                   in.threshold.critical,
                   "memcached answers on its existing connection, but a fresh connection was not "
                   "served (" +
                       p.error + "): " +
                       (queued ? std::string("its accept queue is full, it stopped accepting or it "
                                             "is at its connection limit")
                               : std::string(failure_kind_causes(p.failure))),
                   "",
                   false};
  }
  Verdict v = graded_verdict(p.duration_seconds, in);
  v.evidence = fmt::format("a fresh connection was answered after {} s", num(p.duration_seconds));
  return v;
}

std::optional<Verdict> check_connection_sprawl(const RuleInput& in) {
  const MemcachedSample& m = memcached(in);
  if (!m.up || !m.stats.total_connections) return std::nullopt;
  const AlertThreshold& th = in.threshold;
  const Steady now = in.observation.now;
  const SubjectWindows& w = in.windows.target(m.target);
  const double per_second = at(w, Series::kTotalConnections).rate(now, th.window);
  const Held h = held(in);

  Verdict v = graded_verdict(per_second, in);
  v.evidence = fmt::format("{} new connections/s over the last {} (memcached total_connections)",
                           num(per_second), dur(th.window));
  // Churn: each connection a client closes holds one of its ephemeral ports for the TIME_WAIT
  // minute. At this rate per client address, the ports run out within `for`: page now.
  const double clients = h.known && h.clients > 0 ? h.clients : 1;
  const double used = per_second / clients * std::min(seconds_of(th.for_), kTimeWaitSeconds);
  if (per_second >= th.warning && used >= kEphemeralPorts) {
    v.level = Level::kCritical;
    v.threshold = th.critical;
    v.immediate = true;
    append(v.evidence, fmt::format("at {} new connections/s per client address its {} ephemeral "
                                   "ports, each held {} s in TIME_WAIT, run out within {}",
                                   num(per_second / clients), num(kEphemeralPorts),
                                   num(kTimeWaitSeconds), dur(th.for_)));
  }

  // A leak: connections held keep rising, towards the limit, from few clients.
  const auto limit = connection_limit(m);
  const auto curr = as_double(m.stats.curr_connections);
  if (limit && curr && *limit > 0) {
    if (const auto g = connections_growing(in, *limit)) {
      const double share = *curr / *limit;
      AlertThreshold levels = th;
      levels.warning = th.connections_warning;
      levels.critical = th.connections_critical;
      levels.clear = th.connections_warning;
      Level by_share = graded(share, levels, Level::kOk);
      const double left = (*limit - *curr) / g->rate;
      const bool runs_out = left <= seconds_of(th.for_);
      if (runs_out) by_share = Level::kCritical;
      const auto share_of_top = top_share(h);
      const bool spread = share_of_top && h.clients > 5 && *share_of_top < 0.5;
      if (spread) by_share = std::min(by_share, Level::kWarning);
      std::string leak = fmt::format(
          "connections rose by {} in the last {} ({}/s) to {} of the limit {} ({})", num(g->added),
          dur(th.window), num(g->rate), num(*curr), num(*limit), pct(share));
      if (by_share > v.level) {
        v.level = by_share;
        v.value = share;
        v.threshold = crossed_threshold(by_share, levels);
        v.immediate = runs_out && !spread;
        if (runs_out) leak += fmt::format(": the limit is reached in {:.0f} s", left);
        v.fix = spread ? "Connections rise from many clients: more clients or larger pools, "
                         "not one leaking client. Bound each client's pool, and raise -c (with "
                         "its open-files limit) if the fleet needs the connections."
                       : "Connections keep rising from the clients named: they open connections "
                         "and do not close them (a memcached client created per request, e.g. a "
                         "python-memcache Client in a request handler). Create the client once "
                         "per process and reuse it, or close it after use; raising -c only "
                         "postpones the outage.";
      }
      append(v.evidence, leak);
    }
  }
  if (h.known) {
    std::string from = fmt::format("{} established from {}", plural(h.established, "connection"),
                                   plural(h.clients, "client"));
    const std::string top = top_clients_text(h);
    if (!top.empty()) from += ", most from " + top;
    append(v.evidence, from);
  }
  return v;
}

std::optional<Verdict> check_max_connections_near(const RuleInput& in) {
  const MemcachedSample& m = memcached(in);
  const AlertThreshold& th = in.threshold;
  const Steady now = in.observation.now;
  const SubjectWindows& w = in.windows.target(m.target);
  std::optional<Verdict> v;
  const auto limits = connection_limits(m);
  const auto limit = connection_limit(m);
  const auto curr = as_double(m.stats.curr_connections);
  if (m.up && curr && limits) {
    v = graded_verdict(*curr / *limit, in);
    v->evidence = fmt::format(
        "{} of an effective limit of {} (-c {} less {} memcached holds itself with {}{}): {}",
        plural(*curr, "connection"), num(*limit), num(limits->max_connections),
        plural(limits->own, "descriptor"), plural(limits->threads, "worker thread"),
        limits->refusal > 0 ? ", and 1 it answers refusals on" : "", pct(*v->value));
    // Time left: connections rising, as they are, reach the limit soon.
    if (const auto g = connections_growing(in, *limit)) {
      const double left = (*limit - *curr) / g->rate;
      Level by_time = Level::kOk;
      if (left <= th.time_left_critical) {
        by_time = Level::kCritical;
      } else if (left <= th.time_left_warning) {
        by_time = Level::kWarning;
      }
      append(v->evidence,
             fmt::format("connections rose {}/s over the last {}: the limit is reached in {:.0f} s",
                         num(g->rate), dur(kTrendSpan), left));
      if (by_time > v->level) {
        v->level = by_time;
        v->threshold = crossed_threshold(by_time, th);
      }
      v->immediate = v->immediate || left <= seconds_of(th.for_);
      const Held h = held(in);
      const auto share = top_share(h);
      if (!share || *share >= 0.5) {
        v->fix =
            "Connections keep rising" +
            (h.known ? " from " + plural(h.clients, "client") + " (" + top_clients_text(h) + ")"
                     : std::string()) +
            ": a client leaks connections (see ConnectionSprawl). Fix the client first; "
            "raising -c only moves the outage later.";
      }
    }
  }
  // Hard signs of the limit being hit: they hold even when memcached cannot answer us, and even
  // without a ratio (a memcached that reports no -c).
  std::vector<std::string> counters;  // signs that one memcached counter alone gives
  const double rejected = at(w, Series::kRejectedConnections).increase(now, th.window);
  const double disabled = at(w, Series::kListenDisabled).increase(now, th.window);
  if (m.up && rejected > 0) {
    counters.push_back(
        fmt::format("{} rejected with \"ERROR Too many open connections\" in the last {}",
                    plural(rejected, "connection"), dur(th.window)));
  }
  if (m.up && disabled > 0) {
    counters.push_back(
        fmt::format("memcached stopped accepting {} in the last {} "
                    "(listen_disabled_num)",
                    plural(disabled, "time"), dur(th.window)));
  }
  std::vector<std::string> seen;  // signs the daemon saw for itself
  if (m.up && m.stats.accepting_conns && *m.stats.accepting_conns == 0) {
    seen.emplace_back("memcached is not accepting now (accepting_conns 0)");
  }
  if (m.failure == FailureKind::kAtLimit ||
      (m.probe && m.probe->failure == FailureKind::kAtLimit)) {
    seen.emplace_back(
        "memcached answered a new connection with \"ERROR Too many open connections\"");
  }
  for (const ListenerSample* l : in.target->listeners) {
    if (l->listening && l->queue_max == 0) {
      seen.push_back(fmt::format("listener {} has a max queue of 0: memcached stopped accepting",
                                 listener_name(*l)));
    }
  }
  for (const std::string& s : seen) hit(v, th, s);
  if (!counters.empty()) {
    // A counter alone is checked against what the daemon observed itself: every fresh connection
    // served within the window, at a low usage, contradicts it.
    const double probes_ok = at(w, Series::kProbeSuccesses).increase(now, th.window);
    const double probes_failed = at(w, Series::kProbeFailures).increase(now, th.window);
    const auto busiest = at(w, Series::kCurrConnections).highest(now, th.window);
    const bool low_usage = limit && busiest && *busiest / *limit < th.warning;
    const bool contradicted =
        seen.empty() && probes_ok > 0 && probes_failed == 0 && v && v->value && low_usage;
    for (const std::string& s : counters) {
      if (contradicted) {
        v->level = worse(v->level, Level::kWarning);
        v->threshold = std::max(v->threshold, th.warning);
        append(v->evidence, s);
      } else {
        hit(v, th, s);
      }
    }
    if (contradicted) {
      append(v->evidence,
             fmt::format("but every fresh-connection probe in the last {} ({}) was served and "
                         "usage was at most {}: the counter contradicts what mcbacklogd observed, "
                         "so this stays a warning",
                         dur(th.window), plural(probes_ok, "probe"), pct(*busiest / *limit)));
    }
  }
  return v;
}

// The host's CPU time the hypervisor stole and that waited for I/O, as shares of all its CPU
// time over the alert's window; nullopt without two readings of /proc/stat.
struct HostCpu {
  double steal = 0;
  double iowait = 0;
};

std::optional<HostCpu> host_cpu(const RuleInput& in) {
  if (in.observation.cpu == nullptr) return std::nullopt;
  const SubjectWindows& host = in.windows.host();
  const Steady now = in.observation.now;
  const Duration window = in.threshold.window;
  const double total = at(host, Series::kCpuTotal).increase(now, window);
  if (total <= 0) return std::nullopt;
  return HostCpu{at(host, Series::kCpuSteal).increase(now, window) / total,
                 at(host, Series::kCpuIowait).increase(now, window) / total};
}

std::optional<Verdict> check_cpu_saturated(const RuleInput& in) {
  const MemcachedSample& m = memcached(in);
  if (!m.up) return std::nullopt;
  const MemcachedThreads* t = in.target->threads;
  const bool per_thread = t != nullptr && t->view == ThreadView::kPerThread && t->busiest;
  if (!per_thread && !m.cpu_utilization_ratio) return std::nullopt;
  Verdict v;
  if (per_thread) {
    v = graded_verdict(*t->busiest, in);
    v.evidence = fmt::format(
        "the busiest worker thread ({} {}) used {} CPU seconds per second; the average over {} "
        "was {}",
        kWorkerThreadName, t->busiest_tid, num(*t->busiest),
        plural(static_cast<double>(t->workers), "worker thread"), num(t->average.value_or(0)));
    if (m.cpu_utilization_ratio) {
      append(v.evidence, fmt::format("memcached's rusage: {} per worker thread",
                                     num(*m.cpu_utilization_ratio)));
    }
    // One thread saturated while the others idle: one hot connection (or a few on one thread).
    if (v.level != Level::kOk && t->average && *t->busiest >= 2 * *t->average) {
      v.fix = fmt::format(
          "One worker thread is saturated while the others are not (busiest {}, average {}): "
          "memcached serves each connection on one thread, so more threads (-t) do not help a "
          "hot connection. Spread the heavy client's requests over more connections (a pool "
          "rather than one shared connection), or shard its hot keys over more instances.",
          num(*t->busiest), num(t->average.value_or(0)));
    }
  } else {
    v = graded_verdict(*m.cpu_utilization_ratio, in);
    const auto threads = worker_threads(m);
    v.evidence =
        threads
            ? fmt::format(
                  "memcached used {} CPU seconds per second over {}: {} per "
                  "thread on average",
                  num(*v.value * *threads), plural(*threads, "worker thread"), num(*v.value))
            : fmt::format("{} CPU seconds per second per worker thread on average", num(*v.value));
    if (t != nullptr && !t->reason.empty()) {
      append(v.evidence, "each thread's CPU is not read: " + t->reason);
    }
  }
  if (const auto host = host_cpu(in)) {
    append(v.evidence,
           fmt::format("over the last {} the hypervisor took {} of this host's CPU time (steal) "
                       "and {} waited for I/O",
                       dur(in.threshold.window), pct(host->steal), pct(host->iowait)));
    if (v.level != Level::kOk && host->steal >= in.threshold.steal_warning) {
      v.fix = fmt::format(
          "The hypervisor takes {} of this VM's CPU time (steal): memcached's threads wait for "
          "CPU the VM was never given, and look slow. Move memcached to a larger or dedicated "
          "instance (no CPU credits, no noisy neighbours) before tuning memcached itself.",
          pct(host->steal));
    }
  }
  return v;
}

// The level of `value` on a pair of extra levels (no hysteresis: they read window increases).
Level extra_level(double value, double warning, double critical) {
  if (value >= critical) return Level::kCritical;
  if (value >= warning) return Level::kWarning;
  return Level::kOk;
}

// Fewer segments than this in the window make no retransmission ratio: 3 retransmitted of 20
// sent is no loss rate.
constexpr double kMinSegments = 1000;

std::string allowance_fix(const std::vector<Allowance>& exceeded) {
  std::string limits;
  bool packets = false;
  bool conntrack = false;
  bool linklocal = false;
  for (Allowance a : exceeded) {
    limits += (limits.empty() ? "" : ", ") + std::string(allowance_meaning(a));
    packets = packets || a == Allowance::kPps;
    conntrack = conntrack || a == Allowance::kConntrack;
    linklocal = linklocal || a == Allowance::kLinklocal;
  }
  std::string fix =
      "The cloud provider queued or dropped this instance's packets: it went past "
      "its allowance of " +
      limits +
      ", whatever the link speed says. Move to an instance type with a larger "
      "network allowance, or send fewer packets: multi-get instead of single gets, "
      "fewer and larger values, batched requests.";
  if (conntrack) {
    fix += " For tracked connections: pool client connections (fewer, long-lived ones).";
  }
  if (linklocal) {
    fix += " For link-local traffic: cache DNS answers on the host (a local resolver).";
  }
  if (packets) fix += " For packets per second: pipeline and batch small requests.";
  return fix;
}

std::optional<Verdict> check_network_saturated(const RuleInput& in) {
  const NetdevDevice& d = *in.device;
  const AlertThreshold& th = in.threshold;
  const Steady now = in.observation.now;
  const SubjectWindows& w = in.windows.device(d.counters.device);
  const double drops = at(w, Series::kNicDrops).increase(now, th.window);
  Verdict v;
  if (d.receive_utilization || d.transmit_utilization) {
    v = graded_verdict(
        std::max(d.receive_utilization.value_or(0), d.transmit_utilization.value_or(0)), in);
    v.evidence = fmt::format(
        "{} receive {}, transmit {} of its link speed ({} {})", d.counters.device,
        pct(d.receive_utilization.value_or(0)), pct(d.transmit_utilization.value_or(0)),
        format_bit_rate(static_cast<double>(d.speed_bytes.value_or(0)) * 8),
        d.speed_source == SpeedSource::kConfigured ? "as configured" : "as the driver reports");
  } else {
    // No utilisation: never a 0 that reads as measured.
    v.threshold = th.warning;
    if (d.speed_bytes) {
      v.evidence = d.counters.device + ": utilisation needs a second sample";
    } else if (!d.speed_error.empty()) {
      v.evidence = d.counters.device + ": its link speed could not be read (" + d.speed_error +
                   "), so its utilisation is not measured: give it under "
                   "collectors.netdev.speeds";
    } else {
      v.evidence = d.counters.device +
                   " reports no link speed (most virtual and cloud NICs do not know theirs), so "
                   "its utilisation is not measured: give it under collectors.netdev.speeds";
    }
  }
  append(v.evidence,
         fmt::format("{} dropped in the last {}", plural(drops, "packet"), dur(th.window)));
  if (drops > 0) v.level = worse(v.level, Level::kWarning);
  const Level by_utilisation = v.level;

  // The cloud's own limits: packets shaped or dropped past an allowance, whatever the speed.
  std::vector<Allowance> exceeded;
  for (std::size_t i = 0; i < kAllowanceCount; ++i) {
    const auto a = static_cast<Allowance>(i);
    const double rose = at(w, allowance_series(a)).increase(now, th.window);
    if (rose <= 0) continue;
    exceeded.push_back(a);
    append(v.evidence,
           fmt::format("{} rose by {} in the last {}: past the instance's {} allowance",
                       allowance_stat(a), num(rose), dur(th.window), allowance_meaning(a)));
  }
  if (!exceeded.empty()) {
    v.level = Level::kCritical;
    v.threshold = th.critical;
  }

  // Loss and latency, host-wide: every watched NIC's verdict carries them.
  Level by_loss = Level::kOk;
  const SubjectWindows& host = in.windows.host();
  if (in.observation.netstat != nullptr && in.observation.netstat->out_segments) {
    const double sent = at(host, Series::kSentSegments).increase(now, th.window);
    const double again = at(host, Series::kRetransmittedSegments).increase(now, th.window);
    if (sent >= kMinSegments) {
      const double ratio = again / sent;
      by_loss = worse(by_loss, extra_level(ratio, th.retransmit_warning, th.retransmit_critical));
      append(v.evidence, fmt::format("the host's TCP retransmitted {} of {} sent in the last {}",
                                     pct(ratio), plural(sent, "segment"), dur(th.window)));
    }
  }
  if (in.observation.softnet != nullptr) {
    const double dropped = at(host, Series::kSoftnetDropped).increase(now, th.window);
    const double squeezed = at(host, Series::kSoftnetSqueezed).increase(now, th.window);
    by_loss =
        worse(by_loss, extra_level(dropped, th.softnet_drops_warning, th.softnet_drops_critical));
    if (dropped > 0 || squeezed > 0) {
      append(v.evidence,
             fmt::format("the CPUs' receive backlogs dropped {} and ran out of budget {} in the "
                         "last {} (softnet_stat)",
                         plural(dropped, "packet"), plural(squeezed, "time"), dur(th.window)));
    }
  }
  std::string rtts;
  double slowest = 0;
  for (const TargetView& t : in.observation.targets) {
    const MemcachedSample& m = *t.memcached;
    if (!m.probe || !m.probe->connect_seconds) continue;
    slowest = std::max(slowest, *m.probe->connect_seconds);
    append(rtts, fmt::format("{} {:.2f} ms", m.target, *m.probe->connect_seconds * 1000));
  }
  if (!rtts.empty()) {
    by_loss = worse(by_loss, extra_level(slowest, th.rtt_warning, th.rtt_critical));
    append(v.evidence, "TCP handshake of the last fresh-connection probe: " + rtts);
  }
  if (by_loss > v.level) {
    v.level = by_loss;
    if (by_utilisation == Level::kOk) v.threshold = crossed_threshold(by_loss, th);
    v.fix =
        "Packets are lost or delayed on the way: retransmissions, backlog drops or a slow "
        "handshake. If this NIC is near its capacity, move memcached traffic to a dedicated or "
        "faster NIC; if the CPUs' receive backlogs drop packets, spread the NIC's interrupts over "
        "more CPUs (RSS, RPS, irqbalance) and raise net.core.netdev_max_backlog; otherwise look "
        "for loss on the path (switch ports, the peer's NIC).";
  }
  if (!exceeded.empty()) v.fix = allowance_fix(exceeded);
  return v;
}

std::optional<Verdict> check_somaxconn_too_low(const RuleInput& in) {
  const MemcachedSample& m = memcached(in);
  const Observation& o = in.observation;
  const auto backlog = listen_backlog(m);
  if (!backlog || o.sysctl == nullptr || !o.sysctl->somaxconn) return std::nullopt;
  const AlertThreshold& th = in.threshold;
  const auto somaxconn = static_cast<double>(*o.sysctl->somaxconn);
  double effective = std::min(somaxconn, *backlog);
  bool accepting = true;
  for (const ListenerSample* l : in.target->listeners) {
    if (!l->listening) continue;
    if (l->queue_max > 0) effective = l->queue_max;  // what the kernel actually applied
    accepting = accepting && l->queue_max > 0;
  }
  Verdict v{Level::kOk,
            effective,
            th.warning,
            fmt::format("listen backlog {}: memcached asks for {} (-b), net.core.somaxconn is {}",
                        num(effective), num(*backlog), num(somaxconn)),
            "",
            false};
  if (effective < *backlog) {
    v.level = Level::kWarning;
    // A listener keeps the backlog it was created with: somaxconn raised since does not reach it.
    append(v.evidence, somaxconn < *backlog
                           ? "the kernel silently cuts -b down to somaxconn"
                           : "the listener keeps the backlog it was created with, under a lower "
                             "somaxconn: restart memcached to apply the new one");
  }
  if (effective < th.warning) {
    v.level = Level::kWarning;
    append(v.evidence, "below the floor of " + num(th.warning));
  }
  // Overflows of a listener that is not accepting at all are the connection limit's
  // (MaxConnectionsNear), whatever its backlog.
  const std::string overflowed =
      accepting ? overflowed_listeners(in, in.target->listeners, th.window).text : std::string();
  const bool host_overflowing = at(in.windows.host(in.observation.netns), Series::kListenOverflows)
                                    .increase(o.now, th.window) > 0;
  if (!overflowed.empty() && effective < th.critical && host_overflowing) {
    v.level = Level::kCritical;
    v.threshold = th.critical;
    append(v.evidence,
           "its listener overflowed with a backlog under " + num(th.critical) + ": " + overflowed);
  }
  return v;
}

std::optional<Verdict> check_slow_clients(const RuleInput& in) {
  const Held h = held(in);
  if (!h.known) return std::nullopt;
  Verdict v = graded_verdict(h.blocked, in);
  std::string where;
  for (const ListenerSample* l : in.target->listeners) {
    where += (where.empty() ? "" : ", ") + listener_name(*l);  // a list of names, not clauses
  }
  v.evidence = fmt::format("{} to {} hold unread reply bytes above the send-queue threshold",
                           plural(h.blocked, "connection"), where);
  return v;
}

std::optional<Verdict> check_memory_full(const RuleInput& in) {
  const MemcachedSample& m = memcached(in);
  if (!m.up || !m.stats.bytes || !m.stats.limit_maxbytes || *m.stats.limit_maxbytes <= 0) {
    return std::nullopt;
  }
  const AlertThreshold& th = in.threshold;
  const double evicted =
      at(in.windows.target(m.target), Series::kEvictions).increase(in.observation.now, th.window);
  const double used = static_cast<double>(*m.stats.bytes);
  const double limit = static_cast<double>(*m.stats.limit_maxbytes);
  Verdict v = graded_verdict(used / limit, in);
  if (evicted <= 0) v.level = Level::kOk;
  v.threshold = crossed_threshold(v.level, th);
  v.evidence = fmt::format("{} of {} bytes used ({}); {} evicted in the last {}", num(used),
                           num(limit), pct(*v.value), plural(evicted, "item"), dur(th.window));
  return v;
}

// ---------------------------------------------------------------------------------------------
// The table.

constexpr AlertThreshold levels(double warning, double critical, double clear, Duration for_,
                                Duration window) {
  AlertThreshold t;
  t.warning = warning;
  t.critical = critical;
  t.clear = clear;
  t.for_ = for_;
  t.window = window;
  return t;
}

constexpr std::array<ThresholdKey, 2> kSprawlKeys{{
    {"connections_warning", &AlertThreshold::connections_warning, 1},
    {"connections_critical", &AlertThreshold::connections_critical, 1},
}};
constexpr std::array<ThresholdKey, 2> kMaxConnectionsKeys{{
    {"time_left_warning", &AlertThreshold::time_left_warning, 86400},
    {"time_left_critical", &AlertThreshold::time_left_critical, 86400},
}};

constexpr std::array<ThresholdKey, 1> kCpuKeys{{
    {"steal_warning", &AlertThreshold::steal_warning, 1},
}};
constexpr std::array<ThresholdKey, 6> kNetworkKeys{{
    {"retransmit_warning", &AlertThreshold::retransmit_warning, 1},
    {"retransmit_critical", &AlertThreshold::retransmit_critical, 1},
    {"softnet_drops_warning", &AlertThreshold::softnet_drops_warning, 1e12},
    {"softnet_drops_critical", &AlertThreshold::softnet_drops_critical, 1e12},
    {"rtt_warning", &AlertThreshold::rtt_warning, 3600},
    {"rtt_critical", &AlertThreshold::rtt_critical, 3600},
}};

constexpr AlertThreshold cpu_levels() {
  // The busiest worker thread's CPU seconds per second; steal share of the host's CPU time.
  AlertThreshold t = levels(0.8, 0.95, 0.7, seconds(30), seconds(60));
  t.steal_warning = 0.1;
  return t;
}

constexpr AlertThreshold network_levels() {
  // Utilisation of the link; retransmitted over sent segments; softnet drops in the window; the
  // probe's TCP handshake in seconds.
  AlertThreshold t = levels(0.8, 0.95, 0.7, seconds(30), seconds(60));
  t.retransmit_warning = 0.01;
  t.retransmit_critical = 0.05;
  t.softnet_drops_warning = 1;
  t.softnet_drops_critical = 100;
  t.rtt_warning = 0.01;
  t.rtt_critical = 0.1;
  return t;
}

constexpr AlertThreshold sprawl_levels() {
  // New connections per second over 10 s; plus connections held, as a share of the limit, while
  // they keep rising.
  AlertThreshold t = levels(100, 470, 80, seconds(30), seconds(10));
  t.connections_warning = 0.25;
  t.connections_critical = 0.5;
  return t;
}

constexpr AlertThreshold max_connections_levels() {
  // Connections over the effective limit (-c less what memcached holds itself), as
  // memcached-mixin; and seconds left before rising connections reach it.
  AlertThreshold t = levels(0.8, 0.95, 0.75, seconds(5), seconds(60));
  t.time_left_warning = 300;
  t.time_left_critical = 60;
  return t;
}

constexpr std::array<Rule, kAlertCount> kRules{{
    {Alert::kMemcachedDown,
     "MemcachedDown",
     "memcached is not answering",
     "Neither the daemon's persistent stats connection nor a fresh connection gets an answer "
     "from memcached, and nothing shows it alive at its connection limit.",
     "Critical when `stats` fails on the persistent connection and the fresh-connection probe "
     "fails too (or is off). A memcached that answers \"ERROR Too many open connections\" or "
     "whose listener is open with a max queue of 0 is alive: that is MaxConnectionsNear.",
     "Fires after `for` (5 s), so one lost answer on a busy host does not page.",
     "`systemctl status memcached`, `ss -ltnp` for its listener, and memcached's log.",
     "Check that memcached runs and listens on the configured address (systemctl status "
     "memcached, ss -ltnp) and read its log for why it stopped.",
     "1 when down, 0 when not",
     Subject::kTarget,
     false,
     levels(1, 1, 1, seconds(5), seconds(60)),
     {},
     check_memcached_down},
    {Alert::kListenQueueOverflow,
     "ListenQueueOverflow",
     "symptom: the kernel drops new connections because a listen queue is full",
     "The kernel is dropping handshakes because an accept queue was full: clients see connect "
     "timeouts and retries.",
     "The increase of TcpExt ListenOverflows over the window (a count): warning from 1, critical "
     "from 60 (one a second on average). Critical only when a watched memcached listener "
     "overflowed (its own drop counter rose, or it was seen full or not accepting), including "
     "one that closed within the window (memcached stopped, or restarted on other ports) and "
     "one first watched within it whose drops since it opened fit in the window's. When each of "
     "those listeners counts its own drops, their sum in the window is the count graded, so "
     "another service overflowing beside memcached does not make it critical, unless one of "
     "them may have dropped some unseen (it closed, or was opened anew on the same address, "
     "while the host dropped). Overflows "
     "elsewhere on the host stay a warning that says so, or that they may be memcached's when "
     "one of its listeners was not watched for the whole window. A listener at its max queue "
     "now is a warning.",
     "`for` is 0: an overflow has already dropped connections. Fires at once when memcached's "
     "listener overflowed.",
     "`ss -ltn 'sport = :11211'` (Recv-Q against Send-Q), then the cause alerts firing with it.",
     "Look at the cause alerts firing with it: the queue fills when memcached accepts too slowly "
     "(connection limit, CPU) or clients connect too fast (no pooling). A larger "
     "net.core.somaxconn and memcached -b absorb bursts.",
     "listen overflows in the window (memcached's own drops when they are counted and fewer)",
     Subject::kHost,
     false,
     levels(1, 60, 1, seconds(0), seconds(60)),
     {},
     check_listen_queue_overflow},
    {Alert::kAcceptQueueFilling,
     "AcceptQueueFilling",
     "symptom: new connections wait in memcached's accept queue",
     "Connections the kernel completed wait for memcached to accept them: it accepts more slowly "
     "than clients connect.",
     "The peak accept-queue length over its max on the target's listeners (a ratio), sampled "
     "over peak_window (every sample_interval while a queue is non-empty or connections move, "
     "else once a run): warning from 0.5, critical from 0.8, clears below 0.4.",
     "Fires after `for` (5 s); at once when the queue was full (peak at its max) at the critical "
     "level, because handshakes are being dropped.",
     "`ss -ltn` for Recv-Q against Send-Q; MaxConnectionsNear, MemcachedCpuSaturated and "
     "ConnectionSprawl for why memcached is slow to accept.",
     "memcached is not accepting as fast as clients connect: see MaxConnectionsNear, "
     "MemcachedCpuSaturated and ConnectionSprawl for why; raise net.core.somaxconn and -b if "
     "the peaks are short bursts.",
     "peak queue length / max",
     Subject::kTarget,
     false,
     levels(0.5, 0.8, 0.4, seconds(5), seconds(60)),
     {},
     check_accept_queue_filling},
    {Alert::kProbeSlow,
     "ProbeSlow",
     "symptom: a fresh connection to memcached waits to be served",
     "A new connection, as an application opens one, waits to be served: what a client of this "
     "memcached experiences now.",
     "The connect-to-reply time of the last fresh-connection probe in seconds: warning from 0.1, "
     "critical from 1, clears below 0.05. A probe that fails while the stats connection answers "
     "is critical.",
     "Fires after `for` (10 s): one slow probe on a busy host does not page.",
     "The probe's error in the evidence; `ss -ltn` for the accept queue.",
     "A fresh connection stands in the accept queue behind the others: find the cause among the "
     "other alerts (connection limit, CPU, sprawl, a small backlog).",
     "seconds",
     Subject::kTarget,
     false,
     levels(0.1, 1.0, 0.05, seconds(10), seconds(60)),
     {},
     check_probe_slow},
    {Alert::kConnectionSprawl, "ConnectionSprawl",
     "cause 1: clients open connections instead of pooling them",
     "Clients open new connections for their requests instead of reusing a pool, or hold ever "
     "more of them: memcached spends its connection slots and accept queue on them.",
     "New connections per second over the window (memcached total_connections): warning from 100, "
     "critical from 470. Also connections held, while they keep rising (3 samples in a row, by "
     "at least 10 or 5% of the limit): warning from connections_warning (0.25) of the effective "
     "limit, critical from connections_critical (0.5). When the connection walk shows the "
     "connections spread over more than 5 clients with the 3 largest holding under half, it "
     "stays a warning (more clients, not a leak). The evidence names the clients holding the "
     "most.",
     "Fires at once when a client address would use up its 28232 ephemeral ports (each held 60 s "
     "in TIME_WAIT) within `for` at the measured rate per client address, or when rising "
     "connections from few clients would reach the limit within `for`; otherwise after `for` "
     "(30 s).",
     "The clients named in the evidence: `ss -tn state established '( sport = :11211 )'` "
     "counted per peer address, and the connection handling of those applications.",
     "Pool connections in the clients: create the memcached client once per process and reuse "
     "it rather than connecting per request, with a bounded pool. Start with the clients named "
     "in the evidence.",
     "new connections per second, or the share of the limit held", Subject::kTarget, false,
     sprawl_levels(), kSprawlKeys, check_connection_sprawl},
    {Alert::kMaxConnectionsNear, "MaxConnectionsNear",
     "cause 2: memcached's connection limit (-c) is nearly used up",
     "memcached serves a bounded number of connections (-c less the descriptors it holds "
     "itself); past it, new clients are refused or wait in the kernel until they time out.",
     "Connections over the effective limit (-c less the descriptors memcached holds itself: 6, "
     "4 per worker thread, 1 per listener, and 1 for refusals with maxconns_fast; a ratio): "
     "warning from 0.8, critical from 0.95, clears below 0.75. Also the time left before rising "
     "connections reach the limit: warning within time_left_warning (300 s), critical within "
     "time_left_critical (60 s). Critical whatever the ratio when memcached rejects connections "
     "(rejected_connections rising), stops accepting (listen_disabled_num rising, accepting_conns "
     "0, its listener's max queue 0) or answers \"ERROR Too many open connections\"; a counter "
     "that alone says so while every probe in the window was served at a low usage stays a "
     "warning and says it contradicts what the daemon saw.",
     "Fires after `for` (5 s); at once when the limit is being hit, or when rising connections "
     "reach it within `for`.",
     "`echo stats | nc HOST 11211 | grep -E 'curr_conn|max_conn|rejected|listen_disabled'`, and "
     "ConnectionSprawl for who holds the connections.",
     "Raise memcached's -c (e.g. -c 4096 in its ExecStart or /etc/memcached.conf) together with "
     "its open-files limit (LimitNOFILE), then restart it. If connections keep growing, look for "
     "connection sprawl.",
     "connections / effective limit", Subject::kTarget, false, max_connections_levels(),
     kMaxConnectionsKeys, check_max_connections_near},
    {Alert::kMemcachedCpuSaturated, "MemcachedCpuSaturated",
     "cause 3: memcached's worker threads are out of CPU",
     "memcached's worker threads are busy all the time: requests and new connections wait for "
     "CPU. memcached serves each connection on one thread, so one heavy client can saturate one "
     "thread while the others idle.",
     "The CPU seconds per second of the busiest worker thread (mc-worker, from "
     "/proc/<pid>/task/<tid>/schedstat) where the daemon sees memcached's process: warning from "
     "0.8, critical from 0.95, clears below 0.7. For a remote memcached, one in another pid "
     "namespace that is neither discovered nor its target's netns_pid, or one that does not "
     "name its threads, the average per worker thread of "
     "rusage_user + rusage_system instead, and the evidence says so. The evidence gives the "
     "busiest and the average, and the host's steal and iowait over the window; from "
     "steal_warning (0.1) of steal the fix blames the VM.",
     "Fires after `for` (30 s): CPU saturation is judged over a sustained span.",
     "`top -H -p $(pidof memcached)` for the busy threads; the clients' request rate; `vmstat 1` "
     "for steal (st).",
     "Give memcached more CPU: more worker threads (-t) on more or faster cores, fewer round "
     "trips (multi-get), or shard the cache over more instances. When one thread is saturated "
     "and the others are not, more threads do not help: spread the heavy client over more "
     "connections, or shard its hot keys.",
     "CPU seconds per second of the busiest worker thread (else per worker thread on average)",
     Subject::kTarget, false, cpu_levels(), kCpuKeys, check_cpu_saturated},
    {Alert::kNetworkSaturated, "NetworkSaturated",
     "cause 4: the network interface is near its capacity, or loses packets",
     "The NIC carrying memcached's traffic is near its capacity, past the cloud's allowance, or "
     "packets are lost or delayed: handshakes and replies are delayed or lost.",
     "Utilisation of the link speed (collectors.netdev.speeds where configured, else the "
     "driver's), the higher of receive and transmit (a ratio): warning from 0.8, critical from "
     "0.95, clears below 0.7. A NIC without a known speed has no utilisation (value null, the "
     "reason in the evidence), never 0. Packets the NIC dropped in the window make it at least a "
     "warning; a cloud allowance counter rising (AWS ENA's bw_in_, bw_out_, pps_, conntrack_ or "
     "linklocal_allowance_exceeded) makes it "
     "critical whatever the utilisation, naming the limit. Host-wide, on every watched NIC: TCP "
     "retransmissions over segments sent from retransmit_warning (0.01) / retransmit_critical "
     "(0.05) when at least 1000 were sent, packets the CPUs' receive backlogs dropped from "
     "softnet_drops_warning (1) / softnet_drops_critical (100) in the window, and the TCP "
     "handshake time of the fresh-connection probes from rtt_warning (0.01 s) / rtt_critical "
     "(0.1 s).",
     "Fires after `for` (30 s).",
     "`ip -s link show DEVICE`, `sar -n DEV 1`, the NIC's driver counters (`ethtool -S DEVICE`: "
     "allowance_exceeded on ENA), `nstat -az TcpRetransSegs TcpOutSegs`, "
     "/proc/net/softnet_stat.",
     "Move memcached traffic to a dedicated or faster NIC or network, or send less across it "
     "(smaller values, only the data needed); on a cloud instance past its allowance, a larger "
     "instance or fewer packets.",
     "utilisation of link speed", Subject::kDevice, false, network_levels(), kNetworkKeys,
     check_network_saturated},
    {Alert::kSomaxconnTooLow,
     "SomaxconnTooLow",
     "cause 5: the kernel's listen queue limit is too small for memcached",
     "The kernel caps memcached's accept queue below what it asked for, so bursts of connections "
     "overflow sooner than they need to.",
     "Floors on the effective backlog (what the kernel applied: the listener's max queue, else "
     "min(somaxconn, -b)): warning when it is below memcached's -b (somaxconn is lower, or was "
     "when memcached started listening) or below `warning` (128); critical when it is below "
     "`critical` (1024, memcached's default -b) while "
     "memcached's own listener overflows.",
     "`for` is 0: a configuration, not a spike.",
     "`sysctl net.core.somaxconn`, memcached's -b (`stats settings` tcp_backlog), `ss -ltn` "
     "Send-Q.",
     "Raise net.core.somaxconn (sysctl -w net.core.somaxconn=4096, and persist it in "
     "/etc/sysctl.d/) to at least memcached's -b, raise -b if bursts still overflow, then "
     "restart memcached: a listener keeps the backlog it was created with.",
     "effective listen backlog",
     Subject::kTarget,
     true,
     levels(128, 1024, 128, seconds(0), seconds(60)),
     {},
     check_somaxconn_too_low},
    {Alert::kSlowClients,
     "SlowClients",
     "cause 6: clients do not read the replies they asked for",
     "Connections whose replies sit unread in the kernel's send queue: the clients stalled, and "
     "memcached holds a connection and buffers for each.",
     "Connections to the target's listeners whose send queue holds more than "
     "send_queue_threshold_bytes (a count, from the connection walk): warning from 1, critical "
     "from 10.",
     "Fires after `for` (30 s): a reply being read is in the queue for a moment.",
     "`ss -tnm '( sport = :11211 )'` for Send-Q per client, then those client hosts' CPU and "
     "memory.",
     "Fix the slow consumers: application threads that block after fetching, or client hosts "
     "short of CPU or memory. memcached holds a connection and its buffers for each stalled "
     "client.",
     "connections with a blocked send queue",
     Subject::kTarget,
     false,
     levels(1, 10, 1, seconds(30), seconds(60)),
     {},
     check_slow_clients},
    {Alert::kMemcachedMemoryFull,
     "MemcachedMemoryFull",
     "out of memory next: the cache is full and evicting",
     "memcached's memory is full and it evicts items to store new ones: hit rates fall, and the "
     "\"out of memory\" errors come next.",
     "Bytes stored over the memory limit -m (a ratio) while items are evicted in the window: "
     "warning from 0.8, critical from 0.9, clears below 0.75. `bytes` counts items, not the slab "
     "chunks holding them, so a full cache reads 84% to 93%.",
     "Fires after `for` (60 s): evicting is normal for a cache, only lasting pressure pages.",
     "`stats` bytes, limit_maxbytes and evictions; `stats slabs` for the classes evicting.",
     "Raise memcached's memory limit (-m) or add instances; check item sizes and expiry times.",
     "bytes / limit",
     Subject::kTarget,
     false,
     levels(0.8, 0.9, 0.75, seconds(60), seconds(300)),
     {},
     check_memory_full},
}};

// The table is in catalogue order; a rule out of place does not compile.
constexpr bool in_order() {
  for (std::size_t i = 0; i < kAlertCount; ++i) {
    if (static_cast<std::size_t>(kRules[i].alert) != i) return false;
  }
  return true;
}
static_assert(in_order(), "kRules must list every alert in the order of enum Alert");

}  // namespace

const std::array<Rule, kAlertCount>& rules() { return kRules; }

const Rule& rule(Alert alert) { return kRules[static_cast<std::size_t>(alert)]; }

std::optional<Alert> find_alert(std::string_view name) {
  for (const Rule& r : kRules) {
    if (r.name == name) return r.alert;
  }
  return std::nullopt;
}

namespace {

// Whether an alert's value, and so its levels, is a ratio from 0 to 1.
bool ratio_levels(Alert alert) {
  switch (alert) {
    case Alert::kAcceptQueueFilling:
    case Alert::kMaxConnectionsNear:
    case Alert::kMemcachedCpuSaturated:
    case Alert::kNetworkSaturated:
    case Alert::kMemcachedMemoryFull:
      return true;
    default:
      return false;
  }
}

}  // namespace

AlertSchemas alert_schemas() {
  static const std::vector<AlertSchema> kSchemas = [] {
    std::vector<AlertSchema> out;
    out.reserve(kRules.size());
    for (const Rule& r : kRules) {
      out.push_back(
          AlertSchema{r.name, r.defaults, r.lower_is_worse, r.extra_keys, ratio_levels(r.alert)});
    }
    return out;
  }();
  return kSchemas;
}

Config default_config() { return Config::defaults(alert_schemas()); }

}  // namespace mcb
