#pragma once
// The standard process_* metrics of the daemon itself (as every Prometheus client exports them):
// CPU seconds, resident and virtual memory, open and maximum file descriptors, start time.
// refresh() reads /proc/self (the app calls it when /metrics is rendered); Collect() only
// copies. Loop thread only. The parsers it uses are collectors/proc_stat.hpp's.

#include <optional>
#include <vector>

#include <prometheus/collectable.h>

#include "collectors/proc_stat.hpp"

namespace mcb {

class ProcessMetrics final : public prometheus::Collectable {
 public:
  ProcessMetrics();
  void refresh();
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::optional<double> start_time_seconds_;
  std::optional<ProcessStat> stat_;
  std::optional<double> open_fds_;
  std::optional<double> max_fds_;
};

}  // namespace mcb
