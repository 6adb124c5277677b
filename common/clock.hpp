#pragma once
// The clock of the event loop, and the one periodic timer built on it.
//
// LoopClock is what every timer of the daemon waits on and what the loop's time-stamps read
// (sample times, windows, `for` durations). It is std::chrono::steady_clock, unless a test holds
// a ManualTime: then it stands still until the test advances it, and timers whose expiry it
// passes fire at the next poll of the io_context, so no unit test sleeps to wait for a timer.
// Its time_point is steady_clock's, so every value is interchangeable with it.
//
// PeriodicTimer runs a callback every interval, drift-free: the next tick is one interval after
// this tick's deadline, not after now, and a loop that fell behind skips the ticks it missed
// rather than running them back to back.
//
// Thread rules: LoopClock::now() is thread-safe; ManualTime is for a test's one thread; a
// PeriodicTimer belongs to the loop thread of its io_context.

#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>

namespace mcb {

struct LoopClock {
  using duration = std::chrono::steady_clock::duration;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::steady_clock::time_point;
  static constexpr bool is_steady = true;

  static time_point now() noexcept;
};

// How long Asio's reactor may sleep for a timer: the time left, or nothing under manual time, so
// the reactor checks its timers on every poll and a timer a test moved past its expiry fires.
struct LoopWaitTraits {
  static LoopClock::duration to_wait_duration(const LoopClock::duration& d);
  static LoopClock::duration to_wait_duration(const LoopClock::time_point& t);
};

using LoopTimer = boost::asio::basic_waitable_timer<LoopClock, LoopWaitTraits>;

// While one exists, LoopClock stands still at some point and moves only by advance(). Tests only;
// at most one at a time.
class ManualTime {
 public:
  ManualTime();
  ~ManualTime();
  ManualTime(const ManualTime&) = delete;
  ManualTime& operator=(const ManualTime&) = delete;

  void advance(LoopClock::duration d);
  LoopClock::time_point now() const { return LoopClock::now(); }
};

class PeriodicTimer {
 public:
  using Tick = std::function<void()>;

  PeriodicTimer(boost::asio::io_context& io, LoopClock::duration interval, Tick tick);
  ~PeriodicTimer() { stop(); }
  PeriodicTimer(const PeriodicTimer&) = delete;
  PeriodicTimer& operator=(const PeriodicTimer&) = delete;

  // The first tick comes `first` from now, then one every interval. Restarts a stopped timer.
  void start(LoopClock::duration first = LoopClock::duration::zero());
  // Takes effect at the next start().
  void set_interval(LoopClock::duration interval) { interval_ = interval; }
  // No tick runs after stop() returns, including one already due.
  void stop();
  bool running() const { return state_ && state_->running; }

 private:
  struct State {
    LoopTimer timer;
    LoopClock::duration interval;
    Tick tick;
    bool running = false;
    State(boost::asio::io_context& io, LoopClock::duration i, Tick t)
        : timer(io), interval(i), tick(std::move(t)) {}
  };
  static void arm(const std::shared_ptr<State>& state);

  boost::asio::io_context& io_;
  LoopClock::duration interval_;
  Tick tick_;
  std::shared_ptr<State> state_;
};

}  // namespace mcb
