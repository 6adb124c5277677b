#pragma once
// Evaluator: after every sample, judges each alert of the catalogue for each subject it applies
// to (a memcached target, a NIC, the host) and keeps its state: ok, warning or critical, since
// when, the measured value and threshold, the cause, the evidence in numbers and the fix.
//
// It joins the views no single collector has: the kernel's host-wide overflow counters with the
// memcached listener's own drop counter, or its queue where the kernel does not count its drops
// (so overflows on another listener are not blamed on memcached), memcached's connection
// counters with its listener's max queue, somaxconn with memcached's tcp_backlog. Counter
// conditions ("rising") look at the increase over each alert's window, so a burst stays visible
// that long and a memcached restart is a reset, not a spike.
//
// Input is a plain Signals struct with its own clock readings, so tests are deterministic and
// need no sleeping. Exports mcbacklog_alert_state through Collect() and /alerts through json().
// Loop thread only; not thread-safe.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/collectable.h>

#include "config/config.hpp"
#include "daemon/alerts/alert_state.hpp"
#include "daemon/alerts/signals.hpp"

namespace mcb {

// One alert of the catalogue: its name, the cause it stands for and the fix, in plain words.
struct AlertDefinition {
  std::string_view name;
  std::string_view cause;
  std::string_view remediation;
};
const std::vector<AlertDefinition>& alert_catalogue();

// The subject of an alert as labels, e.g. {{"target", "main"}} or {{"device", "eth0"}}; none for
// the host as a whole.
using AlertLabels = std::vector<std::pair<std::string, std::string>>;

struct AlertStatus {
  std::string name;
  AlertLabels labels;
  Level state = Level::kOk;
  std::chrono::system_clock::time_point since;
  std::optional<Verdict> verdict;  // last cycle's, nullopt when there was no data
  std::string cause;
  std::string remediation;
};

class Evaluator final : public prometheus::Collectable {
 public:
  using Thresholds = std::map<std::string, AlertThreshold, std::less<>>;

  explicit Evaluator(Thresholds thresholds);

  // New levels apply from the next evaluate(); states and counter history are kept.
  void set_thresholds(Thresholds thresholds) { thresholds_ = std::move(thresholds); }

  void evaluate(const Signals& signals);

  // Every alert for every subject seen in the last evaluation, in catalogue order.
  std::vector<AlertStatus> statuses() const;

  // The worst state of any alert.
  Level worst() const;

  // {"alerts":[{"name","state","target","labels","since","value","threshold","cause",
  //   "evidence","remediation"}]}
  std::string json() const;

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Track {
    std::string alert;
    AlertLabels labels;
    AlertTrack state;
    std::uint64_t seen = 0;  // the evaluation that last updated it
  };

  const AlertThreshold& threshold(std::string_view alert) const;
  void judge(std::string_view alert, const AlertLabels& labels,
             const std::optional<Verdict>& verdict, const Signals& s);
  Level current(std::string_view alert, const AlertLabels& labels) const;

  // Feeds a counter into its window and returns its increase over `window`.
  double increase(const std::string& key, std::optional<double> value, const Signals& s,
                  Duration window, bool reset = false);
  double rate(const std::string& key, std::optional<double> value, const Signals& s,
              Duration window, bool reset = false);

  // In words, the watched listeners on `port` (on any port when nullopt) that overflowed within
  // `window`: their own drop counter rose or, where the kernel does not report it, they were seen
  // at their max queue or not accepting at all. Empty when none did.
  std::string overflowed_listeners(const Signals& s, std::optional<std::uint16_t> port,
                                   Duration window);

  void check_target(const TargetSignals& t, const Signals& s);
  void check_host(const Signals& s);
  void check_nic(const NicSignals& n, const Signals& s);

  Thresholds thresholds_;
  std::map<std::string, Track> tracks_;  // key: alert + labels
  std::map<std::string, CounterWindow> counters_;
  std::map<std::string, double> uptimes_;  // target -> last uptime, to see restarts
  // When each watched listener ("address:port") was last seen at its max queue, and how full:
  // joins overflows to it where the kernel does not count its drops.
  std::map<std::string, std::pair<std::chrono::steady_clock::time_point, std::string>> full_;
  std::uint64_t evaluation_ = 0;
};

}  // namespace mcb
