#pragma once
// gzip compression of response bodies (zlib). Pure; thread-safe.

#include <string>
#include <string_view>

namespace mcb {

// Compresses `data` into a gzip member. Favours speed: the body is compressed once per sample.
std::string gzip_compress(std::string_view data);

// True if an Accept-Encoding header value accepts gzip (a "gzip" or "*" token whose q is not 0).
bool accepts_gzip(std::string_view accept_encoding);

}  // namespace mcb
