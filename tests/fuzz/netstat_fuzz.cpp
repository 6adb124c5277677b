// parse_netstat over /proc/net/netstat and /proc/net/snmp text, then the sample and its families.
// seeds: tests/fixtures/proc/net

#include "collectors/netstat.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mcb::NetstatTable table;
  if (mcb::parse_netstat(mcb::fuzz::text(data, size), table)) {
    (void)mcb::netstat_families(mcb::netstat_sample(table));
  }
  return 0;
}
