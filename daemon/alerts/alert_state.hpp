#pragma once
// The building blocks of alert evaluation, independent of any one alert: severity levels, what a
// rule concludes (Verdict), grading a value against its levels with hysteresis, and the
// per-subject track that tells the condition (what holds now) from the state (what has held for
// `for`, or at once when the verdict says a resource runs out sooner).
// Plain values; loop thread only; not thread-safe.

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace mcb {

enum class Level { kOk = 0, kWarning = 1, kCritical = 2 };

std::string_view level_name(Level level);
// "ok", "warning", "critical"; anything else is nullopt.
std::optional<Level> parse_level(std::string_view name);
inline Level worse(Level a, Level b) { return a < b ? b : a; }

// What one rule concludes about one subject from one observation.
struct Verdict {
  Level level = Level::kOk;
  // The measured quantity the levels apply to; nullopt when the rule judged without one (a device
  // whose link speed is unknown, a hard sign such as a listener that stopped accepting).
  std::optional<double> value;
  double threshold = 0;  // the level compared with: the one crossed, else the warning level
  std::string evidence;  // the numbers behind the verdict, in words
  // The fix for what this evidence shows, when it differs from the rule's general remediation.
  std::string fix;
  // The resource runs out before the rule's `for` would end: the level fires at once.
  bool immediate = false;
};

// Grades a value against `t`, higher worse or (`lower_is_worse`) lower worse. A condition that
// held (`current` above ok) stays at least warning until the value passes `clear`, so a value
// hovering at a level does not flap.
Level graded(double value, const AlertThreshold& t, Level current, bool lower_is_worse = false);

// The threshold a graded value was compared with: the level reached, else the warning level.
double crossed_threshold(Level level, const AlertThreshold& t);

// One alert for one subject (a target, a device, the host) over time.
//  - condition: the level of this evaluation's verdict (ok when the rule had no data);
//  - state: the firing level. A worse level fires once the condition has been at it (or worse)
//    for `for` without a break, or at once when the verdict is `immediate`; a better level
//    applies at once (hysteresis is the rule's business, through graded()). No data in a `gap`
//    (a stats reply that did not come in time, a dump that failed) keeps the last verdict,
//    condition and state of a condition that held (above ok) for up to kNoDataHeld evaluations
//    in a row; after that, or when the
//    numbers are gone for good (memcached refuses connections), it clears the condition, so
//    numbers that cannot be measured never keep an alert firing.
// Prometheus calls a condition that holds while the state is still ok "pending".
class AlertTrack {
 public:
  using Steady = std::chrono::steady_clock::time_point;
  using Wall = std::chrono::system_clock::time_point;

  void update(const std::optional<Verdict>& verdict, Duration for_duration, Steady now, Wall wall,
              bool gap = false);

  Level state() const { return state_; }
  Level condition() const { return last_ ? last_->level : Level::kOk; }
  // When the state last changed (or the track started).
  Wall since() const { return since_; }
  // When the condition last left ok; nullopt while it is ok.
  std::optional<Wall> active_since() const { return active_since_; }
  // The verdict of the last evaluation, nullopt when the rule had no data.
  const std::optional<Verdict>& last() const { return last_; }

  static constexpr int kNoDataHeld = 3;

 private:
  Level state_ = Level::kOk;
  Wall since_{};
  std::optional<Wall> active_since_;
  bool started_ = false;
  // Since when the condition has continuously been at least warning / at least critical.
  std::array<std::optional<Steady>, 3> holding_since_{};
  std::optional<Verdict> last_;
  int no_data_ = 0;  // evaluations in a row without data that kept the last verdict
};

}  // namespace mcb
