#include <catch2/catch.hpp>

#include "common/families.hpp"
#include "common/text.hpp"

using namespace mcb;

TEST_CASE("families: the text format is valid UTF-8 whatever a label value or help holds",
          "[common][families]") {
  Families f;
  auto g = gauge("mcbacklog_test", "help with a bad byte \xff");
  g.add(1, {{"target", "bad\xc3(name"}});
  g.add(2, {{"target", "caf\xc3\xa9"}});
  std::move(g).into(f);
  const std::string text = render_families(f);
  INFO(text);
  CHECK(is_valid_utf8(text));
  CHECK(text.find("mcbacklog_test{target=\"bad\xef\xbf\xbd(name\"} 1") != std::string::npos);
  CHECK(text.find("mcbacklog_test{target=\"caf\xc3\xa9\"} 2") != std::string::npos);
  CHECK(text.find("# HELP mcbacklog_test help with a bad byte \xef\xbf\xbd") != std::string::npos);
}
