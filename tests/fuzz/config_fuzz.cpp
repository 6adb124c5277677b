// parse_config over YAML text; a parsed config's watched ports are computed too, and the regexes
// it accepted are compiled and searched as the netdev collector does: whatever passes the
// configuration must compile, and match in time linear in the device's name.
// seeds: config/mcbacklogd.example.yaml tests/fuzz/corpus/config

#include "config/bounded_regex.hpp"
#include "config/config.hpp"
#include "daemon/alerts/rules.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto c = mcb::parse_config(mcb::fuzz::text(data, size), "fuzz.yaml", mcb::alert_schemas());
  if (!c) return 0;
  (void)c->watched_ports();
  for (const std::string* pattern : {&c->netdev.include, &c->netdev.exclude}) {
    const auto compiled = mcb::compile_bounded_regex(*pattern);
    mcb::fuzz::require(compiled.ok(), "a regex the configuration accepted compiles");
    (void)compiled->search("eth0");
  }
  return 0;
}
