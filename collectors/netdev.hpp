#pragma once
// The netdev collector: NIC throughput, link speed, utilisation, drops and errors, from
// <procfs>/net/dev (per network namespace) and <sysfs>/class/net/<device>/speed. Devices are
// chosen by the `include` and `exclude` regexes (searched in the name; loopback excluded by
// default). Utilisation is measured over the time between two runs, so the first run has none.
// Loop thread only.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "collectors/file_collector.hpp"
#include "config/config.hpp"

namespace mcb {

struct NetdevCounters {
  std::string device;
  std::uint64_t receive_bytes = 0;
  std::uint64_t receive_packets = 0;
  std::uint64_t receive_errors = 0;
  std::uint64_t receive_drops = 0;
  std::uint64_t transmit_bytes = 0;
  std::uint64_t transmit_packets = 0;
  std::uint64_t transmit_errors = 0;
  std::uint64_t transmit_drops = 0;
};

// Pure: every device of /proc/net/dev, in file order. The columns are found by their names in
// the two header lines. Errors: a missing or unexpected header, a line without "device:", a
// line with more or fewer values than the header names, a value that is not an unsigned integer.
Result<std::vector<NetdevCounters>> parse_net_dev(std::string_view text);

// Pure: the content of a sysfs `speed` file (Mbit/s) in bytes per second; nullopt when the
// driver reports the speed as unknown (-1, or any value not above 0). Errors: not an integer.
Result<std::optional<std::uint64_t>> parse_link_speed(std::string_view text);

struct NetdevDevice {
  NetdevCounters counters;
  std::optional<std::uint64_t> speed_bytes;  // per second; absent when unknown
  // Bytes per second over the last interval divided by the speed; absent on the first run, when
  // the speed is unknown, or when the counter went backwards (the device was reset or re-made).
  std::optional<double> receive_utilization;
  std::optional<double> transmit_utilization;
};

struct NetdevSample {
  std::vector<NetdevDevice> devices;  // the selected devices, in /proc/net/dev order
};

// Pure: fills the utilisation of every device of `current` that `previous`, taken `seconds`
// earlier, also has. Precondition: seconds > 0.
void compute_utilization(NetdevSample& current, const NetdevSample& previous, double seconds);

Families netdev_families(const NetdevSample& sample);

class NetdevCollector final : public FileCollector<NetdevSample> {
 public:
  using Clock = std::chrono::steady_clock;

  // The regexes are compiled with compile_bounded_regex (the configuration checked them); one
  // that does not compile fails every run. `now` is the clock rates are measured with; tests
  // inject one.
  NetdevCollector(const NetdevConfig& config, std::string procfs, std::string sysfs,
                  std::function<Clock::time_point()> now = Clock::now);

  std::string_view name() const override { return "netdev"; }

 private:
  Result<NetdevSample> read() override;
  Families families(const NetdevSample& s) const override { return netdev_families(s); }
  bool selected(const std::string& device) const;

  std::string procfs_;
  std::string sysfs_;
  std::optional<std::regex> include_;  // absent: every device
  std::optional<std::regex> exclude_;  // absent: none
  std::optional<std::string> regex_error_;
  std::function<Clock::time_point()> now_;
  std::optional<std::pair<Clock::time_point, NetdevSample>> previous_;
};

}  // namespace mcb
