#include "config/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <charconv>

#include "common/text.hpp"
#include "config/limits.hpp"

namespace mcb {

static_assert(kMaxUnixPathBytes + 1 == sizeof(sockaddr_un::sun_path));

namespace {

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

// A host name or an IPv4 address: letters, digits, '.', '-', '_'.
bool valid_name(std::string_view host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), name_char);
}

// What may stand between brackets: an IPv6 address, with a zone after '%' ("fe80::1%eth0").
bool valid_ipv6(std::string_view host) {
  const auto percent = host.find('%');
  const std::string_view address = host.substr(0, percent);
  auto ipv6_char = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
           c == '.';
  };
  if (address.find(':') == std::string_view::npos ||
      !std::all_of(address.begin(), address.end(), ipv6_char)) {
    return false;
  }
  return percent == std::string_view::npos || valid_name(host.substr(percent + 1));
}

Result<Endpoint> split_host_port(std::string_view text, bool host_required, bool port_zero_ok) {
  const std::string quoted = quote_untrusted(text);
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return fail("address " + quoted + ": missing ']'");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return fail("address " + quoted + ": expected \"[host]:port\"");
    }
    if (!valid_ipv6(host)) {
      return fail("address " + quoted + ": brackets must hold an IPv6 address");
    }
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return fail("address " + quoted + ": expected \"host:port\"");
    }
    host = text.substr(0, colon);
    if (text.find("://") != std::string_view::npos) {
      return fail("address " + quoted + ": no scheme (tcp://, memcache://); write \"host:port\"");
    }
    if (host.find(':') != std::string_view::npos) {
      return fail("address " + quoted + ": put an IPv6 host in brackets, e.g. \"[::1]:11211\"");
    }
    if (!host.empty() && !valid_name(host)) {
      return fail("address " + quoted + ": " + quote_untrusted(host) +
                  " is not a host name or an IP address");
    }
    port = text.substr(colon + 1);
  }
  if (host_required && host.empty()) return fail("address " + quoted + ": missing host");
  if (host.size() > kMaxHostBytes) {
    return fail("address " + quoted + ": a host name of " + std::to_string(host.size()) +
                " bytes; at most " + std::to_string(kMaxHostBytes) + " are allowed");
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || value > 65535) {
    return fail("address " + quoted + ": port must be a number from " + (port_zero_ok ? "0" : "1") +
                " to 65535");
  }
  if (value == 0 && !port_zero_ok) {
    return fail("address " + quoted + ": port must be a number from 1 to 65535");
  }
  Endpoint e;
  e.host = std::string(host);
  e.port = static_cast<std::uint16_t>(value);
  return e;
}

}  // namespace

std::string Endpoint::to_string() const {
  if (is_unix()) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<Endpoint> parse_target_address(std::string_view text) {
  constexpr std::string_view kUnixPrefix = "unix:";
  if (text.substr(0, kUnixPrefix.size()) == kUnixPrefix) {
    Endpoint e;
    e.kind = Endpoint::Kind::kUnix;
    e.path = std::string(text.substr(kUnixPrefix.size()));
    if (e.path.empty() || e.path.front() != '/') {
      return fail("address " + quote_untrusted(text) + ": a unix socket needs an absolute path");
    }
    if (e.path.size() > kMaxUnixPathBytes) {
      return fail("address " + quote_untrusted(text) + ": a unix socket path of " +
                  std::to_string(e.path.size()) + " bytes; at most " +
                  std::to_string(kMaxUnixPathBytes) + " fit in a socket address (sun_path)");
    }
    return e;
  }
  return split_host_port(text, /*host_required=*/true, /*port_zero_ok=*/false);
}

Result<Endpoint> parse_listen_address(std::string_view text) {
  auto e = split_host_port(text, /*host_required=*/false, /*port_zero_ok=*/true);
  if (!e || e->host.empty() || e->host == "localhost") return e;
  // A name would be looked up at the start, synchronously and without a deadline (a resolver
  // that does not answer held the start, and SIGTERM, for seconds).
  const std::string host = e->host.substr(0, e->host.find('%'));  // an IPv6 zone follows '%'
  in6_addr any{};
  if (::inet_pton(AF_INET, host.c_str(), &any) != 1 &&
      ::inet_pton(AF_INET6, host.c_str(), &any) != 1) {
    return fail("address " + quote_untrusted(text) +
                ": the host must be an IP address of this host, localhost, or empty for every "
                "address (\":9741\"), not a name to look up");
  }
  return e;
}

}  // namespace mcb
