// accepts_gzip over an Accept-Encoding header value.
// seeds: tests/fuzz/corpus/accept_encoding

#include "daemon/http/gzip.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)mcb::accepts_gzip(mcb::fuzz::text(data, size));
  return 0;
}
