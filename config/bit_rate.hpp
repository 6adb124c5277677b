#pragma once
// Link speeds as people write them ("10Gbit", "2.5Gbps", "100Mbit", "25G"), parsed to bits per
// second. Pure functions; thread-safe.

#include <string>
#include <string_view>

#include "common/result.hpp"

namespace mcb {

// The largest speed accepted, 10 Tbit/s (no NIC is faster).
inline constexpr double kMaxBitRate = 1e13;

// Accepts a positive decimal number, then optionally a decimal (SI) prefix k, M, G or T (either
// case), then optionally "bit", "bit/s", "bps", "b/s" or "b": all bits per second. Bytes ("B",
// "Bps", "GB") are refused with a message saying so, as are units it does not know, zero and
// speeds above kMaxBitRate.
Result<double> parse_bit_rate(std::string_view text);

// "10 Gbit/s", "2.5 Gbit/s", "100 Mbit/s", "512 bit/s".
std::string format_bit_rate(double bits_per_second);

}  // namespace mcb
