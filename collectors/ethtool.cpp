#include "collectors/ethtool.hpp"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

namespace mcb {
namespace {

constexpr std::array<std::string_view, kAllowanceCount> kAllowanceLabels{"bw_in", "bw_out", "pps",
                                                                         "conntrack", "linklocal"};
constexpr std::array<std::string_view, kAllowanceCount> kAllowanceStats{
    "bw_in_allowance_exceeded", "bw_out_allowance_exceeded", "pps_allowance_exceeded",
    "conntrack_allowance_exceeded", "linklocal_allowance_exceeded"};
constexpr std::array<std::string_view, kAllowanceCount> kAllowanceMeanings{
    "inbound bandwidth", "outbound bandwidth", "packets per second", "tracked connections",
    "packets to link-local services (DNS, instance metadata, NTP)"};

template <class T>
T load(std::span<const std::byte> bytes, std::size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

std::string too_short(const char* what, std::size_t have, std::size_t need) {
  return std::string(what) + ": a reply of " + std::to_string(have) + " bytes, " +
         std::to_string(need) + " expected";
}

bool digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "rx" or "tx" when `name` is a per-queue drop counter of that direction: "rx_queue_3_drops",
// "rx3_drops" or "queue_3_rx_drops".
std::string_view queue_drops_direction(std::string_view name) {
  constexpr std::string_view kDrops = "_drops";
  if (name.size() <= kDrops.size() || name.substr(name.size() - kDrops.size()) != kDrops) {
    return {};
  }
  const std::string_view stem = name.substr(0, name.size() - kDrops.size());
  for (std::string_view dir : {"rx", "tx"}) {
    const std::string queue_prefix = std::string(dir) + "_queue_";
    if (stem.starts_with(queue_prefix) && digits(stem.substr(queue_prefix.size()))) return dir;
    if (stem.starts_with(dir) && digits(stem.substr(dir.size()))) return dir;
    if (stem.starts_with("queue_")) {
      const std::string_view rest = stem.substr(6);
      const auto under = rest.find('_');
      if (under != std::string_view::npos && digits(rest.substr(0, under)) &&
          rest.substr(under + 1) == dir) {
        return dir;
      }
    }
  }
  return {};
}

std::optional<std::uint64_t> drops(const auto& d, std::span<const std::uint64_t> values) {
  if (d.total) return values[*d.total];
  if (d.queues.empty()) return std::nullopt;
  std::uint64_t sum = 0;
  for (std::size_t i : d.queues) sum += values[i];
  return sum;
}

}  // namespace

std::string_view allowance_label(Allowance a) { return kAllowanceLabels[static_cast<int>(a)]; }
std::string_view allowance_stat(Allowance a) { return kAllowanceStats[static_cast<int>(a)]; }
std::string_view allowance_meaning(Allowance a) { return kAllowanceMeanings[static_cast<int>(a)]; }

Result<std::uint32_t> parse_sset_info(std::span<const std::byte> reply) {
  constexpr std::size_t kHeader = offsetof(ethtool_sset_info, data);
  if (reply.size() < kHeader) return fail(too_short("ETHTOOL_GSSET_INFO", reply.size(), kHeader));
  const auto mask = load<std::uint64_t>(reply, offsetof(ethtool_sset_info, sset_mask));
  // The kernel clears the bits of the sets the driver does not have; the counts of the sets that
  // remain follow in bit order, and only ETH_SS_STATS is asked for.
  if ((mask & (std::uint64_t{1} << ETH_SS_STATS)) == 0) return 0u;
  if (reply.size() < kHeader + sizeof(std::uint32_t)) {
    return fail(too_short("ETHTOOL_GSSET_INFO", reply.size(), kHeader + sizeof(std::uint32_t)));
  }
  const auto count = load<std::uint32_t>(reply, kHeader);
  if (count > kMaxEthtoolStats) {
    return fail("ETHTOOL_GSSET_INFO: " + std::to_string(count) + " statistics, at most " +
                std::to_string(kMaxEthtoolStats) + " are read");
  }
  return count;
}

Result<std::vector<std::string>> parse_gstrings(std::span<const std::byte> reply) {
  constexpr std::size_t kHeader = offsetof(ethtool_gstrings, data);
  if (reply.size() < kHeader) return fail(too_short("ETHTOOL_GSTRINGS", reply.size(), kHeader));
  const auto set = load<std::uint32_t>(reply, offsetof(ethtool_gstrings, string_set));
  const auto len = load<std::uint32_t>(reply, offsetof(ethtool_gstrings, len));
  if (set != ETH_SS_STATS) {
    return fail("ETHTOOL_GSTRINGS: string set " + std::to_string(set) + ", expected " +
                std::to_string(ETH_SS_STATS) + " (statistics)");
  }
  if (len > kMaxEthtoolStats) {
    return fail("ETHTOOL_GSTRINGS: " + std::to_string(len) + " names, at most " +
                std::to_string(kMaxEthtoolStats) + " are read");
  }
  const std::size_t need = kHeader + std::size_t{len} * kEthtoolNameBytes;
  if (reply.size() < need) return fail(too_short("ETHTOOL_GSTRINGS", reply.size(), need));
  std::vector<std::string> names;
  names.reserve(len);
  for (std::size_t i = 0; i < len; ++i) {
    const char* p = reinterpret_cast<const char*>(reply.data() + kHeader + i * kEthtoolNameBytes);
    names.emplace_back(p, ::strnlen(p, kEthtoolNameBytes));
  }
  return names;
}

Result<std::vector<std::uint64_t>> parse_gstats(std::span<const std::byte> reply) {
  constexpr std::size_t kHeader = offsetof(ethtool_stats, data);
  if (reply.size() < kHeader) return fail(too_short("ETHTOOL_GSTATS", reply.size(), kHeader));
  const auto n = load<std::uint32_t>(reply, offsetof(ethtool_stats, n_stats));
  if (n > kMaxEthtoolStats) {
    return fail("ETHTOOL_GSTATS: " + std::to_string(n) + " values, at most " +
                std::to_string(kMaxEthtoolStats) + " are read");
  }
  const std::size_t need = kHeader + std::size_t{n} * sizeof(std::uint64_t);
  if (reply.size() < need) return fail(too_short("ETHTOOL_GSTATS", reply.size(), need));
  std::vector<std::uint64_t> values(n);
  std::memcpy(values.data(), reply.data() + kHeader, n * sizeof(std::uint64_t));
  return values;
}

bool DriverCounters::empty() const {
  return std::none_of(allowance_exceeded.begin(), allowance_exceeded.end(),
                      [](const auto& v) { return v.has_value(); }) &&
         !conntrack_allowance_available && !receive_drops && !transmit_drops;
}

DriverCounterMap::DriverCounterMap(const std::vector<std::string>& names) : names_(names.size()) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    for (std::size_t a = 0; a < kAllowanceCount; ++a) {
      if (name == kAllowanceStats[a] && !allowance_[a]) allowance_[a] = i;
    }
    if (name == "conntrack_allowance_available" && !conntrack_available_) {
      conntrack_available_ = i;
    }
    if (name == "rx_drops" && !receive_.total) receive_.total = i;
    if (name == "tx_drops" && !transmit_.total) transmit_.total = i;
    const std::string_view dir = queue_drops_direction(name);
    if (dir == "rx") receive_.queues.push_back(i);
    if (dir == "tx") transmit_.queues.push_back(i);
  }
}

DriverCounters DriverCounterMap::apply(std::span<const std::uint64_t> values) const {
  DriverCounters c;
  for (std::size_t a = 0; a < kAllowanceCount; ++a) {
    if (allowance_[a]) c.allowance_exceeded[a] = values[*allowance_[a]];
  }
  if (conntrack_available_) c.conntrack_allowance_available = values[*conntrack_available_];
  c.receive_drops = drops(receive_, values);
  c.transmit_drops = drops(transmit_, values);
  return c;
}

EthtoolReader::EthtoolReader() : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
  if (!fd_.valid()) socket_errno_ = errno;
}

int EthtoolReader::request(const std::string& device, void* data) {
  ifreq ifr{};
  if (device.size() >= sizeof ifr.ifr_name) return ENODEV;
  std::memcpy(ifr.ifr_name, device.data(), device.size());
  ifr.ifr_data = static_cast<char*>(data);
  ++calls_;
  return ::ioctl(fd_.get(), SIOCETHTOOL, &ifr) == 0 ? 0 : errno;
}

namespace {

// Buffers for requests whose reply size the driver decides: the kernel writes as many entries as
// the driver has at that moment, whatever count the request says, so a buffer sized by a count
// read just before leaves room for the driver to have grown in between (queues added).
std::size_t with_headroom(std::uint32_t count) { return std::size_t{count} * 2 + 64; }

bool absent(int err) { return err == EOPNOTSUPP || err == ENODEV || err == ENXIO; }

std::string request_error(const std::string& device, const char* request, int err) {
  return device + ": " + request + ": " + std::strerror(err);
}

}  // namespace

Result<std::optional<std::uint32_t>> EthtoolReader::count(const std::string& device) {
  if (!fd_.valid()) {
    return fail(std::string("no socket for the ethtool ioctl: ") + std::strerror(socket_errno_));
  }
  std::vector<std::uint64_t> buf(4);  // header and one count, 8-byte aligned
  ethtool_sset_info head{};
  head.cmd = ETHTOOL_GSSET_INFO;
  head.sset_mask = std::uint64_t{1} << ETH_SS_STATS;
  std::memcpy(buf.data(), &head, sizeof head);
  if (const int err = request(device, buf.data()); err != 0) {
    if (absent(err)) return std::optional<std::uint32_t>{};
    return fail(request_error(device, "ETHTOOL_GSSET_INFO", err));
  }
  auto n = parse_sset_info(std::as_bytes(std::span(buf)));
  if (!n) return fail(device + ": " + n.error().message);
  if (*n == 0) return std::optional<std::uint32_t>{};
  return std::optional<std::uint32_t>{*n};
}

Result<std::optional<std::vector<std::string>>> EthtoolReader::names(const std::string& device,
                                                                     std::uint32_t count) {
  const std::size_t bytes = offsetof(ethtool_gstrings, data) + with_headroom(count) * 32;
  std::vector<std::uint64_t> buf((bytes + 7) / 8);
  ethtool_gstrings head{};
  head.cmd = ETHTOOL_GSTRINGS;
  head.string_set = ETH_SS_STATS;
  head.len = count;
  std::memcpy(buf.data(), &head, sizeof head);
  if (const int err = request(device, buf.data()); err != 0) {
    if (absent(err)) return std::optional<std::vector<std::string>>{};
    return fail(request_error(device, "ETHTOOL_GSTRINGS", err));
  }
  auto parsed = parse_gstrings(std::as_bytes(std::span(buf)));
  if (!parsed) return fail(device + ": " + parsed.error().message);
  return std::optional<std::vector<std::string>>{std::move(*parsed)};
}

Result<std::optional<std::vector<std::uint64_t>>> EthtoolReader::values(const std::string& device,
                                                                        std::uint32_t count) {
  std::vector<std::uint64_t> buf(1 + with_headroom(count));
  ethtool_stats head{};
  head.cmd = ETHTOOL_GSTATS;
  head.n_stats = count;
  std::memcpy(buf.data(), &head, sizeof head);
  if (const int err = request(device, buf.data()); err != 0) {
    if (absent(err)) return std::optional<std::vector<std::uint64_t>>{};
    return fail(request_error(device, "ETHTOOL_GSTATS", err));
  }
  auto parsed = parse_gstats(std::as_bytes(std::span(buf)));
  if (!parsed) return fail(device + ": " + parsed.error().message);
  return std::optional<std::vector<std::uint64_t>>{std::move(*parsed)};
}

Result<std::optional<std::string>> EthtoolReader::driver(const std::string& device) {
  if (!fd_.valid()) {
    return fail(std::string("no socket for the ethtool ioctl: ") + std::strerror(socket_errno_));
  }
  ethtool_drvinfo info{};
  info.cmd = ETHTOOL_GDRVINFO;
  if (const int err = request(device, &info); err != 0) {
    if (absent(err)) return std::optional<std::string>{};
    return fail(request_error(device, "ETHTOOL_GDRVINFO", err));
  }
  return std::optional<std::string>{
      std::string(info.driver, ::strnlen(info.driver, sizeof info.driver))};
}

Result<std::optional<EthtoolReader::Stats>> EthtoolReader::read_all(const std::string& device) {
  auto n = count(device);
  if (!n) return n.error();
  if (!*n) return std::optional<Stats>{};
  auto got_names = names(device, **n);
  if (!got_names) return got_names.error();
  auto got_values = values(device, **n);
  if (!got_values) return got_values.error();
  if (!*got_names || !*got_values) return std::optional<Stats>{};
  if ((*got_names)->size() != (*got_values)->size()) {
    return fail(device + ": the driver's statistics changed while they were read (" +
                std::to_string((*got_names)->size()) + " names, " +
                std::to_string((*got_values)->size()) + " values)");
  }
  return std::optional<Stats>{Stats{std::move(**got_names), std::move(**got_values)}};
}

Result<std::optional<DriverCounters>> EthtoolReader::read(const std::string& device) {
  auto n = count(device);
  if (!n) return n.error();
  if (!*n) {
    cache_.erase(device);
    return std::optional<DriverCounters>{};
  }
  auto cached = cache_.find(device);
  if (cached == cache_.end() || cached->second.count != **n) {
    auto got = names(device, **n);
    if (!got) return got.error();
    if (!*got) return std::optional<DriverCounters>{};
    cached = cache_.insert_or_assign(device, Cached{**n, DriverCounterMap(**got)}).first;
  }
  auto got = values(device, **n);
  if (!got) return got.error();
  if (!*got) return std::optional<DriverCounters>{};
  if ((*got)->size() != cached->second.map.size()) {
    // The driver grew or shrank between the requests: its names are read again next time.
    cache_.erase(cached);
    return fail(device + ": the driver's statistics changed while they were read");
  }
  return std::optional<DriverCounters>{cached->second.map.apply(**got)};
}

void EthtoolReader::keep_only(std::span<const std::string> present) {
  std::erase_if(cache_, [&](const auto& kv) {
    return std::find(present.begin(), present.end(), kv.first) == present.end();
  });
}

}  // namespace mcb
