#pragma once
// Pure parsers of the kernel's process and CPU accounting files: /proc/<pid>/stat (and a thread's
// /proc/<pid>/task/<tid>/stat), /proc/<pid>/task/<tid>/schedstat, and the `cpu` and `btime` lines
// of /proc/stat. Functions from bytes to plain structs; no I/O; thread-safe.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace mcb {

// What mcbacklogd reads of /proc/<pid>/stat. Times are in clock ticks (sysconf(_SC_CLK_TCK)).
struct ProcessStat {
  std::string comm;  // the command (a thread's name), without its parentheses
  double utime_ticks = 0;
  double stime_ticks = 0;
  double start_ticks = 0;  // since boot
  double virtual_bytes = 0;
  double rss_pages = 0;
};

// Pure: parses /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat. The command name may hold spaces
// and parentheses: it ends at the last ')'. Errors: no command in parentheses, fewer than 24
// fields, a field mcbacklogd reads that is not a number.
Result<ProcessStat> parse_proc_stat(std::string_view text);

// Pure: the first field of /proc/<pid>/task/<tid>/schedstat, the nanoseconds the thread has run
// on a CPU (exact, unlike stat's ticks). Errors: not three unsigned integers.
Result<std::uint64_t> parse_schedstat(std::string_view text);

// Pure: the "btime" line of /proc/stat, in seconds since the epoch.
Result<double> parse_boot_time(std::string_view proc_stat);

// The time all CPUs together spent in each mode since boot, in clock ticks: the `cpu` line of
// /proc/stat. Modes the kernel does not report (steal before 2.6.11) are 0.
struct CpuTimes {
  std::uint64_t user = 0;  // including guest time
  std::uint64_t nice = 0;  // including guest_nice time
  std::uint64_t system = 0;
  std::uint64_t idle = 0;
  std::uint64_t iowait = 0;
  std::uint64_t irq = 0;
  std::uint64_t softirq = 0;
  std::uint64_t steal = 0;  // time the hypervisor ran something else on this VM's vCPUs

  std::uint64_t total() const {
    return user + nice + system + idle + iowait + irq + softirq + steal;
  }
};

struct CpuStat {
  CpuTimes times;
  int cpus = 0;  // the `cpuN` lines: CPUs online
};

// Pure: the `cpu` line (and the count of `cpuN` lines) of /proc/stat. Errors: no `cpu` line,
// fewer than 4 values on it, a value that is not an unsigned integer.
Result<CpuStat> parse_cpu_stat(std::string_view proc_stat);

}  // namespace mcb
