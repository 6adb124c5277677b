#pragma once
// Text helpers shared by every folder: how bytes that came from outside (a peer, a file, a
// request, the configuration) are written into logs, replies, JSON and the Prometheus text
// format. Every such byte goes through quote_untrusted() (or escape_untrusted(), its unquoted
// form) before it reaches a log line or a reply; the JSON and exposition writers make whatever
// they are given valid UTF-8. Pure functions; thread-safe.

#include <cstddef>
#include <string>
#include <string_view>

namespace mcb {

// The most bytes of outside text that one message repeats; the rest is cut, and "..." says so.
inline constexpr std::size_t kQuoteMax = 80;

// Makes outside bytes safe to print: printable ASCII and valid UTF-8 of printable characters
// stay; '"' and '\' are escaped; newline, carriage return and tab become \n, \r, \t; other
// control bytes, DEL and bytes that are not UTF-8 become \xNN; characters that steer a terminal
// or a reader (C1 controls, bidirectional overrides and isolates, the line and paragraph
// separators) become \u{NNNN}. At most `max` input bytes are shown, then "...". The result holds
// no control character and is valid UTF-8, so it can never forge or hide a log line.
std::string escape_untrusted(std::string_view bytes, std::size_t max = kQuoteMax);

// escape_untrusted() in double quotes, the "..." of a cut after the closing quote:
// quote_untrusted("a\r\x1b[2J") == R"("a\r\x1b[2J")".
std::string quote_untrusted(std::string_view bytes, std::size_t max = kQuoteMax);

// `text` without the spaces and tabs around it (HTTP's optional white space, RFC 9110 5.6.3).
std::string_view trim_blanks(std::string_view text);

// True if `text` is well-formed UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF).
bool is_valid_utf8(std::string_view text);

// `text` with every byte that is not part of a well-formed UTF-8 sequence replaced by U+FFFD,
// as the WHATWG decoder does. Returns `text` unchanged when it is valid.
std::string to_valid_utf8(std::string_view text);

// True if `text` is valid UTF-8 and holds no control character (C0, DEL, C1) nor one that steers
// a terminal or a reader (those escape_untrusted() writes as \u{NNNN}): what a name that labels
// series and log lines must be, and what escape_untrusted() would leave as it is but for '"' and
// '\'.
bool is_printable_utf8(std::string_view text);

// `text` as it is when is_printable_utf8(), else escape_untrusted() whole: for text that is mostly
// the daemon's own but may hold outside bytes (a device or namespace name in an alert's evidence)
// on its way to a terminal.
std::string printable_or_escaped(std::string text);

// Escapes a string for inclusion in a JSON string literal. The result is valid UTF-8 whatever
// `text` holds: bytes that are not UTF-8 become U+FFFD.
std::string json_escape(std::string_view text);

// Takes the next line (up to '\n', without it) off the front of `text` into `line`; false, with
// `line` untouched, when `text` is empty. A last line without '\n' is a line too. No allocation;
// `line` points into the text. For the line loops of the /proc parsers:
//   for (std::string_view line; take_line(text, line);) { ... }
inline bool take_line(std::string_view& text, std::string_view& line) {
  if (text.empty()) return false;
  const auto nl = text.find('\n');
  line = text.substr(0, nl);
  text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  return true;
}

// Escapes a string for HTML text and attribute values (& < > " '). Pure.
std::string html_escape(std::string_view text);

}  // namespace mcb
