#include "common/clock.hpp"

#include <algorithm>
#include <atomic>

namespace mcb {
namespace {

// Manual time as nanoseconds since steady_clock's epoch; kReal while no ManualTime exists.
constexpr LoopClock::rep kReal = -1;
std::atomic<LoopClock::rep> manual{kReal};

}  // namespace

LoopClock::time_point LoopClock::now() noexcept {
  const rep m = manual.load(std::memory_order_relaxed);
  if (m == kReal) return std::chrono::steady_clock::now();
  return time_point(duration(m));
}

LoopClock::duration LoopWaitTraits::to_wait_duration(const LoopClock::duration& d) {
  // Under manual time the reactor must not sleep at all: its timer wakes it at once, and it
  // compares every timer with the manual clock, so one poll() runs what the test made due.
  if (manual.load(std::memory_order_relaxed) == kReal) return d;
  return LoopClock::duration::zero();
}

LoopClock::duration LoopWaitTraits::to_wait_duration(const LoopClock::time_point& t) {
  return to_wait_duration(t - LoopClock::now());
}

ManualTime::ManualTime() {
  manual.store(std::chrono::steady_clock::now().time_since_epoch().count());
}

ManualTime::~ManualTime() { manual.store(kReal); }

void ManualTime::advance(LoopClock::duration d) { manual.fetch_add(d.count()); }

PeriodicTimer::PeriodicTimer(boost::asio::io_context& io, LoopClock::duration interval, Tick tick)
    : io_(io), interval_(interval), tick_(std::move(tick)) {}

void PeriodicTimer::start(LoopClock::duration first) {
  stop();
  state_ = std::make_shared<State>(io_, interval_, tick_);
  state_->running = true;
  state_->timer.expires_at(LoopClock::now() + first);
  arm(state_);
}

void PeriodicTimer::stop() {
  if (!state_) return;
  state_->running = false;
  state_->timer.cancel();
  state_.reset();
}

void PeriodicTimer::arm(const std::shared_ptr<State>& state) {
  state->timer.async_wait(
      [weak = std::weak_ptr<State>(state)](const boost::system::error_code& ec) {
        auto s = weak.lock();
        if (ec || !s || !s->running) return;
        // Drift-free: one interval after this tick's deadline; ticks a stalled loop missed are
        // skipped.
        const auto now = LoopClock::now();
        auto next = s->timer.expiry() + s->interval;
        while (next <= now) next += s->interval;
        s->timer.expires_at(next);
        arm(s);
        s->tick();
      });
}

}  // namespace mcb
