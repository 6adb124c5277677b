// parse_basic_authorization over an Authorization header value.
// seeds: tests/fuzz/corpus/basic_auth

#include "daemon/http/basic_auth.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (auto c = mcb::parse_basic_authorization(mcb::fuzz::text(data, size))) {
    mcb::fuzz::require(c->user.find(':') == std::string::npos, "the user ends at the first ':'");
    mcb::fuzz::require(c->user.size() + c->password.size() < size, "decoding only shrinks");
  }
  return 0;
}
