#include "collectors/netdev.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <unordered_set>

#include "collectors/procfs.hpp"
#include "collectors/sysctl.hpp"
#include "common/families.hpp"
#include "common/text.hpp"

namespace mcb {
namespace {

std::vector<std::string_view> lines(std::string_view text) {
  std::vector<std::string_view> out;
  for (std::string_view line; take_line(text, line);) {
    if (!split_words(line).empty()) out.push_back(line);
  }
  return out;
}

// Where each counter sits in a device line: the column of a name within one direction's group.
struct Columns {
  std::size_t bytes = 0, packets = 0, errors = 0, drops = 0;
};

Result<Columns> columns(const std::vector<std::string_view>& names, std::size_t offset,
                        const char* direction) {
  Columns c;
  const std::pair<std::string_view, std::size_t*> wanted[] = {
      {"bytes", &c.bytes}, {"packets", &c.packets}, {"errs", &c.errors}, {"drop", &c.drops}};
  for (const auto& [name, column] : wanted) {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      return fail(std::string("line 2: no \"") + std::string(name) + "\" column for " + direction);
    }
    *column = offset + static_cast<std::size_t>(it - names.begin());
  }
  return c;
}

double rate_ratio(std::uint64_t now, std::uint64_t before, double seconds, std::uint64_t speed) {
  return static_cast<double>(now - before) / seconds / static_cast<double>(speed);
}

}  // namespace

Result<std::vector<NetdevCounters>> parse_net_dev(std::string_view text) {
  const auto all = lines(text);
  // "Inter-|   Receive ... |  Transmit" then " face |bytes packets ...|bytes packets ...".
  if (all.size() < 2 || all[0].find("Receive") == std::string_view::npos) {
    return fail("line 1: expected the \"Inter-|   Receive |  Transmit\" header");
  }
  const std::string_view header = all[1];
  const auto bar1 = header.find('|');
  const auto bar2 = bar1 == std::string_view::npos ? bar1 : header.find('|', bar1 + 1);
  if (bar2 == std::string_view::npos) {
    return fail("line 2: expected \"face |receive columns|transmit columns\"");
  }
  const auto rx_names = split_words(header.substr(bar1 + 1, bar2 - bar1 - 1));
  const auto tx_names = split_words(header.substr(bar2 + 1));
  auto rx = columns(rx_names, 0, "receive");
  if (!rx) return rx.error();
  auto tx = columns(tx_names, rx_names.size(), "transmit");
  if (!tx) return tx.error();
  const std::size_t expected = rx_names.size() + tx_names.size();

  std::vector<NetdevCounters> out;
  // A device listed twice would give two series of one name, which Prometheus takes one of.
  std::unordered_set<std::string_view> devices;
  devices.reserve(all.size());
  for (std::size_t i = 2; i < all.size(); ++i) {
    const auto where = [i] { return "line " + std::to_string(i + 1); };
    const std::string_view line = all[i];
    const auto colon = line.find(':');  // device names cannot hold ':'
    const auto name = split_words(line.substr(0, colon));
    if (colon == std::string_view::npos || name.size() != 1) {
      return fail(where() + ": expected \"device: counters\"");
    }
    if (!devices.insert(name[0]).second) {
      return fail(where() + ": device " + quote_untrusted(name[0]) + " is listed twice");
    }
    const auto values = split_words(line.substr(colon + 1));
    if (values.size() != expected) {
      return fail(where() + ": " + std::to_string(values.size()) + " values, the header names " +
                  std::to_string(expected));
    }
    std::vector<std::uint64_t> v(values.size());
    for (std::size_t k = 0; k < values.size(); ++k) {
      const std::string_view s = values[k];
      auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v[k]);
      if (ec != std::errc() || ptr != s.data() + s.size()) {
        return fail(where() + ": value " + quote_untrusted(s) + " is not an unsigned integer");
      }
    }
    NetdevCounters c;
    c.device = std::string(name[0]);
    c.receive_bytes = v[rx->bytes];
    c.receive_packets = v[rx->packets];
    c.receive_errors = v[rx->errors];
    c.receive_drops = v[rx->drops];
    c.transmit_bytes = v[tx->bytes];
    c.transmit_packets = v[tx->packets];
    c.transmit_errors = v[tx->errors];
    c.transmit_drops = v[tx->drops];
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::optional<std::uint64_t>> parse_link_speed(std::string_view text) {
  auto mbits = parse_sysctl_value(text);
  if (!mbits) return mbits.error();
  if (*mbits <= 0) return std::optional<std::uint64_t>{};
  return std::optional<std::uint64_t>{static_cast<std::uint64_t>(*mbits) * 1'000'000 / 8};
}

void compute_utilization(NetdevSample& current, const NetdevSample& previous, double seconds) {
  for (NetdevDevice& d : current.devices) {
    if (!d.speed_bytes) continue;
    const auto before =
        std::find_if(previous.devices.begin(), previous.devices.end(),
                     [&](const NetdevDevice& p) { return p.counters.device == d.counters.device; });
    if (before == previous.devices.end()) continue;
    const NetdevCounters& now = d.counters;
    const NetdevCounters& then = before->counters;
    if (now.receive_bytes >= then.receive_bytes) {
      d.receive_utilization =
          rate_ratio(now.receive_bytes, then.receive_bytes, seconds, *d.speed_bytes);
    }
    if (now.transmit_bytes >= then.transmit_bytes) {
      d.transmit_utilization =
          rate_ratio(now.transmit_bytes, then.transmit_bytes, seconds, *d.speed_bytes);
    }
  }
}

DeviceFacts read_device_facts(const std::string& sysfs, const std::string& name) {
  DeviceFacts f;
  f.name = name;
  const std::string dir = sysfs + "/class/net/" + name;
  auto exists = [](const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
  };
  f.known = exists(dir);
  if (!f.known) return f;
  f.backed = exists(dir + "/device");
  f.bond = exists(dir + "/bonding");
  f.bond_member = exists(dir + "/bonding_slave");
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().starts_with("lower_")) {
      f.stacked = true;
      break;
    }
  }
  return f;
}

std::set<std::string, std::less<>> default_selection(std::span<const DeviceFacts> devices) {
  std::set<std::string, std::less<>> out;
  for (const DeviceFacts& d : devices) {
    if ((d.backed && !d.bond_member) || d.bond) out.insert(d.name);
  }
  if (!out.empty()) return out;
  // No NIC of its own: a pod's or container's namespace, whose way out is a veth (or a macvlan,
  // ipvlan) paired with or stacked on a device of another namespace.
  for (const DeviceFacts& d : devices) {
    const bool stackable = d.driver == "macvlan" || d.driver == "ipvlan";
    if (d.driver == "veth" || (stackable && !d.stacked)) out.insert(d.name);
  }
  return out;
}

Families netdev_families(const NetdevSample& s) {
  auto rx_bytes = counter("mcbacklog_network_receive_bytes_total",
                          "Bytes received by the device (/proc/net/dev).");
  auto tx_bytes = counter("mcbacklog_network_transmit_bytes_total",
                          "Bytes transmitted by the device (/proc/net/dev).");
  auto speed = gauge("mcbacklog_network_speed_bytes",
                     "Link speed in bytes per second: collectors.netdev.speeds where configured, "
                     "else /sys/class/net/<device>/speed; absent where neither knows it.");
  auto utilization = gauge("mcbacklog_network_utilization_ratio",
                           "Throughput over the last interval divided by the link speed, per "
                           "direction; absent where the speed is unknown.");
  auto drops = counter("mcbacklog_network_drops_total",
                       "Packets the device or its driver dropped, per direction (/proc/net/dev "
                       "drop).");
  auto errors = counter("mcbacklog_network_errors_total",
                        "Packets with errors, per direction (/proc/net/dev errs).");
  auto allowance = counter("mcbacklog_network_allowance_exceeded_total",
                           "Packets the cloud provider queued or dropped because the instance "
                           "went past a network allowance (AWS ENA's <allowance>"
                           "_allowance_exceeded driver counters, read with the ethtool ioctl).");
  auto conntrack = gauge("mcbacklog_network_conntrack_allowance_available",
                         "Tracked connections the instance may still open before "
                         "conntrack_allowance_exceeded rises (AWS ENA).");
  auto driver_drops = counter("mcbacklog_network_driver_drops_total",
                              "Packets the driver counts as dropped, per direction: its rx_drops/"
                              "tx_drops, else the sum of its per-queue drop counters (ethtool "
                              "statistics; XDP drops excluded).");
  for (const NetdevDevice& d : s.devices) {
    const NetdevCounters& c = d.counters;
    const Labels device{{"device", c.device}};
    const Labels rx{{"device", c.device}, {"direction", "receive"}};
    const Labels tx{{"device", c.device}, {"direction", "transmit"}};
    rx_bytes.add(static_cast<double>(c.receive_bytes), device);
    tx_bytes.add(static_cast<double>(c.transmit_bytes), device);
    if (d.speed_bytes) speed.add(static_cast<double>(*d.speed_bytes), device);
    if (d.receive_utilization) utilization.add(*d.receive_utilization, rx);
    if (d.transmit_utilization) utilization.add(*d.transmit_utilization, tx);
    drops.add(static_cast<double>(c.receive_drops), rx);
    drops.add(static_cast<double>(c.transmit_drops), tx);
    errors.add(static_cast<double>(c.receive_errors), rx);
    errors.add(static_cast<double>(c.transmit_errors), tx);
    if (!d.driver) continue;
    const DriverCounters& dc = *d.driver;
    for (std::size_t a = 0; a < kAllowanceCount; ++a) {
      if (!dc.allowance_exceeded[a]) continue;
      allowance.add(static_cast<double>(*dc.allowance_exceeded[a]),
                    {{"allowance", std::string(allowance_label(static_cast<Allowance>(a)))},
                     {"device", c.device}});
    }
    if (dc.conntrack_allowance_available) {
      conntrack.add(static_cast<double>(*dc.conntrack_allowance_available), device);
    }
    if (dc.receive_drops) driver_drops.add(static_cast<double>(*dc.receive_drops), rx);
    if (dc.transmit_drops) driver_drops.add(static_cast<double>(*dc.transmit_drops), tx);
  }
  Families out;
  for (FamilyBuilder* f : {&rx_bytes, &tx_bytes, &speed, &utilization, &drops, &errors, &allowance,
                           &conntrack, &driver_drops}) {
    std::move(*f).into(out);
  }
  return out;
}

// How often the device facts of the default selection and the link speeds are read again.
constexpr auto kRefresh = std::chrono::minutes(1);

NetdevCollector::NetdevCollector(const NetdevConfig& config, std::string procfs, std::string sysfs,
                                 std::function<Clock::time_point()> now)
    : procfs_(std::move(procfs)),
      sysfs_(std::move(sysfs)),
      net_dev_(procfs_ + "/net/dev"),
      speeds_(config.speeds),
      driver_stats_(config.driver_stats),
      now_(std::move(now)) {
  // Compiled within the configuration's bounds, as the configuration checked them: a pattern
  // that did not pass fails every run with the reason instead of ending the process.
  for (auto [pattern, into] :
       {std::pair{&config.include, &include_}, {&config.exclude, &exclude_}}) {
    if (pattern->empty()) continue;
    auto compiled = compile_bounded_regex(*pattern);
    if (compiled) {
      into->emplace(std::move(*compiled));
    } else {
      regex_error_ = compiled.error().message;
    }
  }
}

bool NetdevCollector::selected(const std::string& device) const {
  if (include_ ? !include_->search(device) : !default_.contains(device)) return false;
  return !(exclude_ && exclude_->search(device));
}

void NetdevCollector::refresh_default(const std::vector<NetdevCounters>& devices,
                                      Clock::time_point now) {
  std::vector<std::string> names;
  names.reserve(devices.size());
  for (const NetdevCounters& c : devices) names.push_back(c.device);
  if (default_at_ && names == default_of_ && now < *default_at_ + kRefresh) return;
  std::vector<DeviceFacts> facts;
  facts.reserve(names.size());
  for (const std::string& name : names) {
    DeviceFacts f = read_device_facts(sysfs_, name);
    // The driver's name matters only where nothing backs the device. A device the ioctl cannot
    // describe (gone meanwhile, or not in this namespace) has no driver here.
    if (f.known && !f.backed && !f.bond) {
      if (auto driver = ethtool_.driver(name); driver && *driver) f.driver = **driver;
    }
    facts.push_back(std::move(f));
  }
  default_ = default_selection(facts);
  default_of_ = std::move(names);
  default_at_ = now;
}

Result<std::optional<std::uint64_t>> NetdevCollector::link_speed(const std::string& device) {
  if (const auto known = link_speeds_.find(device); known != link_speeds_.end()) {
    return known->second;
  }
  // Virtual devices and devices that are down fail the read with EINVAL (or EOPNOTSUPP,
  // ENODEV): their speed is unknown, which is not an error.
  const std::string path = sysfs_ + "/class/net/" + device + "/speed";
  auto text = read_optional_file(path, {EINVAL, EOPNOTSUPP, ENODEV});
  if (!text) return text.error();
  std::optional<std::uint64_t> speed;
  if (text->has_value()) {
    auto parsed = parse_link_speed(**text);
    if (!parsed) return fail(escape_untrusted(path, 4096) + ": " + parsed.error().message);
    speed = *parsed;
  }
  link_speeds_.emplace(device, speed);
  return speed;
}

Result<NetdevSample> NetdevCollector::read() {
  if (regex_error_) return fail(*regex_error_);
  auto text = net_dev_.read();
  if (!text) return text.error();
  auto parsed = parse_net_dev(*text);
  if (!parsed) return fail(net_dev_.path() + ": " + parsed.error().message);
  const auto at = now_();
  if (!include_) refresh_default(*parsed, at);
  if (!link_speeds_at_ || at - *link_speeds_at_ >= kRefresh) {
    link_speeds_.clear();
    link_speeds_at_ = at;
  }
  NetdevSample sample;
  std::vector<std::string> watched;
  for (NetdevCounters& c : *parsed) {
    if (!selected(c.device)) continue;
    NetdevDevice d;
    watched.push_back(c.device);
    if (auto speed = link_speed(c.device)) {
      d.speed_bytes = *speed;
    } else {
      d.speed_error = speed.error().message;
    }
    if (d.speed_bytes) d.speed_source = SpeedSource::kDriver;
    if (const auto configured = speeds_.find(c.device); configured != speeds_.end()) {
      d.speed_bytes = static_cast<std::uint64_t>(std::llround(configured->second / 8));
      d.speed_source = SpeedSource::kConfigured;
    }
    if (driver_stats_) {
      auto driver = ethtool_.read(c.device);
      if (driver) {
        d.driver = *driver;
      } else {
        d.driver_error = driver.error().message;
      }
    }
    d.counters = std::move(c);
    sample.devices.push_back(std::move(d));
  }
  if (previous_ && at > previous_->first) {
    compute_utilization(sample, previous_->second,
                        std::chrono::duration<double>(at - previous_->first).count());
  }
  if (driver_stats_) ethtool_.keep_only(watched);
  previous_.emplace(at, sample);
  return sample;
}

}  // namespace mcb
