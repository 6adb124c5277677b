#pragma once
// A NIC driver's own counters, read as `ethtool -S` reads them but without the ethtool binary:
// the SIOCETHTOOL ioctl with ETHTOOL_GSSET_INFO (how many statistics), ETHTOOL_GSTRINGS (their
// names) and ETHTOOL_GSTATS (their values). None of the three needs a privilege.
//
// Of the hundreds of statistics drivers name, mcbacklogd keeps a bounded, documented set
// (docs/hosts.md):
//  - the cloud limits AWS ENA counts: bw_in_allowance_exceeded, bw_out_allowance_exceeded,
//    pps_allowance_exceeded, conntrack_allowance_exceeded, linklocal_allowance_exceeded (packets
//    the hypervisor queued or dropped because the instance went past its allowance), and the
//    gauge conntrack_allowance_available;
//  - the driver's drops per direction: its "rx_drops"/"tx_drops" total where it names one, else
//    the sum of its per-queue drop counters ("rx_queue_N_drops", "rxN_drops", "queue_N_rx_drops"
//    and the tx forms). XDP programs' own drops ("..._xdp_drops") are not counted.
//
// The parsers are pure functions over the bytes the kernel wrote into the caller's buffer,
// header included; EthtoolReader does the I/O. Parsers are thread-safe; a reader belongs to one
// thread (the loop's).

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/files.hpp"
#include "common/result.hpp"

namespace mcb {

// ENA's allowance counters, in the driver's order.
enum class Allowance : std::uint8_t { kBwIn, kBwOut, kPps, kConntrack, kLinklocal };
inline constexpr std::size_t kAllowanceCount = 5;
// "bw_in", "bw_out", "pps", "conntrack", "linklocal": the `allowance` label.
std::string_view allowance_label(Allowance a);
// "bw_in_allowance_exceeded", ...: the driver's name of the counter.
std::string_view allowance_stat(Allowance a);
// What the limit is, in words: "inbound bandwidth", "packets per second", ...
std::string_view allowance_meaning(Allowance a);

// The most statistics one device may report; a count above it is an error (mlx5 with 64 queues
// reports about 3,000).
inline constexpr std::uint32_t kMaxEthtoolStats = 1u << 16;
inline constexpr std::size_t kEthtoolNameBytes = 32;  // ETH_GSTRING_LEN

// Pure: the reply to ETHTOOL_GSSET_INFO asking for ETH_SS_STATS: the number of statistics, 0
// when the driver reports none. Errors: a reply shorter than its header and one count, a count
// above kMaxEthtoolStats.
Result<std::uint32_t> parse_sset_info(std::span<const std::byte> reply);

// Pure: the reply to ETHTOOL_GSTRINGS for ETH_SS_STATS: `len` names of 32 bytes each, every one
// ending at its first NUL (or filling all 32 bytes). Errors: a reply shorter than its header or
// than its names, a string set other than ETH_SS_STATS, more than kMaxEthtoolStats names.
Result<std::vector<std::string>> parse_gstrings(std::span<const std::byte> reply);

// Pure: the reply to ETHTOOL_GSTATS: `n_stats` 64-bit values in host byte order. Errors: a reply
// shorter than its header or than its values, more than kMaxEthtoolStats values.
Result<std::vector<std::uint64_t>> parse_gstats(std::span<const std::byte> reply);

// The set mcbacklogd keeps, for one reading of one device.
struct DriverCounters {
  std::array<std::optional<std::uint64_t>, kAllowanceCount> allowance_exceeded;
  std::optional<std::uint64_t> conntrack_allowance_available;
  std::optional<std::uint64_t> receive_drops;
  std::optional<std::uint64_t> transmit_drops;

  bool empty() const;
};

// Where the kept counters sit among a driver's statistics: worked out once from the names, then
// applied to every reading.
class DriverCounterMap {
 public:
  DriverCounterMap() = default;
  explicit DriverCounterMap(const std::vector<std::string>& names);

  std::size_t size() const { return names_; }
  // Pure. Precondition: values.size() == size().
  DriverCounters apply(std::span<const std::uint64_t> values) const;

 private:
  struct Drops {
    std::optional<std::size_t> total;
    std::vector<std::size_t> queues;
  };
  std::size_t names_ = 0;
  std::array<std::optional<std::size_t>, kAllowanceCount> allowance_;
  std::optional<std::size_t> conntrack_available_;
  Drops receive_;
  Drops transmit_;
};

// Reads driver counters through one socket of the caller's network namespace. Caches each
// device's names and re-reads them when its number of statistics changes (queues added).
// Loop thread only; not thread-safe.
class EthtoolReader {
 public:
  // Names and values of one reading.
  struct Stats {
    std::vector<std::string> names;
    std::vector<std::uint64_t> values;
  };

  EthtoolReader();
  EthtoolReader(const EthtoolReader&) = delete;
  EthtoolReader& operator=(const EthtoolReader&) = delete;

  // Every statistic of `device`. nullopt when the device has none (EOPNOTSUPP, or a count of 0)
  // or is gone (ENODEV). Errors name the device and the failing request.
  Result<std::optional<Stats>> read_all(const std::string& device);

  // The kept counters of `device`, nullopt as read_all() says; the names are read again only
  // when the number of statistics changed.
  Result<std::optional<DriverCounters>> read(const std::string& device);

  // The name of the device's driver (ETHTOOL_GDRVINFO: "veth", "virtio_net", "ena", "bridge");
  // nullopt when the device has no driver information or is gone.
  Result<std::optional<std::string>> driver(const std::string& device);

  // Forgets devices not in `present` (names of devices that went away).
  void keep_only(std::span<const std::string> present);

  // ioctl calls made so far (tests and benchmarks: a steady reading costs two).
  std::uint64_t calls() const { return calls_; }

 private:
  struct Cached {
    std::uint32_t count = 0;
    DriverCounterMap map;
  };
  // nullopt: none (as above).
  Result<std::optional<std::uint32_t>> count(const std::string& device);
  Result<std::optional<std::vector<std::string>>> names(const std::string& device,
                                                        std::uint32_t count);
  Result<std::optional<std::vector<std::uint64_t>>> values(const std::string& device,
                                                           std::uint32_t count);
  // Runs one request; errno on failure.
  int request(const std::string& device, void* data);

  FileDescriptor fd_;
  int socket_errno_ = 0;
  std::map<std::string, Cached, std::less<>> cache_;
  std::uint64_t calls_ = 0;
};

}  // namespace mcb
