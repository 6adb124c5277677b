#include "collectors/inet_diag.hpp"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "collectors/netlink_bytes.hpp"

namespace mcb {
namespace {

// The words of the errors kernel_refused() tells apart.
constexpr std::string_view kRefused = "the kernel refused the request: ";
constexpr std::string_view kUnexpectedType = ": unexpected message type ";

IpAddress address_of(std::uint8_t family, const __be32 (&words)[4]) {
  IpAddress a;
  a.family = family;
  std::memcpy(a.bytes.data(), words, family == AF_INET ? 4 : 16);
  return a;
}

// The attributes that follow an inet_diag_msg; reads those DiagSocket holds, skips the rest.
Status read_attributes(std::span<const std::byte> attributes, DiagSocket& s) {
  while (attributes.size() >= NLA_HDRLEN) {
    const auto a = load<nlattr>(attributes);
    if (a.nla_len < NLA_HDRLEN || a.nla_len > attributes.size()) {
      return fail("attribute of length " + std::to_string(a.nla_len) + " does not fit the " +
                  std::to_string(attributes.size()) + " bytes left");
    }
    const auto value = attributes.subspan(NLA_HDRLEN, a.nla_len - NLA_HDRLEN);
    if ((a.nla_type & NLA_TYPE_MASK) == INET_DIAG_SKMEMINFO &&
        value.size() >= (SK_MEMINFO_DROPS + 1) * sizeof(std::uint32_t)) {
      s.drops = load<std::uint32_t>(value.subspan(SK_MEMINFO_DROPS * sizeof(std::uint32_t)));
    }
    attributes = attributes.subspan(std::min<std::size_t>(NLA_ALIGN(a.nla_len), attributes.size()));
  }
  return ok_status();
}

// The text of the errno that a netlink message carries negated. Any int may come, and INT_MIN
// has no negation.
std::string errno_text(int negated) {
  if (negated == std::numeric_limits<int>::min()) {
    return "Unknown error " + std::to_string(-static_cast<long long>(negated));
  }
  return std::strerror(-negated);
}

}  // namespace

std::optional<IpAddress> parse_ip(std::string_view text) {
  const std::string z(text);  // inet_pton wants a terminated string
  IpAddress a;
  for (const int family : {AF_INET, AF_INET6}) {
    if (inet_pton(family, z.c_str(), a.bytes.data()) == 1) {
      a.family = family;
      return canonical(a);
    }
  }
  return std::nullopt;
}

IpAddress canonical(const IpAddress& a) {
  static constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (a.family != AF_INET6 || std::memcmp(a.bytes.data(), kMappedPrefix, 12) != 0) return a;
  IpAddress v4;
  v4.family = AF_INET;
  std::memcpy(v4.bytes.data(), a.bytes.data() + 12, 4);
  return v4;
}

std::string to_string(const IpAddress& address) {
  const IpAddress a = canonical(address);
  char text[INET6_ADDRSTRLEN] = {};
  if (::inet_ntop(a.family, a.bytes.data(), text, sizeof text) == nullptr) return "?";
  return text;
}

std::string_view tcp_state_name(int state) {
  static constexpr std::string_view kNames[] = {
      "unknown",   "established", "syn_sent",   "syn_recv", "fin_wait1", "fin_wait2",
      "time_wait", "close",       "close_wait", "last_ack", "listen",    "closing"};
  if (state < 0 || state > TCP_CLOSING) return kNames[0];
  return kNames[state];
}

Result<std::vector<std::byte>> compile_port_filter(std::span<const std::uint16_t> ports) {
  if (ports.empty()) return fail("a port filter needs at least one port");
  if (ports.size() > kMaxFilterPorts) {
    return fail(std::to_string(ports.size()) + " ports do not fit in one kernel filter (at most " +
                std::to_string(kMaxFilterPorts) + ")");
  }
  // The kernel runs the ops in order: each jumps `yes` bytes forward when its condition holds and
  // `no` bytes otherwise; landing exactly on the end accepts the socket, jumping past it rejects.
  // It also checks that every `no` target is reachable through the `yes` chain, so "a or b" is
  //   [S_EQ a; yes 8, no 12] [port a] [JMP; no: to the end] [S_EQ b; yes 8, no 12] [port b]
  // where a match falls through to the JMP that accepts, and a miss skips it to the next test;
  // the last test's miss jumps 4 bytes past the end.
  constexpr std::uint16_t kTest = 2 * sizeof(inet_diag_bc_op);  // S_EQ and its port
  constexpr std::uint16_t kJump = sizeof(inet_diag_bc_op);
  const std::size_t total = ports.size() * (kTest + kJump) - kJump;
  std::vector<std::byte> bc;
  bc.reserve(total);
  for (std::size_t i = 0; i < ports.size(); ++i) {
    append(bc, inet_diag_bc_op{INET_DIAG_BC_S_EQ, kTest, kTest + kJump});
    append(bc, inet_diag_bc_op{0, 0, ports[i]});
    if (i + 1 < ports.size()) {
      const auto to_end = static_cast<std::uint16_t>(total - bc.size());
      append(bc, inet_diag_bc_op{INET_DIAG_BC_JMP, kJump, to_end});
    }
  }
  return bc;
}

std::vector<std::byte> encode_request(const DiagRequest& request, std::uint32_t seq) {
  std::vector<std::byte> out;
  encode_request(request, seq, out);
  return out;
}

void encode_request(const DiagRequest& request, std::uint32_t seq, std::vector<std::byte>& out) {
  const std::size_t attr_len = request.bytecode.empty() ? 0 : NLA_HDRLEN + request.bytecode.size();
  const std::uint8_t extensions =
      request.memory_info ? static_cast<std::uint8_t>(1U << (INET_DIAG_SKMEMINFO - 1)) : 0;
  out.clear();
  if (request.family == AF_UNSPEC && !request.listener) {
    // The kernel's older request: it dumps every family in one walk (inet_diag_dump_compat).
    nlmsghdr h{};
    h.nlmsg_len =
        static_cast<std::uint32_t>(NLMSG_LENGTH(sizeof(inet_diag_req)) + NLA_ALIGN(attr_len));
    h.nlmsg_type = TCPDIAG_GETSOCK;
    h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    h.nlmsg_seq = seq;
    inet_diag_req r{};
    r.idiag_family = AF_UNSPEC;
    r.idiag_ext = extensions;
    r.idiag_states = request.states;
    out.reserve(h.nlmsg_len);
    append(out, h);
    append(out, r);
  } else {
    nlmsghdr h{};
    h.nlmsg_len =
        static_cast<std::uint32_t>(NLMSG_LENGTH(sizeof(inet_diag_req_v2)) + NLA_ALIGN(attr_len));
    h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    h.nlmsg_flags = request.listener ? NLM_F_REQUEST : NLM_F_REQUEST | NLM_F_DUMP;
    h.nlmsg_seq = seq;
    inet_diag_req_v2 r{};
    r.sdiag_family = static_cast<std::uint8_t>(request.family);
    r.sdiag_protocol = IPPROTO_TCP;
    r.idiag_states = request.states;
    if (request.listener) {
      // The kernel looks up (src, sport) as a local address and port with no peer: a listener.
      const auto& [address, port] = *request.listener;
      const IpAddress a =
          address.family == request.family ? address : IpAddress{request.family, {}};
      r.id.idiag_sport = htons(port);
      std::memcpy(r.id.idiag_src, a.bytes.data(), sizeof r.id.idiag_src);
      r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
      r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
      r.idiag_states = kAllTcpStates;
    }
    r.idiag_ext = extensions;
    out.reserve(h.nlmsg_len);
    append(out, h);
    append(out, r);
  }
  out.resize(NLMSG_ALIGN(out.size()));  // the attribute starts aligned
  const std::size_t length = out.size() + NLA_ALIGN(attr_len);
  if (attr_len != 0) {
    nlattr a{};
    a.nla_len = static_cast<std::uint16_t>(attr_len);
    a.nla_type = INET_DIAG_REQ_BYTECODE;
    append(out, a);
    out.insert(out.end(), request.bytecode.begin(), request.bytecode.end());
  }
  out.resize(length);  // zero padding to the netlink alignment
}

bool kernel_refused(const Error& error) {
  return error.message.find(kRefused) != std::string::npos ||
         error.message.find(kUnexpectedType) != std::string::npos;
}

Result<DumpProgress> parse_sock_diag(std::span<const std::byte> datagram, std::uint32_t seq,
                                     const SockDiagHandler& on_socket) {
  std::size_t offset = 0;
  while (offset < datagram.size()) {
    // Only an error builds the text: a dump of 18000 sockets is 18000 messages.
    const auto at = [offset] { return "netlink message at byte " + std::to_string(offset); };
    const auto rest = datagram.subspan(offset);
    if (rest.size() < sizeof(nlmsghdr)) {
      return fail(at() + ": truncated header (" + std::to_string(rest.size()) + " bytes)");
    }
    const auto h = load<nlmsghdr>(rest);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > rest.size()) {
      return fail(at() + ": length " + std::to_string(h.nlmsg_len) + " does not fit the " +
                  std::to_string(rest.size()) + " bytes left");
    }
    if (h.nlmsg_seq != seq) {
      return fail(at() + ": reply to request " + std::to_string(h.nlmsg_seq) + ", expected " +
                  std::to_string(seq));
    }
    const auto payload = rest.subspan(sizeof(nlmsghdr), h.nlmsg_len - sizeof(nlmsghdr));
    switch (h.nlmsg_type) {
      case NLMSG_DONE: {
        // The dump's status follows as an int; a reply without one is taken as success.
        if (payload.size() >= sizeof(int)) {
          const int status = load<int>(payload);
          if (status < 0) {
            return fail("the kernel ended the dump with: " + errno_text(status));
          }
        }
        return DumpProgress::done;
      }
      case NLMSG_ERROR: {
        if (payload.size() < sizeof(int)) return fail(at() + ": truncated error message");
        const int error = load<int>(payload);
        if (error == -ENOENT) return DumpProgress::not_found;
        if (error < 0) {
          return fail(std::string(kRefused) + errno_text(error));
        }
        break;  // 0 acknowledges a request
      }
      case NLMSG_NOOP:
        break;
      case NLMSG_OVERRUN:
        return fail(at() + ": the kernel reports lost data (NLMSG_OVERRUN)");
      case SOCK_DIAG_BY_FAMILY:
      case TCPDIAG_GETSOCK:  // the reply to an AF_UNSPEC dump
        if (auto st = on_socket(payload); !st) return fail(at() + ": " + st.error().message);
        break;
      default:
        return fail(at() + std::string(kUnexpectedType) + std::to_string(h.nlmsg_type));
    }
    offset += std::min<std::size_t>(NLMSG_ALIGN(h.nlmsg_len), rest.size());
  }
  return DumpProgress::more;
}

Result<DumpProgress> parse_inet_diag(std::span<const std::byte> datagram, std::uint32_t seq,
                                     std::vector<DiagSocket>& out) {
  return parse_sock_diag(datagram, seq, [&out](std::span<const std::byte> payload) -> Status {
    if (payload.size() < sizeof(inet_diag_msg)) {
      return fail("truncated inet_diag_msg (" + std::to_string(payload.size()) + " of " +
                  std::to_string(sizeof(inet_diag_msg)) + " bytes)");
    }
    const auto m = load<inet_diag_msg>(payload);
    if (m.idiag_family != AF_INET && m.idiag_family != AF_INET6) {
      return fail("address family " + std::to_string(m.idiag_family) + " in a TCP dump");
    }
    DiagSocket s;
    s.state = m.idiag_state;
    s.local = address_of(m.idiag_family, m.id.idiag_src);
    s.remote = address_of(m.idiag_family, m.id.idiag_dst);
    s.local_port = ntohs(m.id.idiag_sport);
    s.remote_port = ntohs(m.id.idiag_dport);
    s.rqueue = m.idiag_rqueue;
    s.wqueue = m.idiag_wqueue;
    s.inode = m.idiag_inode;
    s.uid = m.idiag_uid;
    if (auto st = read_attributes(payload.subspan(NLMSG_ALIGN(sizeof m)), s); !st) return st;
    out.push_back(s);
    return ok_status();
  });
}

}  // namespace mcb
