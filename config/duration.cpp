#include "config/duration.hpp"

#include <array>
#include <charconv>
#include <limits>

#include "common/text.hpp"

namespace mcb {
namespace {

struct Unit {
  std::string_view name;
  std::int64_t ms;
};

// Largest first, the order Prometheus requires them in.
constexpr std::array<Unit, 7> kUnits{{{"y", 365LL * 24 * 3600 * 1000},
                                      {"w", 7LL * 24 * 3600 * 1000},
                                      {"d", 24LL * 3600 * 1000},
                                      {"h", 3600LL * 1000},
                                      {"m", 60LL * 1000},
                                      {"s", 1000},
                                      {"ms", 1}}};

// Index into kUnits of the unit `rest` starts with, or -1. "ms" must win over "m".
int match_unit(std::string_view rest) {
  if (rest.substr(0, 2) == "ms") return 6;
  for (int i = 0; i < 6; ++i) {
    if (rest.substr(0, 1) == kUnits[i].name) return i;
  }
  return -1;
}

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
  const std::string quoted = quote_untrusted(text);
  if (text == "0") return Duration{0};
  if (text.empty()) return fail("empty duration; expected e.g. \"1s\", \"100ms\", \"1m30s\"");
  std::int64_t total = 0;
  int last = -1;
  std::string_view rest = text;
  while (!rest.empty()) {
    std::int64_t n = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (ec != std::errc() || n < 0) {
      return fail("invalid duration " + quoted + "; expected e.g. \"1s\", \"100ms\", \"1m30s\"");
    }
    rest.remove_prefix(static_cast<std::size_t>(ptr - rest.data()));
    const int unit = match_unit(rest);
    if (unit < 0) {
      return fail("invalid duration " + quoted +
                  ": missing or unknown unit (ms, s, m, h, d, w, y)");
    }
    if (unit <= last) {
      return fail("invalid duration " + quoted + ": units must go from largest to smallest");
    }
    last = unit;
    rest.remove_prefix(kUnits[unit].name.size());
    if (n > (std::numeric_limits<std::int64_t>::max() - total) / kUnits[unit].ms) {
      return fail("duration " + quoted + " is too large");
    }
    total += n * kUnits[unit].ms;
  }
  return Duration{total};
}

std::string format_duration(Duration d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  for (const Unit& u : kUnits) {
    if (ms >= u.ms) {
      out += std::to_string(ms / u.ms);
      out += u.name;
      ms %= u.ms;
    }
  }
  return out;
}

}  // namespace mcb
