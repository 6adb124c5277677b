#include "collectors/memcached.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

#include <spdlog/spdlog.h>

#include "common/families.hpp"
#include "common/text.hpp"

namespace mcb {
namespace {

using Getter = std::function<std::optional<double>(const MemcachedSample&)>;

template <class T>
Getter stat(std::optional<T> MemcachedStats::*field, double scale = 1) {
  return [field, scale](const MemcachedSample& s) -> std::optional<double> {
    const auto& v = s.stats.*field;
    if (!v) return std::nullopt;
    return static_cast<double>(*v) * scale;
  };
}

Labels target_label(const MemcachedSample& s) { return {{"target", s.target}}; }

std::string describe(const TargetConfig& t) {
  const std::string address = t.address.to_string();
  return t.name == address ? t.name : t.name + " (" + address + ")";
}

}  // namespace

std::optional<double> max_connections(const MemcachedSample& s) {
  if (!s.up) return std::nullopt;
  if (s.stats.max_connections) return static_cast<double>(*s.stats.max_connections);
  if (s.settings && s.settings->maxconns) return static_cast<double>(*s.settings->maxconns);
  return std::nullopt;
}

std::optional<double> connection_limit(const MemcachedSample& s) {
  auto limit = max_connections(s);
  if (limit && s.stats.reserved_fds && *s.stats.reserved_fds < *limit) {
    *limit -= static_cast<double>(*s.stats.reserved_fds);
  }
  return limit;
}

std::optional<double> worker_threads(const MemcachedSample& s) {
  if (!s.up) return std::nullopt;
  if (s.stats.threads) return static_cast<double>(*s.stats.threads);
  if (s.settings && s.settings->num_threads) return static_cast<double>(*s.settings->num_threads);
  return std::nullopt;
}

std::optional<double> listen_backlog(const MemcachedSample& s) {
  if (!s.up || !s.settings || !s.settings->tcp_backlog) return std::nullopt;
  return static_cast<double>(*s.settings->tcp_backlog);
}

std::optional<bool> maxconns_fast(const MemcachedSample& s) {
  if (!s.up || !s.settings) return std::nullopt;
  return s.settings->maxconns_fast;
}

void ProbeHistogram::observe(double seconds) {
  for (std::size_t i = 0; i < kProbeLatencyBuckets.size(); ++i) {
    if (seconds <= kProbeLatencyBuckets[i]) ++cumulative[i];
  }
  ++count;
  sum += seconds;
}

std::optional<double> cpu_utilization(const MemcachedStats& before, SteadyClock::time_point t0,
                                      const MemcachedStats& after, SteadyClock::time_point t1,
                                      std::optional<double> threads) {
  if (!before.rusage_user || !before.rusage_system || !after.rusage_user || !after.rusage_system ||
      !threads || !(*threads > 0) || before.pid != after.pid) {
    return std::nullopt;
  }
  const double seconds = std::chrono::duration<double>(t1 - t0).count();
  const double cpu =
      (*after.rusage_user + *after.rusage_system) - (*before.rusage_user + *before.rusage_system);
  // Rusages too large for a double (no memcached has them) make the sums infinite, and the
  // difference NaN: no rate rather than one that is not a number.
  if (seconds <= 0 || !(cpu >= 0)) return std::nullopt;
  const double rate = cpu / seconds / *threads;
  if (!std::isfinite(rate)) return std::nullopt;
  return rate;
}

Families memcached_families(const std::vector<MemcachedSample>& samples) {
  Families out;
  // One family, one series per target that is up and reported the value.
  auto put = [&](FamilyBuilder f, const Getter& get) {
    for (const MemcachedSample& s : samples) {
      if (!s.up) continue;
      if (auto v = get(s)) f.add(*v, target_label(s));
    }
    std::move(f).into(out);
  };

  auto up = gauge("memcached_up",
                  "1 if memcached answered `stats` on the daemon's persistent connection in the "
                  "last run, 0 if it did not.");
  auto version = gauge("memcached_version", "The version memcached reports; the value is 1.");
  for (const MemcachedSample& s : samples) {
    up.add(s.up ? 1 : 0, target_label(s));
    if (s.up && !s.stats.version.empty()) {
      version.add(1, {{"target", s.target}, {"version", s.stats.version}});
    }
  }
  std::move(up).into(out);
  std::move(version).into(out);

  using S = MemcachedStats;
  put(gauge("memcached_uptime_seconds", "Seconds since memcached started (uptime)."),
      stat(&S::uptime));
  put(gauge("memcached_current_connections", "Open connections (curr_connections)."),
      stat(&S::curr_connections));
  put(gauge("memcached_max_connections",
            "Connections memcached allows, its -c (max_connections, else maxconns of "
            "stats settings)."),
      [](const MemcachedSample& s) { return max_connections(s); });
  put(counter("memcached_connections_total",
              "Connections memcached accepted since it started (total_connections)."),
      stat(&S::total_connections));
  put(counter("memcached_connections_rejected_total",
              "Connections accepted past the -c limit, told ERROR and closed, in maxconns_fast "
              "mode (rejected_connections)."),
      stat(&S::rejected_connections));
  put(counter("memcached_connections_listener_disabled_total",
              "Times memcached reached its connection limit and stopped accepting "
              "(listen_disabled_num)."),
      stat(&S::listen_disabled_num));
  put(counter("memcached_connections_listener_disabled_seconds_total",
              "Seconds memcached spent not accepting connections because it was at its "
              "connection limit (time_in_listen_disabled_us)."),
      stat(&S::time_in_listen_disabled_us, 1e-6));
  put(counter("memcached_connections_yielded_total",
              "Times a connection yielded after -R requests in one event (conn_yields)."),
      stat(&S::conn_yields));
  put(gauge("memcached_accepting_connections",
            "1 if memcached is accepting new connections, 0 while its listener is disabled "
            "(accepting_conns)."),
      stat(&S::accepting_conns));
  put(gauge("memcached_connection_structures",
            "Connection structures memcached has allocated (connection_structures)."),
      stat(&S::connection_structures));
  put(gauge("memcached_reserved_fds",
            "File descriptors memcached keeps for its own use out of -c (reserved_fds)."),
      stat(&S::reserved_fds));
  put(gauge("memcached_threads",
            "Worker threads, memcached's -t (threads, else num_threads of stats settings)."),
      [](const MemcachedSample& s) { return worker_threads(s); });
  put(counter("memcached_process_user_cpu_seconds_total",
              "CPU seconds memcached spent in user mode (rusage_user)."),
      stat(&S::rusage_user));
  put(counter("memcached_process_system_cpu_seconds_total",
              "CPU seconds memcached spent in the kernel (rusage_system)."),
      stat(&S::rusage_system));
  put(counter("memcached_read_bytes_total", "Bytes memcached read from the network (bytes_read)."),
      stat(&S::bytes_read));
  put(counter("memcached_written_bytes_total",
              "Bytes memcached sent to the network (bytes_written)."),
      stat(&S::bytes_written));
  put(gauge("memcached_current_bytes", "Bytes used to store items (bytes)."), stat(&S::bytes));
  put(gauge("memcached_limit_bytes",
            "Bytes memcached may use to store items, its -m "
            "(limit_maxbytes)."),
      stat(&S::limit_maxbytes));
  put(counter("memcached_items_evicted_total",
              "Valid items removed to free memory for new ones (evictions)."),
      stat(&S::evictions));
  put(gauge("memcached_listen_backlog",
            "The listen backlog memcached asks for, its -b (tcp_backlog of stats settings); the "
            "kernel cuts it to net.core.somaxconn."),
      [](const MemcachedSample& s) { return listen_backlog(s); });
  put(gauge("memcached_maxconns_fast",
            "1 if memcached rejects connections past -c at once (maxconns_fast), 0 if it "
            "disables its listener instead (-o no_maxconns_fast)."),
      [](const MemcachedSample& s) -> std::optional<double> {
        const auto fast = maxconns_fast(s);
        if (!fast) return std::nullopt;
        return *fast ? 1 : 0;
      });
  put(gauge("mcbacklog_memcached_cpu_utilization_ratio",
            "CPU memcached used (user + system) over the last interval, per worker thread: "
            "near 1 means its workers are saturated."),
      [](const MemcachedSample& s) { return s.cpu_utilization_ratio; });

  // The probe, whether or not stats answered.
  auto success = gauge("mcbacklog_probe_success",
                       "1 if the last fresh-connection probe got memcached's version, 0 if not.");
  auto duration = gauge("mcbacklog_probe_duration_seconds",
                        "Connect-to-reply time of the last probe, or time to its failure.");
  auto connect = gauge("mcbacklog_probe_connect_duration_seconds",
                       "TCP handshake time of the last probe, which the kernels answer without "
                       "memcached: a round-trip time of the network. TCP targets only.");
  auto failures = counter("mcbacklog_probe_failures_total", "Probes that failed.");
  prometheus::MetricFamily latency;
  latency.name = "mcbacklog_probe_latency_seconds";
  latency.help = "Connect-to-reply time of every successful fresh-connection probe.";
  latency.type = prometheus::MetricType::Histogram;
  for (const MemcachedSample& s : samples) {
    if (!s.probe && s.probe_latency.count == 0 && s.probe_failures == 0) continue;
    if (s.probe) {
      success.add(s.probe->success ? 1 : 0, target_label(s));
      duration.add(s.probe->duration_seconds, target_label(s));
      if (s.probe->connect_seconds) connect.add(*s.probe->connect_seconds, target_label(s));
    }
    failures.add(static_cast<double>(s.probe_failures), target_label(s));
    prometheus::ClientMetric m;
    m.label = target_label(s);
    m.histogram.sample_count = s.probe_latency.count;
    m.histogram.sample_sum = s.probe_latency.sum;
    for (std::size_t i = 0; i < kProbeLatencyBuckets.size(); ++i) {
      m.histogram.bucket.push_back({s.probe_latency.cumulative[i], kProbeLatencyBuckets[i]});
    }
    latency.metric.push_back(std::move(m));
  }
  std::move(success).into(out);
  std::move(duration).into(out);
  std::move(connect).into(out);
  std::move(failures).into(out);
  if (!latency.metric.empty()) out.push_back(std::move(latency));
  return out;
}

MemcachedTiming MemcachedTiming::for_interval(Duration interval) {
  MemcachedTiming t;
  t.run_timeout = std::min<Duration>(interval / 2, std::chrono::seconds(5));
  t.connection.backoff_base =
      std::clamp<Duration>(interval, std::chrono::milliseconds(100), std::chrono::seconds(5));
  return t;
}

MemcachedCollector::MemcachedCollector(boost::asio::io_context& io,
                                       std::vector<TargetConfig> targets, MemcachedTiming timing)
    : io_(io), timing_(timing) {
  for (TargetConfig& c : targets) {
    Target t;
    if (c.name.empty()) c.name = c.address.to_string();
    t.connection = std::make_shared<StatsConnection>(io, c.address, timing_.connection);
    t.config = std::move(c);
    targets_.push_back(std::move(t));
  }
}

void MemcachedCollector::collect(Done done) {
  if (!probes_started_) start_probes();
  done_ = std::move(done);
  ++run_;
  pending_ = targets_.size();
  const auto deadline = SteadyClock::now() + timing_.run_timeout;
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    targets_[i].reply.reset();
    targets_[i].connection->query(deadline,
                                  [weak = weak_from_this(), i, run = run_](StatsReply reply) {
                                    if (auto self = weak.lock())
                                      self->on_reply(i, run, std::move(reply));
                                  });
  }
  if (targets_.empty()) end_run();
}

void MemcachedCollector::on_reply(std::size_t index, std::uint64_t run, StatsReply reply) {
  if (stopped_ || run != run_ || !done_) return;
  targets_[index].reply = std::move(reply);
  if (--pending_ == 0) end_run();
}

void MemcachedCollector::end_run() {
  samples_.clear();
  std::string down;
  for (Target& t : targets_) {
    samples_.push_back(sample_of(t));
    if (!samples_.back().up) down += (down.empty() ? "" : ", ") + t.config.name;
  }
  publish(memcached_families(samples_));
  Done done = std::move(done_);
  done_ = nullptr;
  if (down.empty()) {
    done(ok_status());
  } else {
    done(fail("stats failed on " + down));
  }
}

MemcachedSample MemcachedCollector::sample_of(Target& t) {
  MemcachedSample s;
  s.target = t.config.name;
  s.address = t.config.address.to_string();
  s.endpoint = t.config.address;
  s.probe_enabled = t.config.probe_interval.count() > 0;
  s.time = SteadyClock::now();
  StatsReply reply = t.reply ? std::move(*t.reply) : StatsReply{};
  if (!t.reply) reply.failure = FailureKind::kNoReply;
  if (!reply.stats) {
    s.error = reply.stats.error().message;
    s.failure = reply.failure;
  } else {
    s.up = true;
    s.time = reply.received;
    s.stats = memcached_stats(*reply.stats, s.unreadable);
    if (reply.settings) {
      s.settings = memcached_settings(*reply.settings, s.unreadable);
    } else {
      s.settings_error = reply.settings.error().message;
    }
  }

  const auto now = SteadyClock::now();
  if (!s.up) {
    if (t.stats_log.failed(s.error, now)) {
      spdlog::warn("memcached target {} is down: {}{}{}", describe(t.config), s.error,
                   s.failure == FailureKind::kNotTextProtocol ? "; " : "",
                   s.failure == FailureKind::kNotTextProtocol ? failure_kind_causes(s.failure)
                                                              : std::string_view());
    }
  } else {
    if (t.stats_log.succeeded()) spdlog::info("memcached target {} is up", describe(t.config));
    if (t.previous) {
      s.cpu_utilization_ratio =
          cpu_utilization(*t.previous, t.previous_time, s.stats, s.time, worker_threads(s));
    }
    t.previous = s.stats;
    t.previous_time = s.time;
    if (s.settings) {
      t.settings_log.succeeded();
    } else if (t.settings_log.failed(s.settings_error, now)) {
      spdlog::warn("memcached target {}: stats settings failed, its series are left out: {}",
                   describe(t.config), s.settings_error);
    }
    log_unreadable(t, s.unreadable, now);
  }

  if (t.probe_timer) {
    s.probe = t.last_probe;
    s.probe_latency = t.probe_latency;
    s.probe_failures = t.probe_failures;
  }
  return s;
}

void MemcachedCollector::log_unreadable(Target& t, const std::vector<UnreadableStat>& unreadable,
                                        SteadyClock::time_point now) {
  if (unreadable.empty()) {
    t.unreadable_log.succeeded();
    return;
  }
  // The names decide when to log again; the values (which a counter changes every run) do not.
  std::string names;
  std::string quoted;
  for (const UnreadableStat& u : unreadable) {
    names += (names.empty() ? "" : " ") + u.command + ":" + u.name;
    quoted += (quoted.empty() ? "" : ", ") + u.name + " " + quote_untrusted(u.value) + " (" +
              u.command + ")";
  }
  if (t.unreadable_log.failed(names, now)) {
    spdlog::warn(
        "memcached target {}: cannot read {}; {} left out, with what derives from {}, the rest "
        "is read",
        describe(t.config), quoted, unreadable.size() == 1 ? "this stat is" : "these stats are",
        unreadable.size() == 1 ? "it" : "them");
  }
}

void MemcachedCollector::start_probes() {
  probes_started_ = true;
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    Target& t = targets_[i];
    if (t.config.probe_interval.count() <= 0) continue;
    t.probe_timer = std::make_unique<boost::asio::steady_timer>(io_);
    t.probe_timer->expires_at(SteadyClock::now());
    schedule_probe(i);
  }
}

void MemcachedCollector::schedule_probe(std::size_t index) {
  targets_[index].probe_timer->async_wait(
      [weak = weak_from_this(), index](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (ec || !self || self->stopped_) return;
        Target& t = self->targets_[index];
        const Duration interval = t.config.probe_interval;
        if (!t.probe) {
          const Duration timeout = std::min(interval, self->timing_.probe_timeout_cap);
          t.probe = Probe::start(self->io_, t.config.address, SteadyClock::now() + timeout,
                                 [weak, index](const ProbeResult& r) {
                                   if (auto s = weak.lock()) s->on_probe(index, r);
                                 });
        }
        // Drift-free, skipping ticks a stalled loop missed.
        const auto now = SteadyClock::now();
        auto next = t.probe_timer->expiry() + interval;
        while (next <= now) next += interval;
        t.probe_timer->expires_at(next);
        self->schedule_probe(index);
      });
}

void MemcachedCollector::on_probe(std::size_t index, const ProbeResult& result) {
  if (stopped_) return;
  Target& t = targets_[index];
  t.probe.reset();
  t.last_probe = result;
  if (result.success) {
    t.probe_latency.observe(result.duration_seconds);
    if (t.probe_log.succeeded()) {
      spdlog::info("probe of memcached target {} succeeds again", describe(t.config));
    }
  } else {
    ++t.probe_failures;
    if (t.probe_log.failed(result.error, result.at)) {
      spdlog::warn("probe of memcached target {} failed: {}", describe(t.config), result.error);
    }
  }
}

void MemcachedCollector::stop() {
  stopped_ = true;
  done_ = nullptr;
  for (Target& t : targets_) {
    t.connection->close();
    if (t.probe_timer) t.probe_timer->cancel();
    if (t.probe) t.probe->cancel();
    t.probe.reset();
  }
}

}  // namespace mcb
