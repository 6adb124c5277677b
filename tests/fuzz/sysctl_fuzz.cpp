// parse_sysctl_value over the contents of a /proc/sys file.
// seeds: tests/fixtures/proc/sys

#include "collectors/sysctl.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)mcb::parse_sysctl_value(mcb::fuzz::text(data, size));
  return 0;
}
