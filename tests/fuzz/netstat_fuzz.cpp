// parse_netstat over /proc/net/netstat and /proc/net/snmp text, then the sample and its families.
// seeds: tests/fixtures/proc/net

#include "collectors/netstat.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mcb::NetstatSample sample;
  if (mcb::parse_netstat(mcb::fuzz::text(data, size), sample)) {
    (void)mcb::netstat_families(sample);
  }
  return 0;
}
