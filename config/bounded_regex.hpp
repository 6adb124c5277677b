#pragma once
// Regular expressions from the configuration: RE2 syntax (close to Go's regexp, which Prometheus
// and node_exporter use), over bytes (Latin-1: '.' matches any byte of a device name), matched by
// RE2 in time linear in the text whatever the pattern. The bounds of config/limits.hpp are
// checked first, so that such a refusal names the limit and the byte where it was passed, and the
// compiled program's size after. Pure; a compiled BoundedRegex is immutable and may be shared
// between threads.

#include <memory>
#include <string_view>

#include "common/result.hpp"

namespace re2 {
class RE2;
}

namespace mcb {

class BoundedRegex {
 public:
  // Whether the pattern matches anywhere in `text` (unanchored, as grep: "^eth" for a prefix).
  bool search(std::string_view text) const;

 private:
  friend Result<BoundedRegex> compile_bounded_regex(std::string_view pattern);
  explicit BoundedRegex(std::shared_ptr<const re2::RE2> re) : re_(std::move(re)) {}
  std::shared_ptr<const re2::RE2> re_;
};

// Checks length, nesting of groups and bracket expressions, and repetition counts. The error
// names the limit and the byte of the pattern where it was passed.
Status check_regex_bounds(std::string_view pattern);

// check_regex_bounds(), then compiles with RE2; a pattern RE2 refuses (a syntax error, a
// quantifier on a quantifier such as "a**", a Perl feature RE2 does not have such as a
// back-reference, nested counts whose product passes 1000) is an error with RE2's reason,
// escaped (it quotes the pattern); so is a program of more than kMaxRegexProgramSize
// instructions.
Result<BoundedRegex> compile_bounded_regex(std::string_view pattern);

}  // namespace mcb
