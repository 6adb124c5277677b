#include "config/bounded_regex.hpp"

#include <re2/re2.h>

#include <charconv>
#include <string>

#include "common/text.hpp"
#include "config/limits.hpp"

namespace mcb {

namespace {

std::string at_byte(std::size_t i) { return " (at byte " + std::to_string(i + 1) + ")"; }

// The end of the bracket expression opened at `open` ('['), or npos when it is not closed (RE2
// then refuses the pattern: "missing ]"). Inside, '\' escapes one character and "[:" opens a
// class that ends at ":]" (without one, the '[' is a literal, as RE2 reads it); a ']' first
// (after an optional '^') is literal.
std::size_t bracket_end(std::string_view p, std::size_t open) {
  std::size_t i = open + 1;
  if (i < p.size() && p[i] == '^') ++i;
  if (i < p.size() && p[i] == ']') ++i;
  while (i < p.size() && p[i] != ']') {
    if (p[i] == '\\') {
      i += 2;
    } else if (p[i] == '[' && i + 1 < p.size() && p[i + 1] == ':' &&
               p.find(":]", i + 2) != std::string_view::npos) {
      i = p.find(":]", i + 2) + 2;
    } else {
      ++i;
    }
  }
  return i < p.size() ? i : std::string_view::npos;
}

// Reads "{n}", "{n,}" or "{n,m}" at `open`; false when the text there is not one (RE2 then
// takes the brace literally).
bool repeat_bounds(std::string_view p, std::size_t open, std::size_t& largest, std::size_t& end) {
  std::size_t i = open + 1;
  auto number = [&](std::size_t& out) {
    const auto [ptr, ec] = std::from_chars(p.data() + i, p.data() + p.size(), out);
    if (ptr == p.data() + i) return false;
    // Too large for size_t is larger than any limit.
    if (ec == std::errc::result_out_of_range) out = static_cast<std::size_t>(-1);
    i = static_cast<std::size_t>(ptr - p.data());
    return true;
  };
  std::size_t n = 0;
  std::size_t m = 0;
  if (!number(n)) return false;
  if (i < p.size() && p[i] == ',') {
    ++i;
    if (i < p.size() && p[i] != '}' && !number(m)) return false;
  }
  if (i >= p.size() || p[i] != '}') return false;
  largest = std::max(n, m);
  end = i;
  return true;
}

}  // namespace

Status check_regex_bounds(std::string_view p) {
  if (p.size() > kMaxRegexBytes) {
    return fail("a regular expression of " + std::to_string(p.size()) + " bytes; at most " +
                std::to_string(kMaxRegexBytes) + " are allowed");
  }
  std::size_t depth = 0;
  auto deeper = [&](std::size_t i) -> Status {
    if (++depth > kMaxRegexNesting) {
      return fail("groups and bracket expressions nested deeper than " +
                  std::to_string(kMaxRegexNesting) + " levels" + at_byte(i));
    }
    return ok_status();
  };
  for (std::size_t i = 0; i < p.size(); ++i) {
    switch (p[i]) {
      case '\\':
        if (i + 1 < p.size() && p[i + 1] == 'Q') {
          // \Q...\E (or to the end): literal text, no group or count in it.
          const auto end = p.find("\\E", i + 2);
          i = end == std::string_view::npos ? p.size() : end + 1;
        } else if (i + 2 < p.size() && (p[i + 1] == 'x' || p[i + 1] == 'p' || p[i + 1] == 'P') &&
                   p[i + 2] == '{') {
          // \x{10FFFF}, \p{Greek}: braces that hold no count.
          const auto end = p.find('}', i + 3);
          i = end == std::string_view::npos ? p.size() : end;
        } else {
          ++i;
        }
        break;
      case '[': {
        if (auto st = deeper(i); !st) return st;
        --depth;  // a bracket expression holds no group
        const auto end = bracket_end(p, i);
        if (end == std::string_view::npos) return ok_status();  // RE2 refuses it: "missing ]"
        i = end;
        break;
      }
      case '(':
        if (auto st = deeper(i); !st) return st;
        break;
      case ')':
        if (depth > 0) --depth;
        break;
      case '{': {
        std::size_t largest = 0;
        std::size_t end = 0;
        if (repeat_bounds(p, i, largest, end)) {
          if (largest > kMaxRegexRepeat) {
            return fail("a repetition count above " + std::to_string(kMaxRegexRepeat) + at_byte(i));
          }
          i = end;
        }
        break;
      }
      default:
        break;
    }
  }
  return ok_status();
}

bool BoundedRegex::search(std::string_view text) const {
  return re2::RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), *re_);
}

Result<BoundedRegex> compile_bounded_regex(std::string_view pattern) {
  if (auto st = check_regex_bounds(pattern); !st) return st.error();
  re2::RE2::Options options;
  options.set_log_errors(false);  // the error is returned, not written to stderr
  // Bytes, not UTF-8: a device name is any bytes, and '.' matches each of them.
  options.set_encoding(re2::RE2::Options::EncodingLatin1);
  auto re =
      std::make_shared<const re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  // RE2 quotes the part of the pattern it refuses: untrusted bytes, escaped for the log.
  if (!re->ok()) return fail("invalid regular expression: " + escape_untrusted(re->error()));
  if (re->ProgramSize() > kMaxRegexProgramSize) {
    return fail("a regular expression that compiles to " + std::to_string(re->ProgramSize()) +
                " instructions; at most " + std::to_string(kMaxRegexProgramSize) +
                " are allowed (counted repetitions copy their operand)");
  }
  return BoundedRegex(std::move(re));
}

}  // namespace mcb
