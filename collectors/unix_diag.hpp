#pragma once
// The unix_diag protocol of NETLINK_SOCK_DIAG as pure functions over bytes: the request that
// dumps the listening unix-domain stream sockets with their path (UDIAG_SHOW_NAME) and queues
// (UDIAG_SHOW_RQLEN), and the parser of the kernel's reply. For a listening unix socket the
// kernel reports as its queues the connections waiting for accept() and the listen() backlog,
// as inet_diag does for TCP. No I/O here (collectors/netlink.hpp sends and receives), so tests
// build the kernel's replies themselves. Pure functions and plain values: thread-safe.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "collectors/inet_diag.hpp"
#include "common/result.hpp"

namespace mcb {

// One unix-domain socket of a dump (struct unix_diag_msg and its attributes).
struct UnixDiagSocket {
  std::uint8_t state = 0;   // TCP_LISTEN for a listener (the kernel reuses the TCP numbers)
  std::uint32_t inode = 0;  // the socket's inode, as `ss -x` shows it
  // The path it is bound to, as given to bind(); an abstract name starts with '@'; empty when
  // it is bound to none or the kernel sent no UNIX_DIAG_NAME.
  std::string path;
  bool has_queues = false;  // the kernel sent UNIX_DIAG_RQLEN
  // LISTEN: connections waiting for accept(), and the listen() backlog (0 after listen(fd, 0)).
  std::uint32_t rqueue = 0;
  std::uint32_t wqueue = 0;
};

// The netlink message asking for every listening unix stream socket of the socket's network
// namespace, with its name and queues, with sequence number `seq`.
std::vector<std::byte> encode_unix_listeners_request(std::uint32_t seq);
// The same into `out` (replacing what it held), reusing its memory.
void encode_unix_listeners_request(std::uint32_t seq, std::vector<std::byte>& out);

// Parses one datagram of a unix_diag dump reply, appending its sockets to `out`. Framing,
// progress and errors as parse_inet_diag; besides, an address family other than AF_UNIX, a
// unix_diag_msg cut short, an attribute that runs past its message and a UNIX_DIAG_RQLEN or
// UNIX_DIAG_NAME of the wrong size are errors.
Result<DumpProgress> parse_unix_diag(std::span<const std::byte> datagram, std::uint32_t seq,
                                     std::vector<UnixDiagSocket>& out);

}  // namespace mcb
