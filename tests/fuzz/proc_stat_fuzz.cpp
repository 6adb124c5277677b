// parse_proc_stat (/proc/self/stat) and parse_boot_time (/proc/stat) over the same bytes.
// seeds: tests/fixtures/process

#include "daemon/process_metrics.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)mcb::parse_proc_stat(mcb::fuzz::text(data, size));
  (void)mcb::parse_boot_time(mcb::fuzz::text(data, size));
  return 0;
}
