#pragma once
// The netdev collector: NIC throughput, link speed, utilisation, drops and errors, from
// <procfs>/net/dev (per network namespace) and <sysfs>/class/net/<device>/speed, and the drivers'
// own counters (collectors/ethtool.hpp: cloud allowances, driver drops). Utilisation is measured
// over the time between two runs, so the first run has none.
//
// Which devices: by default those that carry traffic off the host (default_selection below); a
// non-empty `include` regex replaces that default, and `exclude` narrows either. The speed is the
// one configured under `speeds` for the device, else the driver's (read once a minute); a device
// with neither has no utilisation (never a 0 that reads as measured). /proc/net/dev is kept open
// and read with one pread a run. Loop thread only.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "collectors/ethtool.hpp"
#include "collectors/file_collector.hpp"
#include "collectors/procfs.hpp"
#include "config/bounded_regex.hpp"
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

// What a device is: what the sysfs of its network namespace says, and its driver's name.
struct DeviceFacts {
  std::string name;
  bool known = false;        // <sysfs>/class/net/<name> exists
  bool backed = false;       // it has a `device` link: a bus device (PCI, virtio, VMBus, Xen)
  bool bond = false;         // a bonding master (`bonding` directory)
  bool bond_member = false;  // enslaved to a bond (`bonding_slave` directory)
  // Stacked on a device of this namespace (a `lower_<name>` link): a macvlan or VLAN whose
  // traffic the device below already counts. A pod's macvlan eth0, whose lower device is in the
  // host's namespace, has none.
  bool stacked = false;
  std::string driver;  // ETHTOOL_GDRVINFO's: "veth", "macvlan", "bridge"; "" unknown
};

// Reads what <sysfs>/class/net/<name> says of a device (not its driver); a device that sysfs does
// not show (a sysfs of another network namespace) is not `known`.
DeviceFacts read_device_facts(const std::string& sysfs, const std::string& name);

// Pure: the devices watched by default, those that carry traffic off the host:
//  - those backed by a device (physical NICs, virtio, ENA, gVNIC, Hyper-V, Xen), except bond
//    members, and the bonds themselves (a bond instead of its members);
//  - where there are none of these (a pod's or container's network namespace), its veth devices
//    and the macvlan and ipvlan devices not stacked on a device of the namespace: a pod's eth0
//    and the like, whose other end is outside.
// Never loopback, bridges, ifb, dummy, tun/tap, VLANs, vxlan, or a veth or macvlan beside a NIC.
std::set<std::string, std::less<>> default_selection(std::span<const DeviceFacts> devices);

enum class SpeedSource { kNone, kDriver, kConfigured };

struct NetdevDevice {
  NetdevCounters counters;
  std::optional<std::uint64_t> speed_bytes;  // per second; absent when unknown
  SpeedSource speed_source = SpeedSource::kNone;
  // Why /sys/class/net/<device>/speed could not be read or parsed (this device's speed is then
  // unknown; the other devices are not held back); empty when it was, or says nothing.
  std::string speed_error;
  // The driver's own counters; absent when not read (driver_stats off), when the driver has
  // none, or when reading them failed (driver_error says why).
  std::optional<DriverCounters> driver;
  std::string driver_error;
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
  // The device's speed from sysfs, as of at most a minute ago.
  Result<std::optional<std::uint64_t>> link_speed(const std::string& device);

  // Re-reads the devices' facts when the set of devices changed or a minute has passed.
  void refresh_default(const std::vector<NetdevCounters>& devices, Clock::time_point now);

  std::string procfs_;
  std::string sysfs_;
  ProcFile net_dev_;  // <procfs>/net/dev, kept open: one pread a run
  // Link speeds from sysfs in bytes per second (nullopt: none known), by device, read once a
  // minute rather than every run: a link renegotiates rarely.
  std::map<std::string, std::optional<std::uint64_t>, std::less<>> link_speeds_;
  std::optional<Clock::time_point> link_speeds_at_;
  std::optional<BoundedRegex> include_;  // absent: the default selection
  std::optional<BoundedRegex> exclude_;  // absent: none
  std::optional<std::string> regex_error_;
  std::map<std::string, double, std::less<>> speeds_;  // bits per second
  EthtoolReader ethtool_;  // drivers' names for the default selection, and their counters
  bool driver_stats_;
  std::set<std::string, std::less<>> default_;  // the default selection
  std::vector<std::string> default_of_;         // the devices it was made from
  std::optional<Clock::time_point> default_at_;
  std::function<Clock::time_point()> now_;
  std::optional<std::pair<Clock::time_point, NetdevSample>> previous_;
};

}  // namespace mcb
