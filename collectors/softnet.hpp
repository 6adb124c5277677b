#pragma once
// The softnet collector: /proc/net/softnet_stat, one line per online CPU of the per-CPU queues
// that take received packets off the NICs. `dropped` counts packets lost because a CPU's backlog
// (net.core.netdev_max_backlog) was full; `time_squeeze` counts the times the receive work ran
// out of its budget with packets left (the host too busy to take packets off the NIC). Both are
// host-wide (every network namespace shows the same) and join NetworkSaturated's evidence.
// Loop thread only.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "collectors/file_collector.hpp"
#include "collectors/procfs.hpp"

namespace mcb {

// One line: one online CPU's counters, 32 bits each as the kernel keeps them.
struct SoftnetCpu {
  int cpu = 0;  // the CPU's number where the kernel prints it (13 columns or more), else the line's
  std::uint32_t processed = 0;     // packets taken off the backlog
  std::uint32_t dropped = 0;       // packets dropped: the backlog was full
  std::uint32_t time_squeeze = 0;  // receive runs that ended with work left
};

// Pure: every line. Kernels print 10 to 15 hexadecimal columns; the first three are read, and the
// 13th (the CPU's number, since Linux 5.10) where there is one. Errors: no line, a line of fewer
// than 3 columns, a value that is not a 32-bit hexadecimal number.
Result<std::vector<SoftnetCpu>> parse_softnet_stat(std::string_view text);

// All CPUs together, as 64-bit counters: the kernel's 32-bit ones wrap on a busy host, and a sum
// of wrapping counters would fall. The first reading is the kernel's sums; each later one adds
// every CPU's increase since the one before, modulo 2^32 (a CPU that came online adds nothing).
struct SoftnetSample {
  std::uint64_t processed = 0;
  std::uint64_t dropped = 0;
  std::uint64_t time_squeeze = 0;
  int cpus = 0;
};

// Pure: `totals` advanced from the CPUs of `before` to those of `now`.
SoftnetSample advance_softnet(const SoftnetSample& totals, std::span<const SoftnetCpu> before,
                              std::span<const SoftnetCpu> now);
// Pure: the sums of one reading.
SoftnetSample sum_softnet(std::span<const SoftnetCpu> cpus);

Families softnet_families(const SoftnetSample& sample);

class SoftnetCollector final : public FileCollector<SoftnetSample> {
 public:
  explicit SoftnetCollector(std::string procfs)
      : procfs_(std::move(procfs)), file_(procfs_ + "/net/softnet_stat") {}
  std::string_view name() const override { return "softnet"; }

 private:
  Result<SoftnetSample> read() override;
  Families families(const SoftnetSample& s) const override { return softnet_families(s); }

  std::string procfs_;
  ProcFile file_;  // kept open: one pread a run
  std::vector<SoftnetCpu> last_;
  std::optional<SoftnetSample> totals_;
};

}  // namespace mcb
