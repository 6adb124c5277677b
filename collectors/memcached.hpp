#pragma once
// The memcached collector: every configured target is read over one persistent connection per
// run (`stats`, then `stats settings`), and probed on its own timer with a fresh connection. It
// exports memcached_exporter's series (with a `target` label) plus mcbacklogd's own, and keeps a
// typed MemcachedSample per target for the evaluator.
//
// A run queries every target at once and ends when all have answered or at the run deadline
// (the next cycle, overdue(), or 5 s when the interval is longer), whichever is first: a target
// that is down, slow, stopped or sends garbage costs its own memcached_up 0 and a rate-limited
// log line, never the schedule. The deadline is no earlier than the next tick so that, when
// every target answers, the loop does not wake for the cancelled deadline timers.
// mcbacklog_collector_success{collector="memcached"} is 1 when `stats` succeeded on every target
// in the run and 0 when it failed on at least one (which ones: memcached_up); probes do not
// affect it.
//
// The probe latency histogram lives in this collector's state, so a reload (which builds new
// collectors) starts it from zero and a target removed on reload leaves /metrics with all its
// series. Loop thread only; not thread-safe.

#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "collectors/collector.hpp"
#include "collectors/failure_log.hpp"
#include "collectors/memcached_client.hpp"
#include "collectors/memcached_protocol.hpp"
#include "config/config.hpp"

namespace mcb {

// Upper bounds of mcbacklog_probe_latency_seconds, 100 µs to 10 s (+Inf is implied).
inline constexpr std::array<double, 16> kProbeLatencyBuckets{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

// Durations of successful probes, as a cumulative histogram.
struct ProbeHistogram {
  std::array<std::uint64_t, kProbeLatencyBuckets.size()> cumulative{};  // count <= each bound
  std::uint64_t count = 0;
  double sum = 0;

  void observe(double seconds);
};

// One target as of the last run.
struct MemcachedSample {
  std::string target;          // the `target` label: the configured name, or the address
  std::string address;         // "host:port", "[v6]:port" or "unix:/path"
  Endpoint endpoint;           // the configured address, parsed
  bool probe_enabled = false;  // the target has a probe_interval
  bool up = false;             // `stats` answered in this run
  std::string error;           // why not up: what was seen
  FailureKind failure = FailureKind::kNone;  // why not up: its kind
  SteadyClock::time_point time;              // when `stats` answered, or when the run gave up
  MemcachedStats stats;                      // meaningful when up
  // `stats settings` as of its last answer (it is asked once a minute, on a new connection and
  // after a restart, not every run); absent when it never answered.
  std::optional<MemcachedSettings> settings;
  std::string settings_error;  // why the last `stats settings` failed, when up
  // Where it listens over TCP by its last `stats settings` answer (memcached_listen_endpoints),
  // kept while it is down: a memcached that stopped answering still listens there. Shared with
  // the collector, which parses it once an answer, not every sample; never null.
  std::shared_ptr<const std::vector<Endpoint>> listen_endpoints =
      std::make_shared<const std::vector<Endpoint>>();
  std::optional<double> cpu_utilization_ratio;  // needs two answers from the same process
  // `stats items` and `stats slabs` as of their last answer: they are asked every
  // slab_stats_interval, not every run. Null until they answered, or when turned off. Shared
  // with the collector, which keeps it until the next answer; never modified.
  std::shared_ptr<const SlabStats> slabs;
  // Stats whose values could not be read, in this run's replies and in the answer `slabs` came
  // from: each is absent from `stats`, `settings` or `slabs`, with what derives from it.
  std::vector<UnreadableStat> unreadable;

  // The fresh-connection probe (all empty when it is disabled).
  std::optional<ProbeResult> probe;  // the last one to finish, if any has
  ProbeHistogram probe_latency;      // successful probes since the collector started
  std::uint64_t probe_failures = 0;  // failed probes since the collector started
};

// Values with a fallback, in one place: /metrics and the alert rules both read them through
// these, so they never disagree. Each is nullopt while the target is down or when memcached
// reports neither source.
// -c: `max_connections` of `stats`, else `maxconns` of `stats settings` (memcached before 1.5.1
// reports only the latter).
std::optional<double> max_connections(const MemcachedSample& s);
// The connections memcached serves before it refuses. memcached counts descriptors, not
// connections: with maxconns_fast (its default) it refuses a connection whose descriptor number is
// -c less one or more; without it, accept() fails once -c descriptors are open (RLIMIT_NOFILE).
// Out of -c go the descriptors it holds itself, which no stat reports: measured on memcached
// 1.6.18, 6 (stdin, stdout, stderr, the main event loop, its pipe) + 4 per worker thread (an event
// loop, an event fd, a pipe) + 1 per listening socket, with one listener counted (-c 20 -t 1
// serves 8 clients, -c 64 -t 4 serves 40, -c 1024 -t 4 serves 1000). `reserved_fds` (5 a thread)
// is not that number. Threads unknown count as memcached's default, 4. nullopt without -c.
struct ConnectionLimit {
  double max_connections = 0;  // -c
  double threads = 0;          // worker threads counted (memcached's, else its default)
  double own = 0;              // descriptors memcached holds itself (estimated, as above)
  double refusal = 0;          // 1 with maxconns_fast: the descriptor it answers the refusal on
  double limit() const { return std::max(1.0, max_connections - own - refusal); }
};
std::optional<ConnectionLimit> connection_limits(const MemcachedSample& s);
// connection_limits(s)->limit().
std::optional<double> connection_limit(const MemcachedSample& s);
// Worker threads: `threads` of `stats`, else `num_threads` of `stats settings`.
std::optional<double> worker_threads(const MemcachedSample& s);
// The listen backlog memcached asks for, -b: `tcp_backlog` of `stats settings`.
std::optional<double> listen_backlog(const MemcachedSample& s);
// Whether memcached answers past-limit clients at once (maxconns_fast) rather than disabling its
// listener (-o no_maxconns_fast), from `stats settings`.
std::optional<bool> maxconns_fast(const MemcachedSample& s);

// Pure. CPU seconds (user + system) memcached used per second between two answers, divided by
// its worker threads (`threads`: worker_threads() of the later sample). Absent without both
// rusages and threads, across a restart (another pid or less CPU than before), when no time
// passed, or when the rate is not a finite number.
std::optional<double> cpu_utilization(const MemcachedStats& before, SteadyClock::time_point t0,
                                      const MemcachedStats& after, SteadyClock::time_point t1,
                                      std::optional<double> threads);

// Pure. The families of all targets; a stat a target did not report has no series. They are
// memcached_exporter's families (names, types and label names, plus the `target` label), and
// mcbacklogd's own under mcbacklog_. The union of the two functions below.
Families memcached_families(const std::vector<MemcachedSample>& samples);
// Pure. The families read from `stats items` and `stats slabs` (memcached_slab_*,
// memcached_malloced_bytes): a series per slab class, which change only when those are asked.
Families memcached_slab_families(const std::vector<MemcachedSample>& samples);
// Pure. All the others.
Families memcached_target_families(const std::vector<MemcachedSample>& samples);

// How often `stats settings` is asked on a connection that stays open to a memcached that did not
// restart: the settings change only with a restart (or a rare `lru_crawler` or `-o` command).
inline constexpr Duration kSettingsInterval = std::chrono::minutes(1);

// Deadlines and backoff of a collector, derived from the sampling interval.
struct MemcachedTiming {
  Duration run_timeout;  // a run ends by then, unless overdue() ends it first
  Duration probe_timeout_cap = std::chrono::seconds(10);  // a probe's deadline: min(interval, cap)
  StatsConnection::Options connection;

  static MemcachedTiming for_interval(Duration interval);
};

class MemcachedCollector final : public Collector,
                                 public std::enable_shared_from_this<MemcachedCollector> {
 public:
  MemcachedCollector(boost::asio::io_context& io, std::vector<TargetConfig> targets,
                     MemcachedTiming timing);
  ~MemcachedCollector() override { stop(); }
  MemcachedCollector(const MemcachedCollector&) = delete;
  MemcachedCollector& operator=(const MemcachedCollector&) = delete;

  std::string_view name() const override { return "memcached"; }
  void collect(Done done) override;
  void stop() override;
  void overdue() override;
  // The families of the last run, built now (when /metrics is rendered, not every run); none
  // before the first run.
  std::vector<prometheus::MetricFamily> Collect() const override;

  // One sample per target, in configuration order, as of the last completed run (empty before).
  const std::vector<MemcachedSample>& samples() const { return samples_; }

  // The series of the last run's families whose `target` label is that of the target named
  // `target`, or of the target whose address is `target` ("127.0.0.1:11211"): one memcached's
  // view. Nullopt when no target has that name or address.
  std::optional<Families> target_families(std::string_view target) const;

 private:
  struct Target {
    TargetConfig config;
    std::shared_ptr<StatsConnection> connection;
    std::optional<StatsReply> reply;  // of the run in flight
    // `stats settings` as of its last answer: asked on a new connection, when memcached's pid or
    // uptime says it restarted, and every kSettingsInterval, not every run.
    std::optional<MemcachedSettings> settings;
    std::vector<UnreadableStat> settings_unreadable;                 // of that answer
    std::shared_ptr<const std::vector<Endpoint>> listen_endpoints =  // of that answer
        std::make_shared<const std::vector<Endpoint>>();
    std::string settings_error;                    // why the last ask failed, if it did
    SteadyClock::time_point settings_due;          // when to ask next
    bool settings_asked = false;                   // by the run in flight
    std::shared_ptr<const SlabStats> slabs;        // the last answer to stats items and stats slabs
    std::vector<UnreadableStat> slabs_unreadable;  // of that answer
    SteadyClock::time_point slabs_due;             // when to ask them next
    bool slabs_asked = false;                      // by the run in flight
    std::optional<MemcachedStats> previous;        // the last good answer, for the CPU rate
    SteadyClock::time_point previous_time;
    std::unique_ptr<PeriodicTimer> probe_timer;  // while the probe is enabled
    std::shared_ptr<Probe> probe;                // in flight
    std::optional<ProbeResult> last_probe;
    ProbeHistogram probe_latency;
    std::uint64_t probe_failures = 0;
    FailureLog stats_log;
    FailureLog settings_log{FailureLog::Clock::duration::max()};
    FailureLog unreadable_log{std::chrono::minutes(10)};
    FailureLog slabs_log{FailureLog::Clock::duration::max()};
    FailureLog probe_log;
  };

  void on_reply(std::size_t index, std::uint64_t run, StatsReply reply);
  void end_run();
  MemcachedSample sample_of(Target& t);
  // Reads this run's answer to stats settings, if one came or it was asked, into t.settings.
  static void read_settings(Target& t, StatsReply& reply, SteadyClock::time_point now);
  // Reads this run's answers to stats items and stats slabs, if any came, into t.slabs.
  static void read_slabs(Target& t, StatsReply& reply, SteadyClock::time_point now);
  static void log_unreadable(Target& t, const std::vector<UnreadableStat>& unreadable,
                             SteadyClock::time_point now);
  void start_probes();
  void start_probe(std::size_t index);  // unless one is still out
  void on_probe(std::size_t index, const ProbeResult& result);

  boost::asio::io_context& io_;
  MemcachedTiming timing_;
  std::vector<Target> targets_;
  std::vector<MemcachedSample> samples_;
  // The slab families of the last runs, rebuilt only when a target's slab stats or up changed.
  Families slab_families_;
  std::vector<std::pair<const SlabStats*, bool>> slab_families_of_;
  Done done_;
  std::uint64_t run_ = 0;
  std::size_t pending_ = 0;
  bool probes_started_ = false;
  bool stopped_ = false;
};

}  // namespace mcb
