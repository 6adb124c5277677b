#pragma once
// FileCollector<Sample>: the synchronous collector pattern for sources read from files (procfs,
// sysfs). A subclass reads and parses into a plain Sample; this base runs it inside collect()
// and keeps the last good sample, for the evaluator and for Collect(), which builds the families
// from it when /metrics is rendered: a run every second builds no family, a scrape every 15 s
// builds them once. A failed read drops the sample, so no stale number outlives the run that
// could not confirm it. A subclass whose source changes seldom says when a read is due (due());
// between reads the last good sample stands. Loop thread only.

#include <optional>

#include "collectors/collector.hpp"

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
    done(ok_status());
  }

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
  // Whether this run reads, given that the last one succeeded (after a failure every run
  // reads). Every run by default.
  virtual bool due() const { return true; }

 private:
  std::optional<Sample> last_;
};

}  // namespace mcb
