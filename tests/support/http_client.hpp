#pragma once
// A minimal blocking HTTP/1.1 client for tests (plain sockets, Connection: close), so tests see
// exactly the bytes the daemon sends. One request per call.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace mcb::test {

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  double seconds = 0;  // request to last byte, for reports (never asserted)
};

using Headers = std::vector<std::pair<std::string, std::string>>;

Result<HttpReply> http_request(const std::string& host, std::uint16_t port,
                               const std::string& method, const std::string& path,
                               const Headers& headers = {},
                               std::chrono::milliseconds timeout = std::chrono::seconds(10));

inline Result<HttpReply> http_get(const std::string& host, std::uint16_t port,
                                  const std::string& path, const Headers& headers = {},
                                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return http_request(host, port, "GET", path, headers, timeout);
}

// A blocking TCP connection to 127.0.0.1:`port`, for tests that write raw bytes; -1 if connect
// fails. The caller closes it.
int connect_loopback(std::uint16_t port);

// Decompresses a gzip body.
std::string gunzip(const std::string& data);

}  // namespace mcb::test
