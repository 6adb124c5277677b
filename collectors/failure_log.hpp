#pragma once
// FailureLog: when to log a condition that keeps failing, so a target that stays down writes a
// line when it goes down, when the reason changes, then at most once per `repeat`, and one line
// when it recovers. It only decides; the caller writes the line. Plain state; not thread-safe.

#include <chrono>
#include <string>

namespace mcb {

class FailureLog {
 public:
  using Clock = std::chrono::steady_clock;

  explicit FailureLog(Clock::duration repeat = std::chrono::minutes(1)) : repeat_(repeat) {}

  // Records a failure; true when it should be logged now.
  bool failed(const std::string& reason, Clock::time_point now) {
    const bool log = reason != reason_ || now - logged_at_ >= repeat_;
    if (log) logged_at_ = now;
    reason_ = reason;
    return log;
  }

  bool failing() const { return !reason_.empty(); }

  // Records a success; true when it ends a failure (log the recovery once).
  bool succeeded() {
    const bool was_failing = !reason_.empty();
    reason_.clear();
    return was_failing;
  }

 private:
  Clock::duration repeat_;
  std::string reason_;  // empty while succeeding
  Clock::time_point logged_at_;
};

}  // namespace mcb
