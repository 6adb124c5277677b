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

std::optional<Level> parse_level(std::string_view name) {
  for (Level l : {Level::kOk, Level::kWarning, Level::kCritical}) {
    if (level_name(l) == name) return l;
  }
  return std::nullopt;
}

Level graded(double value, const AlertThreshold& t, Level current, bool lower_is_worse) {
  // A floor is graded as the ceiling of the negated value.
  const double sign = lower_is_worse ? -1 : 1;
  const double v = sign * value;
  if (v >= sign * t.critical) return Level::kCritical;
  if (v >= sign * t.warning) return Level::kWarning;
  if (current != Level::kOk && v >= sign * t.clear) return Level::kWarning;
  return Level::kOk;
}

double crossed_threshold(Level level, const AlertThreshold& t) {
  return level == Level::kCritical ? t.critical : t.warning;
}

void AlertTrack::update(const std::optional<Verdict>& verdict, Duration for_duration, Steady now,
                        Wall wall, bool gap) {
  if (!started_) {
    started_ = true;
    since_ = wall;
  }
  if (!verdict && gap && last_ && last_->level != Level::kOk && no_data_ < kNoDataHeld) {
    // A sample without the numbers (a stats reply that did not come in time) is no sign that
    // the condition ended: the last verdict stands, as Prometheus keeps a series through a
    // missed scrape, and says it is the last with data.
    if (no_data_++ == 0) last_->evidence += "; no data since: the last verdict with data stands";
    return;
  }
  no_data_ = 0;
  const Level said = verdict ? verdict->level : Level::kOk;
  if (said == Level::kOk) {
    active_since_.reset();
  } else if (!active_since_) {
    active_since_ = wall;
  }
  last_ = verdict;
  for (Level l : {Level::kWarning, Level::kCritical}) {
    auto& holding = holding_since_[static_cast<int>(l)];
    if (said >= l) {
      if (!holding) holding = now;
    } else {
      holding.reset();
    }
  }
  const bool immediate = verdict && verdict->immediate;
  Level next = Level::kOk;
  for (Level l : {Level::kWarning, Level::kCritical}) {
    const auto& holding = holding_since_[static_cast<int>(l)];
    // Already at or above this level: stay without waiting again.
    if (holding && (immediate || state_ >= l || now - *holding >= for_duration)) next = l;
  }
  if (next != state_) {
    state_ = next;
    since_ = wall;
  }
}

}  // namespace mcb
