#pragma once
// The cpu collector: the host's CPU time by mode from <procfs>/stat, all CPUs together. Its steal
// (time the hypervisor gave this VM's vCPUs to someone else) and iowait shares join
// MemcachedCpuSaturated's evidence: a VM whose vCPUs are stolen looks like a slow memcached.
// Loop thread only.

#include <string>

#include "collectors/file_collector.hpp"
#include "collectors/proc_stat.hpp"
#include "collectors/procfs.hpp"

namespace mcb {

using CpuSample = CpuStat;

// Pure. mcbacklog_cpu_seconds_total{mode}, in seconds at `ticks_per_second`.
Families cpu_families(const CpuSample& sample, double ticks_per_second);

class CpuCollector final : public FileCollector<CpuSample> {
 public:
  explicit CpuCollector(std::string procfs);
  std::string_view name() const override { return "cpu"; }

 private:
  Result<CpuSample> read() override;
  Families families(const CpuSample& s) const override { return cpu_families(s, ticks_); }

  ProcFile file_;  // <procfs>/stat, kept open: one pread a run
  double ticks_;
};

}  // namespace mcb
