#pragma once
// Durations in the Prometheus notation ("1s", "100ms", "1m30s", "0"), parsed to milliseconds.
// Pure functions; thread-safe.

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace mcb {

using Duration = std::chrono::milliseconds;

// Accepts a sequence of <integer><unit> with units y, w, d, h, m, s, ms in decreasing order, each
// at most once, or a bare "0". The error says what was expected.
Result<Duration> parse_duration(std::string_view text);

// Formats the shortest Prometheus notation of `d` ("1m30s", "100ms", "0s").
std::string format_duration(Duration d);

}  // namespace mcb
