#pragma once
// Regular expressions from the configuration, compiled only within the bounds of
// config/limits.hpp. libstdc++'s std::regex compiler recurses once per nested group and once per
// term of a sequence, so an unbounded pattern (20,000 nested groups) overflows the stack and ends
// the process; these functions check the bounds first and report any failure as a value. Pure;
// thread-safe.

#include <regex>
#include <string_view>

#include "common/result.hpp"

namespace mcb {

// Checks length, nesting of groups and bracket expressions, repetition counts, and that no
// quantifier follows a quantifier but the '?' of a lazy one ("a**" and "l???" std::regex accepts
// and matches in exponential time). The error names the limit and the byte of the pattern where
// it was passed.
Status check_regex_bounds(std::string_view pattern);

// check_regex_bounds(), then compiles an ECMAScript regex; a pattern std::regex refuses is an
// error with its reason.
Result<std::regex> compile_bounded_regex(std::string_view pattern);

}  // namespace mcb
