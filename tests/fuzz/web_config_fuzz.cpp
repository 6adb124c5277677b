// parse_web_config_file over YAML text. What it accepts holds only well-formed bcrypt hashes.
// seeds: config/web-config.example.yml tests/fuzz/corpus/web_config

#include "config/web_config_file.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto c = mcb::parse_web_config_file(mcb::fuzz::text(data, size), "/etc/mcbacklogd/web.yml");
  if (!c) return 0;
  for (const auto& [user, hash] : c->basic_auth_users) {
    mcb::fuzz::require(mcb::is_bcrypt_hash(hash), "an accepted hash is a bcrypt hash");
    mcb::fuzz::require(user.find(':') == std::string::npos, "no ':' in an accepted user name");
  }
  if (c->tls) mcb::fuzz::require(!c->tls->cert_file.empty(), "TLS has a certificate");
  return 0;
}
