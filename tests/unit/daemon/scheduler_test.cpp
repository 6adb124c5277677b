#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include "common/clock.hpp"
#include "common/families.hpp"
#include "daemon/http/exposition.hpp"
#include "daemon/scheduler.hpp"
#include "tests/support/metrics_text.hpp"

using namespace mcb;
using namespace std::chrono_literals;

namespace {

// A synchronous collector that succeeds or fails as told and counts its runs.
class Counting final : public Collector {
 public:
  explicit Counting(std::string name, bool succeed) : name_(std::move(name)), succeed_(succeed) {}
  std::string_view name() const override { return name_; }
  void collect(Done done) override {
    ++runs;
    done(succeed_ ? ok_status() : Status(fail("boom")));
  }
  std::vector<prometheus::MetricFamily> Collect() const override {
    Families f;
    gauge("test_runs", "Runs.").add(runs, {{"collector", name_}}).into(f);
    return f;
  }
  int runs = 0;

 private:
  std::string name_;
  bool succeed_;
};

// An asynchronous collector whose peer never answers: it never calls done, unless `late` and the
// scheduler tells it the run is overdue (then it fails the run).
class Silent final : public Collector {
 public:
  explicit Silent(bool late = false) : late_(late) {}
  std::string_view name() const override { return late_ ? "late" : "silent"; }
  std::vector<prometheus::MetricFamily> Collect() const override { return {}; }
  void collect(Done done) override {
    ++runs;
    pending = std::move(done);
  }
  void overdue() override {
    if (!late_) return;
    ++overdues;
    Done done = std::move(pending);
    pending = nullptr;
    done(fail("no reply"));
  }
  int runs = 0;
  int overdues = 0;
  Done pending;

 private:
  bool late_;
};

// Advances the manual clock 5 ms at a time, running what is due, until `condition` holds (at
// most a minute of the manual clock).
void run_until(boost::asio::io_context& io, ManualTime& time,
               const std::function<bool()>& condition) {
  io.poll();
  for (int i = 0; i < 12000 && !condition(); ++i) {
    time.advance(5ms);
    io.poll();
  }
  REQUIRE(condition());
}

}  // namespace

TEST_CASE("scheduler: every collector runs once per cycle and the cycle callback follows",
          "[daemon][scheduler]") {
  ManualTime time;
  boost::asio::io_context io;
  auto good = std::make_shared<Counting>("good", true);
  auto bad = std::make_shared<Counting>("bad", false);
  int cycles = 0;
  auto s = std::make_shared<Scheduler>(io, 20ms, std::vector<std::shared_ptr<Collector>>{good, bad},
                                       [&] { ++cycles; });
  s->start();
  run_until(io, time, [&] { return cycles >= 3; });
  CHECK(good->runs == cycles);
  CHECK(bad->runs == cycles);
  CHECK(s->completed_cycles() == static_cast<std::uint64_t>(cycles));

  const std::string text = render_families(s->Collect());
  CHECK(test::metric_value(text, R"(mcbacklog_collector_success{collector="good"})") == 1);
  CHECK(test::metric_value(text, R"(mcbacklog_collector_success{collector="bad"})") == 0);
  CHECK(test::metric_value(text, R"(mcbacklog_collector_duration_seconds{collector="good"})") >= 0);
  s->stop();
}

TEST_CASE("scheduler: a run that never finishes fails its cycle and is not started again meanwhile",
          "[daemon][scheduler]") {
  ManualTime time;
  boost::asio::io_context io;
  auto good = std::make_shared<Counting>("good", true);
  auto silent = std::make_shared<Silent>();
  int cycles = 0;
  auto s = std::make_shared<Scheduler>(
      io, 20ms, std::vector<std::shared_ptr<Collector>>{good, silent}, [&] { ++cycles; });
  s->start();
  run_until(io, time, [&] { return cycles >= 3; });
  // The silent run blocks neither the other collector nor the cycles, and never overlaps itself.
  CHECK(silent->runs == 1);
  CHECK(good->runs >= 3);
  const std::string text = render_families(s->Collect());
  CHECK(test::metric_value(text, R"(mcbacklog_collector_success{collector="silent"})") == 0);
  CHECK(test::metric_value(text, R"(mcbacklog_collector_success{collector="good"})") == 1);

  // When it finally answers, it is scheduled again.
  silent->pending(ok_status());
  run_until(io, time, [&] { return silent->runs >= 2; });
  s->stop();
}

TEST_CASE(
    "scheduler: a run still in flight at the next tick is told it is overdue, ends its cycle "
    "with its failure, and runs in the next",
    "[daemon][scheduler]") {
  ManualTime time;
  boost::asio::io_context io;
  auto good = std::make_shared<Counting>("good", true);
  auto late = std::make_shared<Silent>(/*late=*/true);
  int cycles = 0;
  int ended_with_late_done = 0;  // cycles whose callback came after late's run had ended
  auto s = std::make_shared<Scheduler>(io, 20ms,
                                       std::vector<std::shared_ptr<Collector>>{good, late}, [&] {
                                         ++cycles;
                                         if (!late->pending) ++ended_with_late_done;
                                       });
  s->start();
  run_until(io, time, [&] { return cycles >= 3; });
  CHECK(ended_with_late_done == cycles);
  CHECK(late->overdues == cycles);
  CHECK(late->runs == cycles + 1);  // once a cycle, never skipped; the last one still in flight
  CHECK(good->runs == cycles + 1);
  const std::string text = render_families(s->Collect());
  CHECK(test::metric_value(text, R"(mcbacklog_collector_success{collector="late"})") == 0);
  s->stop();
}

TEST_CASE(
    "scheduler: a cycle callback that stops the scheduler when an overdue run ended starts "
    "nothing more",
    "[daemon][scheduler]") {
  ManualTime time;
  boost::asio::io_context io;
  auto good = std::make_shared<Counting>("good", true);
  auto late = std::make_shared<Silent>(/*late=*/true);
  std::shared_ptr<Scheduler> s;
  int cycles = 0;
  s = std::make_shared<Scheduler>(io, 20ms, std::vector<std::shared_ptr<Collector>>{good, late},
                                  [&] {
                                    ++cycles;
                                    s->stop();
                                    s.reset();  // as a reload may drop it
                                  });
  s->start();
  run_until(io, time, [&] { return cycles == 1; });
  time.advance(100ms);
  io.poll();
  CHECK(cycles == 1);
  CHECK(late->overdues == 1);
  CHECK(late->runs == 1);
  CHECK(good->runs == 1);
}

TEST_CASE("scheduler: after stop no cycle runs and late answers are ignored",
          "[daemon][scheduler]") {
  ManualTime time;
  boost::asio::io_context io;
  auto silent = std::make_shared<Silent>();
  int cycles = 0;
  auto s = std::make_shared<Scheduler>(io, 20ms, std::vector<std::shared_ptr<Collector>>{silent},
                                       [&] { ++cycles; });
  s->start();
  run_until(io, time, [&] { return silent->runs == 1; });
  s->stop();
  const int before = cycles;
  silent->pending(ok_status());
  time.advance(100ms);
  io.poll();
  CHECK(cycles == before);
  CHECK(io.stopped());  // nothing left to do: the timer was cancelled
}

TEST_CASE("scheduler: cycles follow the clock, one per interval, and skip what a stall missed",
          "[daemon][scheduler]") {
  ManualTime time;
  boost::asio::io_context io;
  auto good = std::make_shared<Counting>("good", true);
  int cycles = 0;
  auto s = std::make_shared<Scheduler>(io, 1s, std::vector<std::shared_ptr<Collector>>{good},
                                       [&] { ++cycles; });
  s->start();
  io.poll();
  CHECK(cycles == 1);  // the first cycle starts at once
  time.advance(999ms);
  io.poll();
  CHECK(cycles == 1);
  time.advance(1ms);
  io.poll();
  CHECK(cycles == 2);
  // The loop stalls for 10 s: one cycle runs when it resumes, not ten.
  time.advance(10s);
  io.poll();
  CHECK(cycles == 3);
  time.advance(1s);
  io.poll();
  CHECK(cycles == 4);
  s->stop();
}
