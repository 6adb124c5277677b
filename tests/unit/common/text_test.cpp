#include <catch2/catch.hpp>

#include "common/text.hpp"

using namespace mcb;

TEST_CASE("text: JSON escaping covers quotes, backslashes and control bytes", "[common][text]") {
  CHECK(json_escape("a\"b\\c\nd\x01") == "a\\\"b\\\\c\\nd\\u0001");
}
