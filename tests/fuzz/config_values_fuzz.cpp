// The config's value parsers: durations and addresses. What parses formats back to itself.
// seeds: tests/fuzz/corpus/config_values

#include "config/address.hpp"
#include "config/duration.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = mcb::fuzz::text(data, size);
  if (auto d = mcb::parse_duration(text)) {
    auto again = mcb::parse_duration(mcb::format_duration(*d));
    mcb::fuzz::require(again && *again == *d, "a formatted duration parses to itself");
  }
  if (auto e = mcb::parse_target_address(text)) {
    auto again = mcb::parse_target_address(e->to_string());
    mcb::fuzz::require(again && again->to_string() == e->to_string(),
                       "a formatted target address parses to itself");
  }
  if (auto e = mcb::parse_listen_address(text)) {
    auto again = mcb::parse_listen_address(e->to_string());
    mcb::fuzz::require(again && again->to_string() == e->to_string(),
                       "a formatted listen address parses to itself");
  }
  return 0;
}
