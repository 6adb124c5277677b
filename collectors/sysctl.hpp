#pragma once
// The sysctl collector: the kernel settings that bound listen queues, read from
// <procfs>/sys/net/... (per network namespace: for another namespace than the daemon's, read on a
// thread that entered it, collectors/netns.hpp). A setting this kernel lacks is absent; none of
// them at all fails the run. Settings change by hand, seldom: they are read every
// `refresh` (a minute by default), not every sample, and a run between reads keeps the last
// good values; after a failed read every run reads until one succeeds. Loop thread only.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "collectors/file_collector.hpp"
#include "common/clock.hpp"
#include "config/config.hpp"
#include "config/duration.hpp"

namespace mcb {

// Pure: one integer, surrounding whitespace allowed. Anything else is an error.
Result<std::int64_t> parse_sysctl_value(std::string_view text);

// A setting the kernel does not have is absent.
struct SysctlSample {
  std::optional<std::int64_t> somaxconn;              // net.core.somaxconn
  std::optional<std::int64_t> tcp_max_syn_backlog;    // net.ipv4.tcp_max_syn_backlog
  std::optional<std::int64_t> tcp_syncookies;         // net.ipv4.tcp_syncookies
  std::optional<std::int64_t> tcp_abort_on_overflow;  // net.ipv4.tcp_abort_on_overflow
};

Families sysctl_families(const SysctlSample& sample);

class SysctlCollector final : public FileCollector<SysctlSample> {
 public:
  static constexpr Duration kRefresh = std::chrono::minutes(1);

  // `netns` unset: the daemon's own namespace.
  explicit SysctlCollector(std::string procfs, Duration refresh = kRefresh,
                           std::optional<NetnsConfig> netns = std::nullopt)
      : procfs_(std::move(procfs)), netns_(std::move(netns)) {
    pace(refresh, [] { return true; });
  }
  std::string_view name() const override { return "sysctl"; }

 private:
  Result<SysctlSample> read() override;
  Result<SysctlSample> read_here() const;
  Families families(const SysctlSample& s) const override { return sysctl_families(s); }

  std::string procfs_;
  std::optional<NetnsConfig> netns_;
};

}  // namespace mcb
