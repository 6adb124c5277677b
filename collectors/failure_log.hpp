#pragma once
// FailureLog: when to log a condition that keeps failing, so a target that stays down writes a
// line when it goes down, when the reason changes, then at most once per `repeat`, and one line
// when it recovers. LogBudget: at most so many lines a period for what a peer can change at will.
// Both only decide; the caller writes the line. Plain state; not thread-safe.

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

// At most `lines` lines per `period` for something a peer can make change every sample (an alert
// that flaps, a server that names new listeners each time): the lines over the budget are left
// out and counted, so that the next line written can say how many.
class LogBudget {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LogBudget(int lines = 5, Clock::duration period = std::chrono::minutes(1))
      : lines_(lines), period_(period) {}

  // A line to write now: true when the period's budget has room (the line is counted); else false,
  // the line left out and, when `counts`, counted as such.
  bool take(Clock::time_point now, bool counts = true) {
    if (!started_ || now - start_ >= period_) {
      started_ = true;
      start_ = now;
      used_ = 0;
    }
    if (used_ >= lines_) {
      if (counts) ++left_out_;
      return false;
    }
    ++used_;
    return true;
  }

  // Lines left out since the last one taken whose count was read (clear_left_out()).
  int left_out() const { return left_out_; }
  void clear_left_out() { left_out_ = 0; }

 private:
  int lines_;
  Clock::duration period_;
  bool started_ = false;
  Clock::time_point start_;
  int used_ = 0;
  int left_out_ = 0;
};

}  // namespace mcb
