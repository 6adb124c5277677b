#include "collectors/unix_diag.hpp"

#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

#include "collectors/netlink_bytes.hpp"

namespace mcb {
namespace {

Status read_attributes(std::span<const std::byte> attributes, UnixDiagSocket& s) {
  std::size_t offset = 0;
  while (offset + sizeof(nlattr) <= attributes.size()) {
    const auto a = load<nlattr>(attributes.subspan(offset));
    if (a.nla_len < sizeof(nlattr) || offset + a.nla_len > attributes.size()) {
      return fail("attribute " + std::to_string(a.nla_type) + " of length " +
                  std::to_string(a.nla_len) + " runs past its message");
    }
    const auto value = attributes.subspan(offset + NLA_HDRLEN, a.nla_len - NLA_HDRLEN);
    switch (a.nla_type & NLA_TYPE_MASK) {
      case UNIX_DIAG_NAME: {
        if (value.empty()) return fail("an empty UNIX_DIAG_NAME");
        std::string name(reinterpret_cast<const char*>(value.data()), value.size());
        if (name.front() == '\0') {
          name.front() = '@';  // an abstract name, written as ss writes it
        } else {
          name.resize(std::strlen(name.c_str()));  // the kernel may count a trailing NUL
        }
        s.path = std::move(name);
        break;
      }
      case UNIX_DIAG_RQLEN: {
        if (value.size() != sizeof(unix_diag_rqlen)) {
          return fail("a UNIX_DIAG_RQLEN of " + std::to_string(value.size()) + " bytes, not " +
                      std::to_string(sizeof(unix_diag_rqlen)));
        }
        const auto q = load<unix_diag_rqlen>(value);
        s.has_queues = true;
        s.rqueue = q.udiag_rqueue;
        s.wqueue = q.udiag_wqueue;
        break;
      }
      default:
        break;
    }
    offset += NLA_ALIGN(a.nla_len);
  }
  return ok_status();
}

}  // namespace

std::vector<std::byte> encode_unix_listeners_request(std::uint32_t seq) {
  std::vector<std::byte> out;
  encode_unix_listeners_request(seq, out);
  return out;
}

void encode_unix_listeners_request(std::uint32_t seq, std::vector<std::byte>& out) {
  unix_diag_req req{};
  req.sdiag_family = AF_UNIX;
  req.udiag_states = std::uint32_t{1} << TCP_LISTEN;
  req.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN;
  nlmsghdr h{};
  h.nlmsg_len = NLMSG_LENGTH(sizeof req);
  h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  h.nlmsg_seq = seq;
  out.clear();
  out.reserve(h.nlmsg_len);
  append(out, h);
  append(out, req);
}

Result<DumpProgress> parse_unix_diag(std::span<const std::byte> datagram, std::uint32_t seq,
                                     std::vector<UnixDiagSocket>& out) {
  return parse_sock_diag(datagram, seq, [&out](std::span<const std::byte> payload) -> Status {
    if (payload.size() < sizeof(unix_diag_msg)) {
      return fail("truncated unix_diag_msg (" + std::to_string(payload.size()) + " of " +
                  std::to_string(sizeof(unix_diag_msg)) + " bytes)");
    }
    const auto m = load<unix_diag_msg>(payload);
    if (m.udiag_family != AF_UNIX) {
      return fail("address family " + std::to_string(m.udiag_family) + " in a unix dump");
    }
    UnixDiagSocket s;
    s.state = m.udiag_state;
    s.inode = m.udiag_ino;
    if (auto st = read_attributes(payload.subspan(NLMSG_ALIGN(sizeof m)), s); !st) return st;
    out.push_back(std::move(s));
    return ok_status();
  });
}

}  // namespace mcb
