#pragma once
// gzip compression of response bodies (zlib). Thread-safe: each thread keeps its own zlib state
// (some 270 KiB) from its first body on, and resets it for the next.

#include <string>
#include <string_view>

namespace mcb {

// Compresses `data` into a gzip member. Favours speed: the body is compressed once per sample.
// Throws std::runtime_error only when zlib cannot allocate its state.
std::string gzip_compress(std::string_view data);

// True if an Accept-Encoding header value accepts gzip (a "gzip" or "*" token whose q is not 0).
bool accepts_gzip(std::string_view accept_encoding);

}  // namespace mcb
