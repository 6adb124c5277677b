#pragma once
// Windows: the recent history the alert rules need, fed once per evaluation before any rule runs;
// rules only read it.
//
// Each subject (the host, a memcached target, a listener, a NIC) has one SeriesWindow per Series
// it has: a counter's increase and rate over a span, as Prometheus' increase() and rate() see
// them (a drop is a reset and counts from zero, never as a negative or a spike), and a gauge's
// trend (how much it grew, whether it kept rising, its slope). A memcached restart (uptime or pid
// going back) resets that target's counters.
//
// Subjects are kept in a hash map, so feeding costs one lookup per subject per evaluation
// (lookups() counts them); a subject that was not fed for a day is forgotten. Loop thread only;
// not thread-safe.

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "collectors/ethtool.hpp"
#include "config/duration.hpp"

namespace mcb {

struct Observation;

// The values kept over time. Counters unless marked gauge.
enum class Series : std::uint8_t {
  // Host (per network namespace): TcpExt counters of /proc/net/netstat.
  kListenOverflows,
  kListenDrops,
  // A memcached target: its `stats`, and the daemon's own probes of it.
  kTotalConnections,
  kRejectedConnections,
  kListenDisabled,
  kEvictions,
  kCurrConnections,  // gauge
  kProbeFailures,
  kProbeSuccesses,
  // A listener: its own drop counter (sk_drops), and its accept queue's peak (gauge).
  kListenerDrops,
  kListenerPeak,
  // A NIC: receive and transmit drops.
  kNicDrops,
  // Host (per network namespace): Tcp OutSegs and RetransSegs of /proc/net/snmp.
  kSentSegments,
  kRetransmittedSegments,
  // Host: /proc/net/softnet_stat, all CPUs.
  kSoftnetDropped,
  kSoftnetSqueezed,
  // Host: /proc/stat CPU ticks, all CPUs: steal, iowait, and every mode together.
  kCpuSteal,
  kCpuIowait,
  kCpuTotal,
  // A NIC: the cloud allowance counters of its driver, in Allowance order.
  kAllowanceBwIn,
  kAllowanceBwOut,
  kAllowancePps,
  kAllowanceConntrack,
  kAllowanceLinklocal,
  kCount,
};

class SeriesWindow {
 public:
  using Steady = std::chrono::steady_clock::time_point;

  // Adds a sample. `reset` makes it a counter reset even when the value did not drop (the process
  // restarted and already counted past its old value). Keeps what `retention` needs and no more.
  void add(Steady t, double value, Duration retention, bool reset = false);

  // Counter: increase over the samples within `window` of `now` (and the one just before, as
  // baseline).
  double increase(Steady now, Duration window) const;
  // Counter: increase over the samples after `from` up to and including `to`.
  double increase_between(Steady from, Steady to) const;
  // The time of the first sample after `t`; nullopt when there is none.
  std::optional<Steady> first_after(Steady t) const;
  // Counter: increase() per second over the span the samples cover; 0 with fewer than two, or
  // over a span shorter than kMinRateSpan: two samples milliseconds apart (a cycle held to its
  // end by a target that did not answer, and the next one ending at once) would turn a
  // connection or two into hundreds a second.
  static constexpr Duration kMinRateSpan{500};
  double rate(Steady now, Duration window) const;

  // Gauge: the latest value; nullopt when never fed.
  std::optional<double> latest() const;
  // Gauge: the highest value within `window`; nullopt when none.
  std::optional<double> highest(Steady now, Duration window) const;
  // Gauge: latest value less the lowest within `window`.
  double growth(Steady now, Duration window) const;
  // Gauge: it rose between each of the last `samples` + 1 samples (false with fewer).
  bool rising(int samples) const;
  // Gauge: units per second, from the oldest sample within `span` of `now` to the newest; 0 with
  // fewer than two.
  double slope(Steady now, Duration span) const;

  std::optional<Steady> last_time() const;
  // Counter: the latest reset within `window` of `now` (the counter dropped, or `reset` was
  // given): the time of the sample before it and its own. What the old counter counted between
  // the two was never read. nullopt when none.
  struct Reset {
    Steady before;
    Steady at;
  };
  std::optional<Reset> last_reset(Steady now, Duration window) const;
  // The time and value of the oldest sample kept: within a window when the series began there.
  std::optional<Steady> first_time() const;
  std::optional<double> first_value() const;

 private:
  struct Point {
    Steady t;
    double value;
    double delta;  // counter increase since the previous point, resets handled
    bool reset;    // the counter began again here
  };
  std::deque<Point> points_;
};

// The windows of one subject.
using SubjectWindows = std::array<SeriesWindow, static_cast<std::size_t>(Series::kCount)>;

// The series of one of a NIC's allowance counters.
Series allowance_series(Allowance a);

inline const SeriesWindow& at(const SubjectWindows& w, Series s) {
  return w[static_cast<std::size_t>(s)];
}

class Windows {
 public:
  using Steady = std::chrono::steady_clock::time_point;

  // Feeds every series of `o`; `retention` is the longest window a rule reads (at most a day).
  void feed(const Observation& o, Duration retention);

  // The windows of the host (a network namespace: empty for the daemon's own), of a target (by
  // its name), of a listener (by listener_name, in a namespace) or of a NIC (by device name); an
  // empty set for a subject never fed.
  const SubjectWindows& host(std::string_view netns = {}) const;
  const SubjectWindows& target(const std::string& name) const;
  const SubjectWindows& listener(const std::string& name, std::string_view netns = {}) const;
  const SubjectWindows& device(const std::string& name) const;
  // The listeners of namespace `netns` fed within `window` before `now` but not at `now`: those
  // that went away (memcached stopped, or restarted on other ports), by listener_name. Walks
  // every subject: for a rule that already found something wrong, not for every evaluation.
  std::vector<std::pair<std::string, const SubjectWindows*>> gone_listeners(std::string_view netns,
                                                                            Steady now,
                                                                            Duration window) const;

  // Hash-map lookups since construction, for tests that hold the cost linear in subjects.
  std::uint64_t lookups() const { return lookups_; }

 private:
  struct Subject {
    SubjectWindows windows;
    std::optional<double> uptime;  // targets: to see restarts
    std::optional<double> pid;
    Steady fed{};
  };
  Subject& fed(const std::string& key, Steady now);
  const SubjectWindows& find(const std::string& key) const;

  std::unordered_map<std::string, Subject> subjects_;
  mutable std::uint64_t lookups_ = 0;
};

}  // namespace mcb
