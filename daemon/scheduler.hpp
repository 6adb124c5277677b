#pragma once
// Scheduler: runs every collector once per interval on one drift-free timer, times each run, and
// exports mcbacklog_collector_success / mcbacklog_collector_duration_seconds itself.
//
// A cycle starts at each tick with every collector that is not still running from an earlier
// cycle. It ends when all its runs have called done, or at the next tick if one has not: that
// run is told it is overdue (Collector::overdue), and one that still does not end counts as
// failed for the cycle. At the end of each cycle `on_cycle` runs: the app
// evaluates and refreshes /metrics there. A failing collector is logged (rate-limited) and never
// stops the others.
//
// Owned through shared_ptr (runs call back into it); loop thread only; not thread-safe.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <boost/asio/io_context.hpp>

#include "collectors/collector.hpp"
#include "collectors/failure_log.hpp"
#include "common/clock.hpp"
#include "config/duration.hpp"

namespace mcb {

class Scheduler : public prometheus::Collectable, public std::enable_shared_from_this<Scheduler> {
 public:
  using CycleHandler = std::function<void()>;

  Scheduler(boost::asio::io_context& io, Duration interval,
            std::vector<std::shared_ptr<Collector>> collectors, CycleHandler on_cycle);

  // Starts the first cycle at once, then one per interval.
  void start();

  // Starts a cycle now, between the timer's ticks, which keep their phase (a cycle still open is
  // ended first, as at a tick). Not from inside on_cycle: post it.
  void cycle_now() {
    if (!stopped_) start_cycle();
  }

  // Cancels the timer and every run in flight; on_cycle is not called again.
  void stop();

  std::uint64_t completed_cycles() const { return cycles_; }

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  using Clock = LoopClock;

  struct Slot {
    std::shared_ptr<Collector> collector;
    bool in_flight = false;
    std::uint64_t cycle = 0;  // the cycle the run in flight (or the last run) belongs to
    Clock::time_point started;
    bool ran = false;  // a run has finished at least once
    bool success = false;
    double duration_seconds = 0;
    FailureLog log;
  };

  void start_cycle();
  void finish(std::size_t index, std::uint64_t cycle, const Status& status);
  void maybe_end_cycle();
  static void record_failure(Slot& slot, const std::string& reason);

  PeriodicTimer timer_;
  Duration interval_;
  std::vector<Slot> slots_;
  CycleHandler on_cycle_;
  std::uint64_t cycle_ = 0;   // id of the current (or last) cycle
  std::uint64_t cycles_ = 0;  // cycles completed
  std::size_t pending_ = 0;   // runs of the current cycle still in flight
  bool cycle_open_ = false;
  bool starting_ = false;  // inside start_cycle: synchronous runs finish re-entrantly
  bool stopped_ = false;
};

}  // namespace mcb
