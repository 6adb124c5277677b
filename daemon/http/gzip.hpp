#pragma once
// gzip compression of response bodies (zlib). Pure; thread-safe.

#include <string>
#include <string_view>

namespace mcb {

// Compresses `data` into a gzip member. Favours speed: the body is compressed once per sample.
std::string gzip_compress(std::string_view data);

// True if an Accept-Encoding header value accepts gzip: its first "gzip" token has a q that is not
// 0, or, with no "gzip" token, its first "*" has (RFC 9110 12.5.3: "gzip;q=0, *" refuses gzip).
// The q parameter may follow others ("gzip;level=1;q=0").
bool accepts_gzip(std::string_view accept_encoding);

}  // namespace mcb
