#pragma once
// The configuration loader as the daemon runs it (with the alert rule table's names and
// defaults), for the config unit tests.

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "config/config.hpp"
#include "daemon/alerts/rules.hpp"

namespace mcb::test {

inline Result<Config> parse_config(std::string_view yaml, std::string_view file) {
  return mcb::parse_config(yaml, file, alert_schemas());
}
inline Result<Config> load_config(const std::string& path) {
  return mcb::load_config(path, alert_schemas());
}

// The error message of a configuration that must be refused.
inline std::string error_of(const std::string& yaml) {
  auto c = parse_config(yaml, "test.yaml");
  REQUIRE_FALSE(c.ok());
  return c.error().message;
}

}  // namespace mcb::test
