#include "config/bit_rate.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace mcb {
namespace {

constexpr std::string_view kExample = "e.g. 10Gbit, 2.5Gbps, 100Mbit";

double prefix_factor(char c) {
  switch (c) {
    case 'k':
    case 'K':
      return 1e3;
    case 'm':
    case 'M':
      return 1e6;
    case 'g':
    case 'G':
      return 1e9;
    case 't':
    case 'T':
      return 1e12;
    default:
      return 0;
  }
}

}  // namespace

Result<double> parse_bit_rate(std::string_view text) {
  const std::string expected = std::string("expected bits per second, ") + std::string(kExample);
  std::size_t digits = 0;
  while (digits < text.size() &&
         ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) {
    ++digits;
  }
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (digits == 0 || ec != std::errc() || ptr != text.data() + digits) {
    return fail("not a speed: " + expected);
  }
  std::string_view unit = text.substr(digits);
  if (!unit.empty() && prefix_factor(unit.front()) > 0) {
    value *= prefix_factor(unit.front());
    unit.remove_prefix(1);
  }
  if (!unit.empty() && (unit.front() == 'B' || unit.starts_with("byte"))) {
    return fail("a speed in bytes: write it in bits per second, " + std::string(kExample));
  }
  constexpr std::array<std::string_view, 6> kBits{"", "bit", "bit/s", "bps", "b/s", "b"};
  if (std::find(kBits.begin(), kBits.end(), unit) == kBits.end()) {
    return fail("unknown unit of speed: " + expected);
  }
  if (!(value > 0)) return fail("a speed must be above 0");
  if (value > kMaxBitRate) return fail("a speed above 10Tbit");
  return value;
}

std::string format_bit_rate(double bps) {
  constexpr std::array<std::pair<double, const char*>, 4> kPrefixes{
      {{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}}};
  for (const auto& [factor, prefix] : kPrefixes) {
    if (bps >= factor) return fmt::format("{:g} {}bit/s", bps / factor, prefix);
  }
  return fmt::format("{:g} bit/s", bps);
}

}  // namespace mcb
