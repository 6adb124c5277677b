// parse_config over YAML text; a parsed config's watched ports are computed too, and the regexes
// it accepted are compiled by std::regex itself, as the netdev collector would: whatever passes
// the configuration's bounds must compile without exhausting the stack.
// seeds: config/mcbacklogd.example.yaml tests/fuzz/corpus/config

#include <regex>

#include "config/config.hpp"
#include "daemon/alerts/rules.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto c = mcb::parse_config(mcb::fuzz::text(data, size), "fuzz.yaml", mcb::alert_schemas());
  if (!c) return 0;
  (void)c->watched_ports();
  for (const std::string* pattern : {&c->netdev.include, &c->netdev.exclude}) {
    try {
      const std::regex compiled(*pattern, std::regex::ECMAScript);
      (void)std::regex_search("eth0", compiled);
    } catch (const std::regex_error&) {
      mcb::fuzz::require(false, "a regex the configuration accepted compiles");
    }
  }
  return 0;
}
