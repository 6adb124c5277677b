#include "daemon/process_metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <vector>

#include "collectors/procfs.hpp"
#include "common/families.hpp"

namespace mcb {
namespace {

std::optional<double> field_number(std::string_view s) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

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

Result<ProcessStat> parse_proc_stat(std::string_view text) {
  const auto close = text.rfind(')');
  if (close == std::string_view::npos) return fail("stat: no command name in parentheses");
  std::vector<std::string_view> f;  // f[0] is field 3 (state)
  std::string_view rest = text.substr(close + 1);
  while (!rest.empty()) {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\n')) rest.remove_prefix(1);
    const auto end = rest.find_first_of(" \n");
    if (!rest.empty()) f.push_back(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  }
  // Fields (1-based as in proc(5)): utime 14, stime 15, starttime 22, vsize 23, rss 24.
  if (f.size() < 22) return fail("stat: only " + std::to_string(f.size() + 2) + " fields");
  ProcessStat s;
  auto get = [&f](std::size_t field, double& out) {
    auto v = field_number(f[field - 3]);
    if (v) out = *v;
    return v.has_value();
  };
  if (!get(14, s.utime_ticks) || !get(15, s.stime_ticks) || !get(22, s.start_ticks) ||
      !get(23, s.virtual_bytes) || !get(24, s.rss_pages)) {
    return fail("stat: a field is not a number");
  }
  return s;
}

Result<double> parse_boot_time(std::string_view text) {
  const auto pos = text.find("\nbtime ");
  if (pos == std::string_view::npos) return fail("/proc/stat: no btime line");
  std::string_view rest = text.substr(pos + 7);
  rest = rest.substr(0, rest.find('\n'));
  auto v = field_number(rest);
  if (!v) return fail("/proc/stat: btime is not a number");
  return *v;
}

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
