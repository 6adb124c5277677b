#include "common/text.hpp"

#include <fmt/format.h>

namespace mcb {

namespace {

// One step of a UTF-8 decoder. On success `length` is the sequence's size and `code` its code
// point; on failure `code` is -1 and `length` the size of the maximal ill-formed subpart (at
// least 1), which becomes one U+FFFD (Unicode 15, section 3.9, "U+FFFD Substitution of Maximal
// Subparts").
struct Decoded {
  long code = -1;
  std::size_t length = 1;
};

Decoded decode(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return {b0, 1};
  std::size_t need = 0;
  long code = 0;
  // The second byte's range depends on the first (Table 3-7); later ones are 0x80..0xBF.
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    need = 1;
    code = b0 & 0x1f;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    need = 2;
    code = b0 & 0x0f;
    if (b0 == 0xe0) lo = 0xa0;  // no overlong forms
    if (b0 == 0xed) hi = 0x9f;  // no surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    need = 3;
    code = b0 & 0x07;
    if (b0 == 0xf0) lo = 0x90;  // no overlong forms
    if (b0 == 0xf4) hi = 0x8f;  // nothing past U+10FFFF
  } else {
    return {};
  }
  for (std::size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return {-1, k};
    const unsigned char b = byte(i + k);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf)) return {-1, k};
    code = (code << 6) | (b & 0x3f);
  }
  return {code, need + 1};
}

bool is_control(long code) { return code < 0x20 || (code >= 0x7f && code <= 0x9f); }

// Characters that are printable but steer how a terminal or a reader shows the text around them.
bool steers_display(long code) {
  return (code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069) ||
         code == 0x2028 || code == 0x2029 || code == 0x200e || code == 0x200f || code == 0x061c;
}

constexpr char kHex[] = "0123456789abcdef";

void hex_byte(std::string& out, unsigned char c) {
  out += "\\x";
  out += kHex[c >> 4];
  out += kHex[c & 0xf];
}

}  // namespace

std::string escape_untrusted(std::string_view bytes, std::size_t max) {
  const std::string_view shown = bytes.substr(0, max);
  std::string out;
  out.reserve(shown.size() + 8);
  for (std::size_t i = 0; i < shown.size();) {
    const Decoded d = decode(shown, i);
    if (d.code < 0) {
      for (std::size_t k = 0; k < d.length; ++k)
        hex_byte(out, static_cast<unsigned char>(shown[i + k]));
    } else if (d.code == '"' || d.code == '\\') {
      out += '\\';
      out += static_cast<char>(d.code);
    } else if (d.code == '\n') {
      out += "\\n";
    } else if (d.code == '\r') {
      out += "\\r";
    } else if (d.code == '\t') {
      out += "\\t";
    } else if (d.code < 0x80 && is_control(d.code)) {
      hex_byte(out, static_cast<unsigned char>(d.code));
    } else if (is_control(d.code) || steers_display(d.code)) {
      out += fmt::format("\\u{{{:04x}}}", d.code);
    } else {
      out.append(shown.substr(i, d.length));
    }
    i += d.length;
  }
  if (bytes.size() > max) out += "...";
  return out;
}

std::string quote_untrusted(std::string_view bytes, std::size_t max) {
  std::string out = "\"" + escape_untrusted(bytes.substr(0, max), max) + "\"";
  if (bytes.size() > max) out += "...";
  return out;
}

bool is_valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const Decoded d = decode(text, i);
    if (d.code < 0) return false;
    i += d.length;
  }
  return true;
}

std::string to_valid_utf8(std::string_view text) {
  if (is_valid_utf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  for (std::size_t i = 0; i < text.size();) {
    const Decoded d = decode(text, i);
    if (d.code < 0) {
      out += "\xef\xbf\xbd";
    } else {
      out.append(text.substr(i, d.length));
    }
    i += d.length;
  }
  return out;
}

bool is_printable_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const Decoded d = decode(text, i);
    if (d.code < 0 || is_control(d.code) || steers_display(d.code)) return false;
    i += d.length;
  }
  return true;
}

std::string_view trim_blanks(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::string printable_or_escaped(std::string text) {
  if (is_printable_utf8(text)) return text;
  return escape_untrusted(text, text.size());
}

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (std::size_t i = 0; i < text.size();) {
    const Decoded d = decode(text, i);
    const std::size_t at = i;
    i += d.length;
    if (d.code < 0) {
      out += "\xef\xbf\xbd";  // U+FFFD: JSON text is UTF-8, and these bytes are not
      continue;
    }
    switch (d.code) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (d.code < 0x20) {
          out += fmt::format("\\u{:04x}", d.code);
        } else {
          out.append(text.substr(at, d.length));
        }
    }
  }
  return out;
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace mcb
