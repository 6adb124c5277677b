#include "daemon/process_metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include "collectors/procfs.hpp"
#include "common/families.hpp"

namespace mcb {
namespace {

std::optional<double> count_open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  double n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - 1;  // the directory stream's own descriptor
}

}  // namespace

ProcessMetrics::ProcessMetrics() {
  refresh();
  auto stat = read_file("/proc/stat");
  if (stat_ && stat) {
    if (auto boot = parse_boot_time(*stat)) {
      start_time_seconds_ =
          *boot + stat_->start_ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
    }
  }
}

void ProcessMetrics::refresh() {
  stat_.reset();
  if (auto text = read_file("/proc/self/stat")) {
    if (auto s = parse_proc_stat(*text)) stat_ = *s;
  }
  open_fds_ = count_open_fds();
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) max_fds_ = static_cast<double>(lim.rlim_cur);
}

std::vector<prometheus::MetricFamily> ProcessMetrics::Collect() const {
  Families out;
  if (stat_) {
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")
        .add((stat_->utime_ticks + stat_->stime_ticks) / ticks)
        .into(out);
    gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
        .add(stat_->rss_pages * page)
        .into(out);
    gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.")
        .add(stat_->virtual_bytes)
        .into(out);
  }
  if (open_fds_)
    gauge("process_open_fds", "Number of open file descriptors.").add(*open_fds_).into(out);
  if (max_fds_) {
    gauge("process_max_fds", "Maximum number of open file descriptors.").add(*max_fds_).into(out);
  }
  if (start_time_seconds_) {
    gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.")
        .add(*start_time_seconds_)
        .into(out);
  }
  return out;
}

}  // namespace mcb
