#pragma once
// FileCollector<Sample>: the synchronous collector pattern for sources read from files (procfs,
// sysfs). A subclass reads and parses into a plain Sample; this base runs it inside collect()
// and keeps the last good sample, for the evaluator and for Collect(), which builds the families
// from it when /metrics is rendered: a run every second builds no family, a scrape every 15 s
// builds them once. A failed read drops the sample, so no stale number outlives the run that
// could not confirm it. A source read more seldom while all is well is paced (pace()): between
// reads the last good sample stands. Loop thread only.

#include <cstdint>
#include <functional>
#include <optional>

#include "collectors/collector.hpp"
#include "common/clock.hpp"
#include "config/duration.hpp"

namespace mcb {

template <class SampleT>
class FileCollector : public Collector {
 public:
  using Sample = SampleT;

  void collect(Done done) final {
    if (last_ && !due()) {  // the last read stands
      done(ok_status());
      return;
    }
    Result<Sample> s = read();
    if (!s) {
      last_.reset();
      done(s.error());
      return;
    }
    last_ = std::move(*s);
    read_at_ = LoopClock::now();
    ++reads_;
    done(ok_status());
  }

  // Reads every `interval` while `at_rest()` (asked at each run) says so, every run while it does
  // not, and every run after a failed one. Unpaced, or at `interval` 0: every run. Before the
  // first run.
  void pace(Duration interval, std::function<bool()> at_rest) {
    interval_ = interval;
    at_rest_ = std::move(at_rest);
  }
  std::uint64_t reads() const { return reads_; }  // successful reads since the start (tests)

  // The families of the last good sample, built now; none after a failed run.
  std::vector<prometheus::MetricFamily> Collect() const final {
    return last_ ? labelled(families(*last_)) : Families{};
  }

  // The sample of the last run, if it succeeded.
  const std::optional<Sample>& last() const { return last_; }

 protected:
  // Reads and parses one sample. Errors name the file.
  virtual Result<Sample> read() = 0;
  virtual Families families(const Sample& sample) const = 0;

 private:
  bool due() const {
    return interval_ <= Duration{0} || !at_rest_ || !at_rest_() ||
           LoopClock::now() - read_at_ >= interval_;
  }

  std::optional<Sample> last_;
  Duration interval_{0};
  std::function<bool()> at_rest_;
  LoopClock::time_point read_at_{};  // of the last successful read
  std::uint64_t reads_ = 0;
};

}  // namespace mcb
