#pragma once
// The standard process_* metrics of the daemon itself (as every Prometheus client exports them):
// CPU seconds, resident and virtual memory, open and maximum file descriptors, start time.
// refresh() reads /proc/self (the app calls it when /metrics is rendered); Collect() only
// copies. Loop thread only.

#include <optional>
#include <string_view>

#include <prometheus/collectable.h>

#include "common/result.hpp"

namespace mcb {

struct ProcessStat {
  double utime_ticks = 0;
  double stime_ticks = 0;
  double start_ticks = 0;  // since boot
  double virtual_bytes = 0;
  double rss_pages = 0;
};

// Pure: parses /proc/<pid>/stat (the command name may hold spaces and parentheses).
Result<ProcessStat> parse_proc_stat(std::string_view text);

// Pure: the "btime" line of /proc/stat, in seconds since the epoch.
Result<double> parse_boot_time(std::string_view proc_stat);

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
