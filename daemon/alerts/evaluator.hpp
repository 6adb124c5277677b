#pragma once
// Evaluator: after every sample, runs each rule of the table (rules.hpp) for each subject it
// applies to (the host, each memcached target, each watched NIC) and keeps its track: the
// condition (what holds now) and the state (what fired: after `for`, or at once when a resource
// runs out sooner), since when, the measured value and threshold, the evidence and the fix.
//
// One evaluation: the windows are fed once from the observation, then every rule runs and only
// reads them. The cost is linear in subjects: no lookup by name in the configuration, one hash
// lookup per subject for its windows and one per alert and subject for its track.
//
// Exports mcbacklog_alert_state (firing level) and mcbacklog_alert_condition (level now) through
// Collect(), and /alerts through json(), built at most once per evaluation on the first request
// after it. Each change of an alert's state is logged: a warning when it got worse, info when it
// got better, with the evidence (none while the condition is only pending), at most 5 a minute
// for one alert and subject, then the state with the count of changes left out once it has held
// for 10 s. Loop thread only;
// not thread-safe.

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <prometheus/collectable.h>

#include "collectors/failure_log.hpp"
#include "config/config.hpp"
#include "daemon/alerts/alert_state.hpp"
#include "daemon/alerts/observation.hpp"
#include "daemon/alerts/rules.hpp"
#include "daemon/alerts/windows.hpp"

namespace mcb {

// The subject of an alert as labels, e.g. {{"target", "main"}} or {{"device", "eth0"}}; none for
// the host as a whole.
using AlertLabels = std::vector<std::pair<std::string, std::string>>;

struct AlertStatus {
  std::string name;  // the rule's name
  AlertLabels labels;
  Level state = Level::kOk;                     // firing
  Level condition = Level::kOk;                 // holding now; above state while pending
  std::chrono::system_clock::time_point since;  // state last changed
  std::optional<std::chrono::system_clock::time_point> active_since;  // condition left ok
  std::optional<Verdict> verdict;  // the last evaluation's; nullopt when there was no data
  std::string cause;
  std::string remediation;  // the verdict's own fix, else the rule's

  bool pending() const { return condition > state; }
};

class Evaluator final : public prometheus::Collectable {
 public:
  using Thresholds = std::map<std::string, AlertThreshold, std::less<>>;

  // Alerts missing from `thresholds` run at their rule's defaults.
  explicit Evaluator(const Thresholds& thresholds);

  // New levels apply from the next evaluate(); tracks and windows are kept.
  void set_thresholds(const Thresholds& thresholds);

  // One evaluation of every network namespace's observation (the daemon's own first). Subjects
  // of another namespace carry its `netns` label.
  void evaluate(std::span<const Observation> observations);
  void evaluate(const Observation& observation) { evaluate(std::span(&observation, 1)); }

  // Every alert for every subject of the last evaluation, in table order, subjects in
  // observation order.
  const std::vector<AlertStatus>& statuses() const;

  // The worst firing state, and the worst condition, of any alert.
  Level worst() const;
  Level worst_condition() const;

  // The /alerts body (alerts_json.hpp), built at most once per evaluation.
  const std::string& json() const;
  std::uint64_t json_builds() const { return json_builds_; }

  const Windows& windows() const { return windows_; }

  // The levels in force for `alert` (the configuration's, else the rule's defaults).
  const AlertThreshold& threshold(Alert alert) const {
    return thresholds_[static_cast<std::size_t>(alert)];
  }

  // Why the connections should be walked at the next sample rather than at their interval, or
  // nullopt: a connection-related condition holds (ConnectionSprawl, SlowClients,
  // MaxConnectionsNear, AcceptQueueFilling, ListenQueueOverflow), or memcached's own counters
  // moved past what a quiet memcached shows (connections rising by 10 or 5% of the limit in 10 s,
  // 10 new connections a second, a rejection or a disabled listener, an accept queue a tenth
  // full).
  const std::optional<std::string>& walk_reason() const { return walk_reason_; }

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Track {
    Alert alert;
    AlertLabels labels;
    AlertTrack track;
    LogBudget log;           // state changes logged: 5 a minute, then counted
    std::uint64_t seen = 0;  // the evaluation that last updated it
  };

  // The label that names a subject ("target", "device"; none for the host), read only when the
  // subject is new.
  struct SubjectLabel {
    std::string_view name;
    const std::string* value = nullptr;
  };
  void judge(const Rule& rule, std::string_view subject, const SubjectLabel& label,
             RuleInput input);
  std::optional<std::string> connections_moved(std::span<const Observation> observations) const;
  // Logs a state change: a warning when it got worse, info when better, with the evidence; past
  // the track's budget, counts it, and logs the state with that count once the state has held
  // for kSettled or the budget allows.
  static constexpr std::chrono::seconds kSettled{10};
  static void log_change(const Rule& rule, Track& t, Level before,
                         std::chrono::steady_clock::time_point now,
                         std::chrono::system_clock::time_point wall);

  std::array<AlertThreshold, kAlertCount> thresholds_;
  Duration retention_{};
  Windows windows_;
  std::unordered_map<std::string, Track> tracks_;  // key: alert name, subject
  std::string key_;                                // judge()'s, kept for its capacity
  std::string host_key_;             // evaluate()'s subject key of a namespace, likewise
  std::vector<const Track*> order_;  // this evaluation's, in table order
  std::uint64_t evaluation_ = 0;
  std::optional<std::string> walk_reason_;
  mutable std::optional<std::vector<AlertStatus>> statuses_;
  mutable std::optional<std::string> json_;
  mutable std::uint64_t json_builds_ = 0;
};

}  // namespace mcb
