#pragma once
// FailureLog: when to log a condition that keeps failing, so a target that stays down writes a
// line when it goes down, when the reason changes, then at most once per `repeat`, and one line
// when it recovers; a target that flaps, at most 5 lines a minute and the state it settles in.
// LogBudget: at most so many lines a period for what a peer can change at will.
// Both only decide; the caller writes the line. Plain state; not thread-safe.

#include <chrono>
#include <string>

namespace mcb {

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

class FailureLog {
 public:
  using Clock = std::chrono::steady_clock;

  // `repeat`: how often a failure that goes on is logged again. A peer that flips between failing
  // and answering (or between reasons) gets at most 5 lines a minute; the state it settles in is
  // logged once it has held `settle`, with note() saying how many changes were left out.
  explicit FailureLog(Clock::duration repeat = std::chrono::minutes(1),
                      Clock::duration settle = std::chrono::seconds(10))
      : repeat_(repeat), settle_(settle) {}

  // Records a failure; true when it should be logged now (then append note() to the line).
  bool failed(const std::string& reason, Clock::time_point now) {
    if (reason != reason_) since_ = now;
    const bool news = reason != reason_ || now - logged_at_ >= repeat_;
    reason_ = reason;
    return decide(news, now);
  }

  bool failing() const { return !reason_.empty(); }

  // Records a success; true when it should be logged now: the end of a failure, or the settled
  // state after changes left out (then append note() to the line).
  bool succeeded(Clock::time_point now) {
    const bool news = !reason_.empty();
    if (news) since_ = now;
    reason_.clear();
    return decide(news, now);
  }

  // For the line being written: " (after N changes not logged: it flaps)" when some were left
  // out since the last line, else empty. Reading it clears the count.
  std::string note() {
    const int left_out = budget_.left_out();
    budget_.clear_left_out();
    return left_out > 0 ? " (after " + std::to_string(left_out) + " changes not logged: it flaps)"
                        : std::string();
  }

 private:
  bool decide(bool news, Clock::time_point now) {
    bool log = false;
    if (news) {
      log = budget_.take(now);
    } else {
      // Held since the last change, with changes left out: say where it settled.
      log = budget_.left_out() > 0 && now - since_ >= settle_;
    }
    if (log) logged_at_ = now;
    return log;
  }

  Clock::duration repeat_;
  Clock::duration settle_;
  LogBudget budget_;
  std::string reason_;       // empty while succeeding
  Clock::time_point since_;  // of the current state
  Clock::time_point logged_at_;
};

}  // namespace mcb
