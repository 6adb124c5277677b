// parse_net_dev over /proc/net/dev text and parse_link_speed over a sysfs speed file, then the
// sample (with a utilisation against itself) and its families.
// seeds: tests/fixtures/proc/net/dev tests/fixtures/sys/class/net

#include "collectors/netdev.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = mcb::fuzz::text(data, size);
  auto speed = mcb::parse_link_speed(text);
  auto counters = mcb::parse_net_dev(text);
  if (!counters) return 0;
  mcb::NetdevSample sample;
  for (auto& c : *counters) {
    mcb::NetdevDevice d;
    d.counters = std::move(c);
    if (speed) d.speed_bytes = *speed;
    sample.devices.push_back(std::move(d));
  }
  mcb::compute_utilization(sample, sample, 1.0);
  (void)mcb::netdev_families(sample);
  return 0;
}
