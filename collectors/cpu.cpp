#include "collectors/cpu.hpp"

#include <unistd.h>

#include "collectors/procfs.hpp"
#include "common/families.hpp"

namespace mcb {

Families cpu_families(const CpuSample& s, double ticks_per_second) {
  auto seconds = counter("mcbacklog_cpu_seconds_total",
                         "CPU time of all CPUs of the host together, by mode (/proc/stat cpu "
                         "line; user and nice include guests). steal is time the hypervisor ran "
                         "something else on this VM's vCPUs.");
  const CpuTimes& t = s.times;
  const std::pair<const char*, std::uint64_t> modes[] = {
      {"user", t.user},     {"nice", t.nice}, {"system", t.system},   {"idle", t.idle},
      {"iowait", t.iowait}, {"irq", t.irq},   {"softirq", t.softirq}, {"steal", t.steal}};
  for (const auto& [mode, ticks] : modes) {
    seconds.add(static_cast<double>(ticks) / ticks_per_second, {{"mode", mode}});
  }
  Families out;
  std::move(seconds).into(out);
  return out;
}

CpuCollector::CpuCollector(std::string procfs)
    : file_(procfs + "/stat"), ticks_(static_cast<double>(::sysconf(_SC_CLK_TCK))) {}

Result<CpuSample> CpuCollector::read() {
  auto text = file_.read();
  if (!text) return text.error();
  auto parsed = parse_cpu_stat(*text);
  if (!parsed) return fail(file_.path() + ": " + parsed.error().message);
  return *parsed;
}

}  // namespace mcb
