#include <catch2/catch.hpp>

#include "common/text.hpp"

using namespace mcb;
using namespace std::string_literals;
using namespace std::string_view_literals;

TEST_CASE("text: JSON escaping covers quotes, backslashes and control bytes", "[common][text]") {
  CHECK(json_escape("a\"b\\c\nd\x01") == "a\\\"b\\\\c\\nd\\u0001");
}

TEST_CASE("text: JSON escaping turns bytes that are not UTF-8 into U+FFFD and keeps valid text",
          "[common][text]") {
  CHECK(json_escape("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(json_escape("a\xff"
                    "b") ==
        "a\xef\xbf\xbd"
        "b");
  // A surrogate encoded in three bytes, an overlong '/', a sequence cut short at the end.
  CHECK(is_valid_utf8(json_escape("\xed\xa0\x80 \xc0\xaf \xe2\x82")));
  CHECK(json_escape("\x1b[31m\r\0x"sv) == "\\u001b[31m\\r\\u0000x");
}

TEST_CASE("text: UTF-8 validation refuses overlong forms, surrogates and truncated sequences",
          "[common][text]") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain ascii"));
  CHECK(is_valid_utf8("\xe2\x82\xac \xf0\x9f\x98\x80"));  // euro sign, an emoji
  CHECK_FALSE(is_valid_utf8("\xc0\xaf"));                 // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xed\xa0\x80"));             // U+D800
  CHECK_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));         // past U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xe2\x82"));                 // cut short
  CHECK_FALSE(is_valid_utf8("\x80"));                     // a lone continuation byte
  // Each maximal ill-formed part becomes one U+FFFD.
  CHECK(to_valid_utf8("a\xe2\x82z\xff") == "a\xef\xbf\xbdz\xef\xbf\xbd");
  CHECK(to_valid_utf8("ok") == "ok");
}

TEST_CASE("text: a printable name is valid UTF-8 without control characters", "[common][text]") {
  CHECK(is_printable_utf8("main cache (caf\xc3\xa9)"));
  CHECK_FALSE(is_printable_utf8("a\nb"));
  CHECK_FALSE(is_printable_utf8("a\x7f"));
  CHECK_FALSE(
      is_printable_utf8("a\xc2\x9b"
                        "2J"));  // U+009B, the C1 CSI
  CHECK_FALSE(is_printable_utf8("a\xff"));
  // Characters that reorder what a terminal shows: U+202E, U+2066, U+2028.
  for (const char* steering : {"a\xe2\x80\xae"
                               "b",
                               "a\xe2\x81\xa6"
                               "b",
                               "a\xe2\x80\xa8"
                               "b"}) {
    CHECK_FALSE(is_printable_utf8(steering));
  }
}

TEST_CASE(
    "text: untrusted bytes are quoted so that no terminal escape, CR or NUL reaches a log raw",
    "[common][text]") {
  const std::string hostile = "VERSION\x1b]0;owned\x07\x1b[2J\rFAKE LOG LINE\n\0\xff\xc2\x9b"s;
  const std::string q = quote_untrusted(hostile);
  INFO(q);
  CHECK(q == R"("VERSION\x1b]0;owned\x07\x1b[2J\rFAKE LOG LINE\n\x00\xff\u{009b}")");
  for (const char c : q) {
    const auto u = static_cast<unsigned char>(c);
    CHECK((u >= 0x20 && u < 0x7f));
  }
  // Printable UTF-8 stays readable; what steers a terminal's display is escaped.
  CHECK(quote_untrusted("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
  CHECK(quote_untrusted("a\xe2\x80\xae"
                        "b") == R"("a\u{202e}b")");
  CHECK(quote_untrusted("say \"hi\" \\o/") == R"("say \"hi\" \\o/")");
  // Long text is cut, and the cut is marked.
  CHECK(quote_untrusted(std::string(100, 'x'), 10) == "\"xxxxxxxxxx\"...");
  CHECK(escape_untrusted(std::string(100, 'x'), 10) == "xxxxxxxxxx...");
  CHECK(quote_untrusted("") == "\"\"");
}
