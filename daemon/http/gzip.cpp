#include "daemon/http/gzip.hpp"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <stdexcept>

#include "common/text.hpp"

namespace mcb {

std::string gzip_compress(std::string_view data) {
  z_stream zs{};
  // 15 window bits + 16: write a gzip header and trailer instead of a zlib one.
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");  // only on out of memory
  }
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(data.size())));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate did not finish");  // bound is exact
  return out;
}

bool accepts_gzip(std::string_view header) {
  auto iequals = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  };
  // An explicit "gzip" decides; else "*" does (RFC 9110 12.5.3: "gzip;q=0, *" refuses gzip).
  std::optional<bool> gzip;
  std::optional<bool> any;
  while (!header.empty()) {
    const auto comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    auto semi = item.find(';');
    const std::string_view coding = trim_blanks(item.substr(0, semi));
    const bool is_gzip = iequals(coding, "gzip");
    if (!is_gzip && coding != "*") continue;
    std::optional<bool>& decides = is_gzip ? gzip : any;
    if (decides) continue;  // the first of each counts
    bool accepted = true;
    while (semi != std::string_view::npos) {
      item.remove_prefix(semi + 1);
      semi = item.find(';');
      std::string_view param = trim_blanks(item.substr(0, semi));
      if (param.size() < 2 || (param[0] != 'q' && param[0] != 'Q') || param[1] != '=') continue;
      param.remove_prefix(2);
      // q=0, q=0.0, q=0.000 refuse; anything else accepts.
      accepted = param.empty() || param[0] != '0' ||
                 param.find_first_not_of("0.") != std::string_view::npos;
    }
    decides = accepted;
  }
  return gzip ? *gzip : any.value_or(false);
}

}  // namespace mcb
