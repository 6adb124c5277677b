#include "daemon/scheduler.hpp"

#include <spdlog/spdlog.h>

#include "common/families.hpp"

namespace mcb {

Scheduler::Scheduler(boost::asio::io_context& io, Duration interval,
                     std::vector<std::shared_ptr<Collector>> collectors, CycleHandler on_cycle)
    : timer_(io, interval, [this] { start_cycle(); }),
      interval_(interval),
      on_cycle_(std::move(on_cycle)) {
  for (auto& c : collectors) {
    Slot s;
    s.collector = std::move(c);
    slots_.push_back(std::move(s));
  }
}

void Scheduler::start() { timer_.start(); }

void Scheduler::stop() {
  stopped_ = true;
  timer_.stop();
  for (Slot& s : slots_) s.collector->stop();
}

void Scheduler::start_cycle() {
  // on_cycle may run below (a run ended when told it is overdue) and stop or drop this scheduler.
  const auto self = shared_from_this();
  if (cycle_open_) {
    // The previous cycle is still waiting for a run: ask it to end now, so that the cycle ends
    // with what it found and the collector runs in this one.
    starting_ = true;
    for (Slot& s : slots_) {
      if (s.in_flight && s.cycle == cycle_) s.collector->overdue();
    }
    starting_ = false;
    maybe_end_cycle();
    if (stopped_) return;
  }
  if (cycle_open_) {
    // A run that did not end when asked: close the cycle without it, and count it as failed.
    for (Slot& s : slots_) {
      if (s.in_flight && s.cycle == cycle_) {
        s.success = false;
        record_failure(s, "did not finish within the interval of " + format_duration(interval_));
      }
    }
    pending_ = 0;
    maybe_end_cycle();
    if (stopped_) return;
  }
  ++cycle_;
  cycle_open_ = true;
  starting_ = true;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.in_flight) continue;
    s.in_flight = true;
    s.cycle = cycle_;
    s.started = Clock::now();
    ++pending_;
    s.collector->collect([weak = weak_from_this(), i, cycle = cycle_](const Status& status) {
      if (auto self = weak.lock()) self->finish(i, cycle, status);
    });
  }
  starting_ = false;
  maybe_end_cycle();
}

void Scheduler::finish(std::size_t index, std::uint64_t cycle, const Status& status) {
  if (stopped_ || index >= slots_.size()) return;
  Slot& s = slots_[index];
  if (!s.in_flight || s.cycle != cycle) return;  // a second call for the same run: ignore
  s.in_flight = false;
  s.ran = true;
  s.duration_seconds = std::chrono::duration<double>(Clock::now() - s.started).count();
  s.success = status.ok();
  if (!status.ok()) {
    record_failure(s, status.error().message);
  } else if (s.log.succeeded(Clock::now())) {
    spdlog::info("collector {} recovered{}", s.collector->described(), s.log.note());
  }
  if (cycle == cycle_ && cycle_open_) {
    --pending_;
    maybe_end_cycle();
  }
}

void Scheduler::maybe_end_cycle() {
  if (starting_ || !cycle_open_ || pending_ > 0 || stopped_) return;
  cycle_open_ = false;
  ++cycles_;
  if (on_cycle_) on_cycle_();
}

void Scheduler::record_failure(Slot& s, const std::string& reason) {
  if (s.log.failed(reason, Clock::now())) {
    spdlog::warn("collector {} failed: {}{}", s.collector->described(), reason, s.log.note());
  }
}

std::vector<prometheus::MetricFamily> Scheduler::Collect() const {
  auto success = gauge("mcbacklog_collector_success",
                       "1 if the collector's last run succeeded, 0 if it failed or overran.");
  auto duration =
      gauge("mcbacklog_collector_duration_seconds", "Wall-clock time of the collector's last run.");
  for (const Slot& s : slots_) {
    Labels labels{{"collector", std::string(s.collector->name())}};
    if (!s.collector->netns_label().empty())
      labels.push_back({"netns", s.collector->netns_label()});
    if (s.ran || s.log.failing()) success.add(s.success ? 1 : 0, labels);
    if (s.ran) duration.add(s.duration_seconds, labels);
  }
  Families out;
  std::move(success).into(out);
  std::move(duration).into(out);
  return out;
}

}  // namespace mcb
