// parse_config over YAML text; a parsed config's watched ports are computed too.
// seeds: config/mcbacklogd.example.yaml tests/fuzz/corpus/config

#include "config/config.hpp"
#include "daemon/alerts/rules.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto c = mcb::parse_config(mcb::fuzz::text(data, size), "fuzz.yaml", mcb::alert_schemas());
  if (c) (void)c->watched_ports();
  return 0;
}
