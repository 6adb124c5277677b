#include "daemon/alerts/alert_state.hpp"

namespace mcb {

std::string_view level_name(Level level) {
  switch (level) {
    case Level::kOk:
      return "ok";
    case Level::kWarning:
      return "warning";
    case Level::kCritical:
      return "critical";
  }
  return "ok";
}

Level graded(double value, const AlertThreshold& t, Level current) {
  if (value >= t.critical) return Level::kCritical;
  if (value >= t.warning) return Level::kWarning;
  if (current != Level::kOk && value >= t.clear) return Level::kWarning;
  return Level::kOk;
}

double crossed_threshold(Level level, const AlertThreshold& t) {
  return level == Level::kCritical ? t.critical : t.warning;
}

void AlertTrack::update(const std::optional<Verdict>& verdict, Duration for_duration, Steady now,
                        Wall wall) {
  if (!started_) {
    started_ = true;
    since_ = wall;
  }
  last_ = verdict;
  const Level said = verdict ? verdict->level : Level::kOk;
  for (Level l : {Level::kWarning, Level::kCritical}) {
    auto& holding = holding_since_[static_cast<int>(l)];
    if (said >= l) {
      if (!holding) holding = now;
    } else {
      holding.reset();
    }
  }
  Level next = Level::kOk;
  for (Level l : {Level::kWarning, Level::kCritical}) {
    const auto& holding = holding_since_[static_cast<int>(l)];
    // Already at or above this level: stay without waiting again.
    if (holding && (state_ >= l || now - *holding >= for_duration)) next = l;
  }
  if (next != state_) {
    state_ = next;
    since_ = wall;
  }
}

void CounterWindow::add(Steady t, double value, Duration window, bool reset) {
  double delta = 0;
  if (!points_.empty()) {
    const double previous = points_.back().value;
    delta = (reset || value < previous) ? value : value - previous;
  }
  points_.push_back(Point{t, value, delta});
  // Keep one point at or before the window's start as the baseline.
  while (points_.size() > 2 && points_[1].t <= t - window) points_.pop_front();
}

double CounterWindow::increase(Steady now, Duration window) const {
  double sum = 0;
  for (std::size_t i = 1; i < points_.size(); ++i) {
    if (points_[i].t > now - window) sum += points_[i].delta;
  }
  return sum;
}

double CounterWindow::rate(Steady now, Duration window) const {
  if (points_.size() < 2) return 0;
  // The span from the baseline (or the window's start, if the baseline is older) to the newest.
  auto first = points_.front().t;
  for (std::size_t i = 1; i < points_.size(); ++i) {
    if (points_[i].t > now - window) {
      first = points_[i - 1].t;
      break;
    }
  }
  const double seconds = std::chrono::duration<double>(points_.back().t - first).count();
  return seconds > 0 ? increase(now, window) / seconds : 0;
}

std::optional<CounterWindow::Steady> CounterWindow::last_time() const {
  if (points_.empty()) return std::nullopt;
  return points_.back().t;
}

}  // namespace mcb
