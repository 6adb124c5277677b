#pragma once
// The building blocks of alert evaluation, independent of any one alert: severity levels,
// grading a value against warning/critical with hysteresis, the per-subject state machine that
// applies `for` durations, and counter windows that measure "rising" as an increase over a span.
// Pure values; loop thread only; not thread-safe.

#include <array>
#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace mcb {

enum class Level { kOk = 0, kWarning = 1, kCritical = 2 };

std::string_view level_name(Level level);
inline Level worse(Level a, Level b) { return a < b ? b : a; }

// What one check concludes from one sample.
struct Verdict {
  Level level = Level::kOk;
  double value = 0;      // the measured quantity the levels apply to
  double threshold = 0;  // the level it is compared with: the one crossed, else the warning level
  std::string evidence;  // the numbers behind the verdict, in words
};

// Grades a "higher is worse" value. A firing alert (current above ok) stays at least warning
// until the value drops below `clear`, so a value hovering at a threshold does not flap.
Level graded(double value, const AlertThreshold& t, Level current);

// The threshold a graded value was compared with: the level reached, else the warning level.
double crossed_threshold(Level level, const AlertThreshold& t);

// One alert for one subject (a target, a device, the host) over time. A worse level fires once
// the check has said it (or worse) for `for` without a break; a better level applies at once
// (hysteresis is the check's business, through graded()). No data clears the alert: numbers that
// could not be measured this cycle never keep an alert firing.
class AlertTrack {
 public:
  using Steady = std::chrono::steady_clock::time_point;
  using Wall = std::chrono::system_clock::time_point;

  void update(const std::optional<Verdict>& verdict, Duration for_duration, Steady now, Wall wall);

  Level state() const { return state_; }
  Wall since() const { return since_; }
  // The verdict of the last cycle, nullopt when the check had no data.
  const std::optional<Verdict>& last() const { return last_; }

 private:
  Level state_ = Level::kOk;
  Wall since_{};
  bool started_ = false;
  // Since when the check has continuously said at least warning / at least critical.
  std::array<std::optional<Steady>, 3> holding_since_{};
  std::optional<Verdict> last_;
};

// A counter's increase over a sliding window, as Prometheus' increase() sees it: a drop is a
// reset (memcached restarted) and counts from zero, never as a negative or a spike.
class CounterWindow {
 public:
  using Steady = std::chrono::steady_clock::time_point;

  // Adds a sample. `reset` forces a reset even when the value did not drop (the process
  // restarted and already counted past its old value). Keeps what `window` needs and no more.
  void add(Steady t, double value, Duration window, bool reset = false);

  // Increase over the samples within `window` of `now` (and the one just before, as baseline).
  double increase(Steady now, Duration window) const;

  // increase() per second over the span the samples cover; 0 with fewer than two samples.
  double rate(Steady now, Duration window) const;

  bool empty() const { return points_.empty(); }
  std::optional<Steady> last_time() const;

 private:
  struct Point {
    Steady t;
    double value;
    double delta;  // increase since the previous point, resets handled
  };
  std::deque<Point> points_;
};

}  // namespace mcb
