#pragma once
// FileCollector<Sample>: the synchronous collector pattern for sources read from files (procfs,
// sysfs). A subclass reads and parses into a plain Sample; this base runs it inside collect(),
// keeps the last good sample for the evaluator and publishes its families. A failed read
// publishes nothing, so no stale number outlives the run that could not confirm it. A subclass
// whose source changes seldom says when a read is due (due()); between reads the last good
// sample and its families stand, untouched. Loop thread only.

#include <optional>

#include "collectors/collector.hpp"

namespace mcb {

template <class SampleT>
class FileCollector : public Collector {
 public:
  using Sample = SampleT;

  void collect(Done done) final {
    if (last_ && !due()) {  // the last read stands: nothing to read, build or publish
      done(ok_status());
      return;
    }
    Result<Sample> s = read();
    if (!s) {
      last_.reset();
      publish({});
      done(s.error());
      return;
    }
    last_ = std::move(*s);
    publish(families(*last_));
    done(ok_status());
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
