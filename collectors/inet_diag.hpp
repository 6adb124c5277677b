#pragma once
// The inet_diag protocol of NETLINK_SOCK_DIAG as pure functions over bytes: the port filter
// compiled to the kernel's bytecode, a dump request for TCP sockets, and the parser of the
// kernel's reply. No I/O here (collectors/netlink.hpp sends and receives), so tests build the
// kernel's replies themselves. Pure functions and plain values: thread-safe.

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <netinet/tcp.h>

#include "common/result.hpp"

namespace mcb {

struct IpAddress {
  int family = 0;                        // AF_INET or AF_INET6
  std::array<std::uint8_t, 16> bytes{};  // network byte order; AF_INET uses the first 4

  auto operator<=>(const IpAddress&) const = default;
};

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d, how a dual-stack listener sees IPv4 peers) as
// the IPv4 address it stands for; any other address unchanged.
IpAddress canonical(const IpAddress& address);

// The text inet_ntop writes ("127.0.0.2", "::1"), of the canonical address.
std::string to_string(const IpAddress& address);

// Pure. An IPv4 or IPv6 address in text ("127.0.0.1", "::1", "::ffff:10.0.0.1"), canonical;
// nullopt for anything else (a host name).
std::optional<IpAddress> parse_ip(std::string_view text);

// One socket of a dump as the kernel reports it (struct inet_diag_msg).
struct DiagSocket {
  std::uint8_t state = 0;  // TCP_ESTABLISHED ... TCP_CLOSING from <netinet/tcp.h>
  IpAddress local;
  IpAddress remote;
  std::uint16_t local_port = 0;  // host byte order
  std::uint16_t remote_port = 0;
  // LISTEN: the accept queue's length and its maximum (ss -ltn Recv-Q and Send-Q). Other
  // states: bytes received but not read by the application, and bytes sent but not acknowledged.
  std::uint32_t rqueue = 0;
  std::uint32_t wqueue = 0;
  std::uint32_t inode = 0;  // idiag_inode: the socket's inode, as /proc/PID/fd links name it
  std::uint32_t uid = 0;    // idiag_uid: the user that owns the socket
  // The socket's drop counter (sk_drops, `ss -m` "d"), when the request asked for memory_info
  // and the kernel sent it. On a LISTEN socket: connections it dropped, its accept queue full
  // among other reasons (the per-listener share of TcpExt ListenDrops).
  std::optional<std::uint32_t> drops = std::nullopt;
};

// Bit masks of TCP states for DiagRequest::states.
constexpr std::uint32_t tcp_state_bit(int state) { return std::uint32_t{1} << state; }
inline constexpr std::uint32_t kAllTcpStates = 0xffffffff;
// Every state of a connection: TCP_ESTABLISHED (1) to TCP_NEW_SYN_RECV (12) but TCP_LISTEN. Not
// the kernel's TCP_BOUND_INACTIVE (13, Linux 6.8 on: bound and nothing else), whose dump walks
// the bind hash table besides the connection table, a quarter more work for sockets never asked.
inline constexpr std::uint32_t kConnectionStates =
    ((std::uint32_t{1} << 13) - 2) & ~tcp_state_bit(TCP_LISTEN);

// Whether a dump's error is the kernel's answer to the request (NLMSG_ERROR, or replies of a type
// no sock_diag request gets), not the socket, the time or the bytes failing.
bool kernel_refused(const Error& error);

// The lower-case name of a TCP state ("established", "time_wait"); "unknown" past TCP_CLOSING.
std::string_view tcp_state_name(int state);

// The most ports one filter holds: each takes 12 bytes and the kernel's jump offsets are 16 bits.
inline constexpr std::size_t kMaxFilterPorts = 4096;

// Compiles "the local port is one of `ports`" to inet_diag bytecode, which the kernel runs on
// each socket so that only matching sockets are copied out. Errors: no ports (a filter that
// matches nothing is a mistake, not a request), or more than kMaxFilterPorts.
Result<std::vector<std::byte>> compile_port_filter(std::span<const std::uint16_t> ports);

struct DiagRequest {
  // AF_INET or AF_INET6: one family per request (SOCK_DIAG_BY_FAMILY, inet_diag_req_v2).
  // AF_UNSPEC: both in one walk of the kernel's tables, through the older TCPDIAG_GETSOCK request
  // (inet_diag_req), which the kernel answers for every family; a dump only, not a lookup.
  int family = 0;
  std::uint32_t states = 0;         // tcp_state_bit(TCP_LISTEN) | ...
  std::vector<std::byte> bytecode;  // from compile_port_filter; empty: every socket
  bool memory_info = false;         // ask for INET_DIAG_SKMEMINFO (DiagSocket::drops)
  // Set: not a dump but the lookup of the one listener bound to this local address and port
  // (the kernel's socket lookup, no walk of any table). `states` and `bytecode` are ignored.
  std::optional<std::pair<IpAddress, std::uint16_t>> listener = std::nullopt;
};

// The netlink message of one TCP request (inet_diag_req_v2, or inet_diag_req for AF_UNSPEC;
// bytecode as INET_DIAG_REQ_BYTECODE, memory_info as the INET_DIAG_SKMEMINFO extension) with
// sequence number `seq`: a dump, or with `listener` the lookup of one socket.
std::vector<std::byte> encode_request(const DiagRequest& request, std::uint32_t seq);
// The same into `out` (replacing what it held), reusing its memory.
void encode_request(const DiagRequest& request, std::uint32_t seq, std::vector<std::byte>& out);

// `not_found`: the kernel answered a lookup with ENOENT (no socket bound there).
enum class DumpProgress { more, done, not_found };

// Parses one datagram of a dump reply, appending its sockets to `out`. A dump spans many
// datagrams; the one holding NLMSG_DONE returns `done`, every other `more`. Errors (the dump
// must then be abandoned): a message cut short or whose length runs past the datagram, a
// sequence number other than `seq`, NLMSG_ERROR or a negative NLMSG_DONE status from the kernel
// (its errno in words), NLMSG_OVERRUN, a message type or address family a TCP dump never has,
// an attribute that runs past its message.
// Messages after NLMSG_DONE are ignored, as is an NLMSG_ERROR of 0 (an acknowledgement). An
// NLMSG_ERROR of ENOENT is `not_found` (the answer to a lookup of a socket that is not there).
Result<DumpProgress> parse_inet_diag(std::span<const std::byte> datagram, std::uint32_t seq,
                                     std::vector<DiagSocket>& out);

// The netlink framing every sock_diag reply shares (inet_diag, unix_diag): walks the messages of
// one datagram as parse_inet_diag describes and hands the payload of each SOCK_DIAG_BY_FAMILY
// message (TCPDIAG_GETSOCK in the reply to an AF_UNSPEC dump) to `on_socket`, whose error (prefixed
// with the message's offset) ends the parse.
using SockDiagHandler = std::function<Status(std::span<const std::byte> payload)>;
Result<DumpProgress> parse_sock_diag(std::span<const std::byte> datagram, std::uint32_t seq,
                                     const SockDiagHandler& on_socket);

}  // namespace mcb
