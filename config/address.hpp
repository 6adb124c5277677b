#pragma once
// Endpoint notations used in the config: memcached target addresses ("host:port", "[v6]:port",
// "unix:/path") and HTTP listen addresses (":9741", "host:port", "[v6]:port"). Pure functions;
// thread-safe.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace mcb {

struct Endpoint {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;  // empty for a listen address meaning "every address"; brackets removed
  std::uint16_t port = 0;
  std::string path;  // for kUnix

  bool is_unix() const { return kind == Kind::kUnix; }
  // "host:port" with brackets around IPv6 hosts, or "unix:/path".
  std::string to_string() const;
};

// Parses a memcached target address. Host and port are required for TCP; port 0 is refused.
Result<Endpoint> parse_target_address(std::string_view text);

// Parses an HTTP listen address. An empty host means every address (IPv6 and IPv4); port 0
// asks the kernel for a free port. The host is an IP address, "localhost" or empty: never a name
// that would need a lookup.
Result<Endpoint> parse_listen_address(std::string_view text);

}  // namespace mcb
