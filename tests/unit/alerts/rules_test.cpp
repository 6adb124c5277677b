// The rule table: complete, in order, one source for the configuration, the docs and /alerts.

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <set>

#include "daemon/alerts/rules.hpp"
#include "daemon/alerts/rules_doc.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using Catch::Matchers::Contains;

TEST_CASE("rule table: every alert once, in enum order, with every text and a check",
          "[alerts][rules]") {
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < kAlertCount; ++i) {
    const Rule& r = rules()[i];
    INFO(r.name);
    CHECK(static_cast<std::size_t>(r.alert) == i);
    CHECK(&rule(r.alert) == &r);
    CHECK(names.insert(r.name).second);
    CHECK(find_alert(r.name) == r.alert);
    for (std::string_view text :
         {r.cause, r.meaning, r.decided, r.severity, r.check_first, r.remediation, r.unit}) {
      CHECK_FALSE(text.empty());
    }
    CHECK(r.check != nullptr);
    CHECK(r.defaults.window.count() > 0);
  }
  CHECK_FALSE(find_alert("MaxConnectionNear").has_value());
}

TEST_CASE("rule table: the configuration loader's names and defaults are the table's",
          "[alerts][rules]") {
  REQUIRE(alert_schemas().size() == kAlertCount);
  const Config c = default_config();
  for (const Rule& r : rules()) {
    const AlertThreshold& th = c.thresholds.at(std::string(r.name));
    CHECK(th.warning == r.defaults.warning);
    CHECK(th.critical == r.defaults.critical);
    CHECK(th.for_ == r.defaults.for_);
  }
  auto bad = parse_config("thresholds:\n  MaxConnectionNear: { warning: 0.5 }\n", "t.yaml",
                          alert_schemas());
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message, Contains("t.yaml:2:3: thresholds.MaxConnectionNear"));
}

namespace {

// Holds the part of `file` (relative to the source tree) between its "generated" markers to
// `generated`; with MCBACKLOGD_UPDATE_DOCS set, rewrites it first.
void check_generated(const std::string& file, const std::string& generated) {
  const std::string path = test::source_dir() + "/" + file;
  std::string doc = test::read_text_file(path);
  const std::string begin = "<!-- BEGIN GENERATED";
  const std::string end = "<!-- END GENERATED -->";
  const auto b = doc.find(begin);
  const auto e = doc.find(end);
  INFO(file);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  const auto body_start = doc.find("-->\n", b) + 4;
  if (std::getenv("MCBACKLOGD_UPDATE_DOCS") != nullptr) {
    doc = doc.substr(0, body_start) + generated + doc.substr(e);
    std::ofstream(path) << doc;
    WARN("rewritten: " + path);
  }
  CHECK(doc.substr(body_start, e - body_start) == generated);
}

}  // namespace

TEST_CASE("rule table: docs/alerts.md holds the reference generated from the table",
          "[alerts][rules]") {
  check_generated("docs/alerts.md", rules_markdown());
}

TEST_CASE("rule table: the README's alert list is generated from the table", "[alerts][rules]") {
  check_generated("README.md", readme_alert_table());
}

TEST_CASE("rules: numbers in words: whole, three significant figures below 1, else one decimal",
          "[alerts][rules]") {
  CHECK(format_number(850) == "850");
  CHECK(format_number(-3) == "-3");
  CHECK(format_number(0.123) == "0.123");
  CHECK(format_number(0.0001234) == "0.000123");
  CHECK(format_number(0.05) == "0.05");
  CHECK(format_number(12.5) == "12.5");
  CHECK(format_number(12.345) == "12.3");
  CHECK(format_number(1234567) == "1234567");
  CHECK(format_number(1e15) == fmt::format("{}", 1e15));
  CHECK(format_number(12345678901234568.0) == fmt::format("{}", 12345678901234568.0));
  CHECK(format_number(std::nan("")) == "nan");
  CHECK(format_number(std::numeric_limits<double>::infinity()) == "inf");
  // The same figures as printf's %.0f, %.3g and %.1f, over a spread of values.
  for (double v = 1e-7; v < 1e14; v *= 1.37) {
    for (double x : {v, -v}) {
      INFO(x);
      const std::string want = x == std::floor(x) ? fmt::format("{:.0f}", x)
                               : std::fabs(x) < 1 ? fmt::format("{:.3g}", x)
                                                  : fmt::format("{:.1f}", x);
      CHECK(format_number(x) == want);
    }
  }
}
