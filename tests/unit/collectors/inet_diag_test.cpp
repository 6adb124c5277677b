// The inet_diag protocol: replies built byte by byte here and real ones the kernel sent
// (tests/fixtures/capture_inet_diag.py), and the port filter run through a copy of the kernel's
// own bytecode checker and interpreter.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>

#include "collectors/inet_diag.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using Catch::Matchers::Contains;

namespace {

using Bytes = std::vector<std::byte>;

template <class T>
void put(Bytes& out, const T& value) {
  const auto* p = reinterpret_cast<const std::byte*>(&value);
  out.insert(out.end(), p, p + sizeof value);
}

// One netlink message: header, payload, padding to 4 bytes.
void message(Bytes& out, std::uint16_t type, std::uint32_t seq, const Bytes& payload) {
  nlmsghdr h{};
  h.nlmsg_len = static_cast<std::uint32_t>(NLMSG_LENGTH(payload.size()));
  h.nlmsg_type = type;
  h.nlmsg_flags = NLM_F_MULTI;
  h.nlmsg_seq = seq;
  put(out, h);
  out.insert(out.end(), payload.begin(), payload.end());
  out.resize(NLMSG_ALIGN(out.size()));
}

struct Sock {
  std::uint8_t family = AF_INET;
  std::uint8_t state = TCP_ESTABLISHED;
  const char* local = "127.0.0.1";
  std::uint16_t local_port = 11211;
  const char* remote = "127.0.0.2";
  std::uint16_t remote_port = 40000;
  std::uint32_t rqueue = 0;
  std::uint32_t wqueue = 0;
  std::optional<std::uint32_t> drops = std::nullopt;  // sends INET_DIAG_SKMEMINFO with it
};

// An inet_diag_msg as the kernel sends it, followed by the INET_DIAG_SHUTDOWN attribute every
// reply carries and INET_DIAG_SKMEMINFO when the socket has drops.
Bytes diag_payload(const Sock& s) {
  inet_diag_msg m{};
  m.idiag_family = s.family;
  m.idiag_state = s.state;
  m.id.idiag_sport = htons(s.local_port);
  m.id.idiag_dport = htons(s.remote_port);
  REQUIRE(inet_pton(s.family, s.local, m.id.idiag_src) == 1);
  REQUIRE(inet_pton(s.family, s.remote, m.id.idiag_dst) == 1);
  m.idiag_rqueue = s.rqueue;
  m.idiag_wqueue = s.wqueue;
  Bytes p;
  put(p, m);
  nlattr shutdown{};
  shutdown.nla_len = NLA_HDRLEN + 1;
  shutdown.nla_type = INET_DIAG_SHUTDOWN;
  put(p, shutdown);
  p.push_back(std::byte{0});
  p.resize(NLA_ALIGN(p.size()));
  if (s.drops) {
    std::array<std::uint32_t, SK_MEMINFO_VARS> meminfo{};
    meminfo[SK_MEMINFO_RCVBUF] = 131072;
    meminfo[SK_MEMINFO_DROPS] = *s.drops;
    nlattr a{};
    a.nla_len = NLA_HDRLEN + sizeof meminfo;
    a.nla_type = INET_DIAG_SKMEMINFO;
    put(p, a);
    put(p, meminfo);
  }
  return p;
}

Bytes socks(std::uint32_t seq, const std::vector<Sock>& list) {
  Bytes out;
  for (const Sock& s : list) message(out, SOCK_DIAG_BY_FAMILY, seq, diag_payload(s));
  return out;
}

Bytes done(std::uint32_t seq, int status = 0) {
  Bytes out, p;
  put(p, status);
  message(out, NLMSG_DONE, seq, p);
  return out;
}

Bytes error(std::uint32_t seq, int err) {
  Bytes out, p;
  nlmsgerr e{};
  e.error = err;
  put(p, e);
  message(out, NLMSG_ERROR, seq, p);
  return out;
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& b : parts) out.insert(out.end(), b.begin(), b.end());
  return out;
}

inet_diag_bc_op op_at(const Bytes& bc, std::size_t offset) {
  inet_diag_bc_op op{};
  std::memcpy(&op, bc.data() + offset, sizeof op);
  return op;
}

// inet_diag_bc_audit and valid_cc of net/ipv4/inet_diag.c (Linux 6.x) for the ops a port filter
// uses: what the kernel checks before it accepts a filter.
bool kernel_audit(const Bytes& bc) {
  const int total = static_cast<int>(bc.size());
  auto valid_cc = [&](int cc) {
    int len = total;
    std::size_t at = 0;
    while (len >= 0) {
      if (cc > len) return false;
      if (cc == len) return true;
      const auto op = op_at(bc, at);
      if (op.yes < 4 || (op.yes & 3) != 0) return false;
      len -= op.yes;
      at += op.yes;
    }
    return false;
  };
  int len = total;
  std::size_t at = 0;
  while (len > 0) {
    int min_len = sizeof(inet_diag_bc_op);
    const auto op = op_at(bc, at);
    switch (op.code) {
      case INET_DIAG_BC_S_EQ:
      case INET_DIAG_BC_S_GE:
      case INET_DIAG_BC_S_LE:
        min_len += sizeof(inet_diag_bc_op);
        if (len < min_len) return false;
        break;
      case INET_DIAG_BC_JMP:
      case INET_DIAG_BC_NOP:
        break;
      default:
        return false;
    }
    if (op.code != INET_DIAG_BC_NOP) {
      if (op.no < min_len || op.no > len + 4 || (op.no & 3) != 0) return false;
      if (op.no < len && !valid_cc(len - op.no)) return false;
    }
    if (op.yes < min_len || op.yes > len + 4 || (op.yes & 3) != 0) return false;
    at += op.yes;
    len -= op.yes;
  }
  return len == 0;
}

// inet_diag_bc_run: whether the kernel sends a socket with this local port.
bool kernel_run(const Bytes& bc, std::uint16_t local_port) {
  int len = static_cast<int>(bc.size());
  std::size_t at = 0;
  while (len > 0) {
    const auto op = op_at(bc, at);
    bool yes = true;
    switch (op.code) {
      case INET_DIAG_BC_NOP:
        break;
      case INET_DIAG_BC_JMP:
        yes = false;
        break;
      case INET_DIAG_BC_S_EQ:
        yes = local_port == op_at(bc, at + sizeof op).no;
        break;
      default:
        FAIL("op code the filter should not use: " << int(op.code));
    }
    const int step = yes ? op.yes : op.no;
    len -= step;
    at += static_cast<std::size_t>(step);
  }
  return len == 0;
}

}  // namespace

TEST_CASE("inet_diag: the port filter passes the kernel's checks and matches exactly its ports",
          "[collectors][inet_diag]") {
  const std::vector<std::vector<std::uint16_t>> cases = {
      {11211}, {11211, 11311}, {1, 80, 443, 11211, 65535}};
  for (const auto& ports : cases) {
    INFO(ports.size() << " ports");
    auto bc = compile_port_filter(ports);
    REQUIRE(bc.ok());
    CHECK(bc->size() == ports.size() * 12 - 4);
    CHECK(kernel_audit(*bc));
    for (std::uint16_t p : {0, 1, 79, 80, 81, 443, 11211, 11212, 11311, 65535}) {
      const bool wanted = std::find(ports.begin(), ports.end(), p) != ports.end();
      CHECK(kernel_run(*bc, p) == wanted);
    }
  }
  // The checker is strict where the kernel is: the obvious layout, each test jumping to the next
  // on a miss, has miss targets off the `yes` chain and is refused.
  Bytes naive;
  put(naive, inet_diag_bc_op{INET_DIAG_BC_S_EQ, 16, 8});
  put(naive, inet_diag_bc_op{0, 0, 11211});
  put(naive, inet_diag_bc_op{INET_DIAG_BC_S_EQ, 8, 12});
  put(naive, inet_diag_bc_op{0, 0, 11311});
  CHECK_FALSE(kernel_audit(naive));

  std::vector<std::uint16_t> many(kMaxFilterPorts);
  for (std::size_t i = 0; i < many.size(); ++i) many[i] = static_cast<std::uint16_t>(1000 + i);
  auto largest = compile_port_filter(many);
  REQUIRE(largest.ok());
  CHECK(kernel_audit(*largest));
  CHECK(kernel_run(*largest, 1000));
  CHECK(kernel_run(*largest, static_cast<std::uint16_t>(1000 + kMaxFilterPorts - 1)));
  CHECK_FALSE(kernel_run(*largest, static_cast<std::uint16_t>(1000 + kMaxFilterPorts)));
}

TEST_CASE("inet_diag: a filter of no ports or too many is refused", "[collectors][inet_diag]") {
  CHECK_THAT(compile_port_filter({}).error().message, Contains("at least one port"));
  std::vector<std::uint16_t> too_many(kMaxFilterPorts + 1, 11211);
  CHECK_THAT(compile_port_filter(too_many).error().message, Contains("do not fit"));
}

TEST_CASE("inet_diag: a request carries the family, states and the filter as bytecode",
          "[collectors][inet_diag]") {
  const std::vector<std::uint16_t> ports{11211, 11311};
  DiagRequest r{AF_INET6, tcp_state_bit(TCP_LISTEN), *compile_port_filter(ports)};
  const Bytes m = encode_request(r, 42);
  nlmsghdr h{};
  std::memcpy(&h, m.data(), sizeof h);
  CHECK(h.nlmsg_len == m.size());
  CHECK(m.size() % 4 == 0);
  CHECK(h.nlmsg_type == SOCK_DIAG_BY_FAMILY);
  CHECK(h.nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP));
  CHECK(h.nlmsg_seq == 42);
  inet_diag_req_v2 req{};
  std::memcpy(&req, m.data() + NLMSG_HDRLEN, sizeof req);
  CHECK(req.sdiag_family == AF_INET6);
  CHECK(req.sdiag_protocol == IPPROTO_TCP);
  CHECK(req.idiag_states == (1u << TCP_LISTEN));
  nlattr a{};
  const std::size_t attr_at = NLMSG_HDRLEN + sizeof req;
  std::memcpy(&a, m.data() + attr_at, sizeof a);
  CHECK(a.nla_type == INET_DIAG_REQ_BYTECODE);
  CHECK(a.nla_len == NLA_HDRLEN + r.bytecode.size());
  CHECK(std::equal(r.bytecode.begin(), r.bytecode.end(), m.begin() + attr_at + NLA_HDRLEN));

  CHECK(req.idiag_ext == 0);

  const Bytes plain = encode_request({AF_INET, kAllTcpStates, {}}, 1);
  CHECK(plain.size() == NLMSG_LENGTH(sizeof(inet_diag_req_v2)));

  const Bytes with_memory = encode_request({AF_INET, kAllTcpStates, {}, true}, 1);
  std::memcpy(&req, with_memory.data() + NLMSG_HDRLEN, sizeof req);
  CHECK(req.idiag_ext == 1u << (INET_DIAG_SKMEMINFO - 1));
}

TEST_CASE(
    "inet_diag: an AF_UNSPEC dump is the kernel's older request, which walks once for both "
    "families, and its reply is read like the others",
    "[collectors][inet_diag]") {
  const std::vector<std::uint16_t> ports{11211};
  const DiagRequest r{AF_UNSPEC, kConnectionStates, *compile_port_filter(ports), true};
  const Bytes m = encode_request(r, 9);
  nlmsghdr h{};
  std::memcpy(&h, m.data(), sizeof h);
  CHECK(h.nlmsg_len == m.size());
  CHECK(m.size() % 4 == 0);
  CHECK(h.nlmsg_type == TCPDIAG_GETSOCK);
  CHECK(h.nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP));
  CHECK(h.nlmsg_seq == 9);
  inet_diag_req req{};
  std::memcpy(&req, m.data() + NLMSG_HDRLEN, sizeof req);
  CHECK(req.idiag_family == AF_UNSPEC);
  CHECK(req.idiag_states == r.states);
  CHECK(req.idiag_ext == 1u << (INET_DIAG_SKMEMINFO - 1));
  CHECK(req.id.idiag_sport == 0);
  nlattr a{};
  const std::size_t attr_at = NLMSG_HDRLEN + sizeof req;
  std::memcpy(&a, m.data() + attr_at, sizeof a);
  CHECK(a.nla_type == INET_DIAG_REQ_BYTECODE);
  CHECK(a.nla_len == NLA_HDRLEN + r.bytecode.size());
  CHECK(std::equal(r.bytecode.begin(), r.bytecode.end(), m.begin() + attr_at + NLA_HDRLEN));
  CHECK(encode_request({AF_UNSPEC, kAllTcpStates, {}}, 1).size() ==
        NLMSG_LENGTH(sizeof(inet_diag_req)));

  // The kernel answers with messages of the request's type.
  Bytes reply;
  message(reply, TCPDIAG_GETSOCK, 9, diag_payload({.remote = "127.0.0.2", .remote_port = 40001}));
  message(reply, TCPDIAG_GETSOCK, 9,
          diag_payload({.family = AF_INET6, .local = "::1", .remote = "::1"}));
  reply = concat({reply, done(9)});
  std::vector<DiagSocket> out;
  const auto parsed = parse_inet_diag(reply, 9, out);
  REQUIRE(parsed.ok());
  CHECK(*parsed == DumpProgress::done);
  REQUIRE(out.size() == 2);
  CHECK(to_string(out[0].remote) == "127.0.0.2");
  CHECK(out[1].local.family == AF_INET6);
}

TEST_CASE("inet_diag: the connection states are every state but LISTEN and bound-inactive",
          "[collectors][inet_diag]") {
  for (int state = TCP_ESTABLISHED; state <= TCP_CLOSING; ++state) {
    INFO(tcp_state_name(state));
    CHECK(((kConnectionStates & tcp_state_bit(state)) != 0) == (state != TCP_LISTEN));
  }
  CHECK((kConnectionStates & tcp_state_bit(12)) != 0);  // TCP_NEW_SYN_RECV
  CHECK((kConnectionStates & tcp_state_bit(13)) == 0);  // TCP_BOUND_INACTIVE, Linux 6.8 on
  CHECK((kConnectionStates & tcp_state_bit(0)) == 0);   // no state 0
  CHECK(kernel_refused(Error{"sock_diag: the kernel refused the request: Invalid argument"}));
  CHECK(kernel_refused(Error{"sock_diag: netlink message at byte 0: unexpected message type 16"}));
  CHECK_FALSE(
      kernel_refused(Error{"sock_diag: dump not finished within its deadline after 2 datagrams"}));
}

TEST_CASE("inet_diag: a dump over several datagrams gives every socket and ends at NLMSG_DONE",
          "[collectors][inet_diag]") {
  std::vector<DiagSocket> out;
  const Bytes first = socks(7, {{.state = TCP_LISTEN,
                                 .local = "0.0.0.0",
                                 .remote = "0.0.0.0",
                                 .remote_port = 0,
                                 .rqueue = 6,
                                 .wqueue = 5,
                                 .drops = 125},
                                {.remote = "127.0.0.2", .remote_port = 40001}});
  auto p1 = parse_inet_diag(first, 7, out);
  REQUIRE(p1.ok());
  CHECK(*p1 == DumpProgress::more);
  const Bytes second = concat({socks(7, {{.remote = "127.0.0.3", .wqueue = 70000}}), done(7)});
  auto p2 = parse_inet_diag(second, 7, out);
  REQUIRE(p2.ok());
  CHECK(*p2 == DumpProgress::done);
  REQUIRE(out.size() == 3);
  CHECK(out[0].state == TCP_LISTEN);
  CHECK(to_string(out[0].local) == "0.0.0.0");
  CHECK(out[0].local_port == 11211);
  CHECK(out[0].rqueue == 6);
  CHECK(out[0].wqueue == 5);
  CHECK(out[0].drops == 125u);
  CHECK(out[1].state == TCP_ESTABLISHED);
  CHECK_FALSE(out[1].drops.has_value());  // not sent, not zero
  CHECK(to_string(out[1].remote) == "127.0.0.2");
  CHECK(out[1].remote_port == 40001);
  CHECK(to_string(out[2].remote) == "127.0.0.3");
  CHECK(out[2].wqueue == 70000);
}

TEST_CASE("inet_diag: IPv6 addresses are read whole and IPv4-mapped ones shown as IPv4",
          "[collectors][inet_diag]") {
  std::vector<DiagSocket> out;
  const Bytes d =
      concat({socks(1, {{.family = AF_INET6, .local = "::", .remote = "::ffff:127.0.0.2"},
                        {.family = AF_INET6, .local = "2001:db8::1", .remote = "2001:db8::ff:2"}}),
              done(1)});
  REQUIRE(parse_inet_diag(d, 1, out).ok());
  REQUIRE(out.size() == 2);
  CHECK(out[0].local.family == AF_INET6);
  CHECK(to_string(out[0].local) == "::");
  CHECK(to_string(out[0].remote) == "127.0.0.2");
  CHECK(canonical(out[0].remote).family == AF_INET);
  CHECK(to_string(out[1].local) == "2001:db8::1");
  CHECK(to_string(out[1].remote) == "2001:db8::ff:2");
}

TEST_CASE("inet_diag: errors from the kernel are errors naming the errno",
          "[collectors][inet_diag]") {
  std::vector<DiagSocket> out;
  CHECK_THAT(parse_inet_diag(error(3, -EPERM), 3, out).error().message,
             Contains("the kernel refused the request: Operation not permitted"));
  CHECK_THAT(parse_inet_diag(done(3, -EINTR), 3, out).error().message,
             Contains("the kernel ended the dump with: Interrupted system call"));
  // An errno no kernel sends, which has no negation.
  CHECK_THAT(parse_inet_diag(error(3, INT_MIN), 3, out).error().message,
             Contains("the kernel refused the request: Unknown error 2147483648"));
  CHECK_THAT(parse_inet_diag(done(3, INT_MIN), 3, out).error().message,
             Contains("the kernel ended the dump with: Unknown error 2147483648"));
  Bytes overrun;
  message(overrun, NLMSG_OVERRUN, 3, {});
  CHECK_THAT(parse_inet_diag(overrun, 3, out).error().message, Contains("NLMSG_OVERRUN"));
}

TEST_CASE("inet_diag: acknowledgements, no-ops and what follows NLMSG_DONE are skipped",
          "[collectors][inet_diag]") {
  std::vector<DiagSocket> out;
  Bytes noop;
  message(noop, NLMSG_NOOP, 5, {});
  const Bytes d = concat({error(5, 0), noop, socks(5, {{}}), done(5), socks(5, {{}})});
  auto p = parse_inet_diag(d, 5, out);
  REQUIRE(p.ok());
  CHECK(*p == DumpProgress::done);
  CHECK(out.size() == 1);
  // An old kernel's NLMSG_DONE without a status.
  Bytes bare;
  message(bare, NLMSG_DONE, 5, {});
  CHECK(*parse_inet_diag(bare, 5, out) == DumpProgress::done);
  CHECK(*parse_inet_diag({}, 5, out) == DumpProgress::more);
}

TEST_CASE("inet_diag: truncated and malformed messages are errors saying where",
          "[collectors][inet_diag]") {
  std::vector<DiagSocket> out;
  const Bytes good = concat({socks(9, {{}}), done(9)});

  CHECK_THAT(parse_inet_diag(std::span(good).first(10), 9, out).error().message,
             Contains("byte 0: truncated header (10 bytes)"));
  const std::size_t first_len = NLMSG_ALIGN(NLMSG_LENGTH(diag_payload({}).size()));
  CHECK_THAT(parse_inet_diag(std::span(good).first(first_len - 8), 9, out).error().message,
             Contains("does not fit"));

  Bytes short_len = good;
  const std::uint32_t eight = 8;
  std::memcpy(short_len.data(), &eight, sizeof eight);
  CHECK_THAT(parse_inet_diag(short_len, 9, out).error().message,
             Contains("byte 0: length 8 does not fit"));

  Bytes short_msg;
  message(short_msg, SOCK_DIAG_BY_FAMILY, 9, Bytes(40));
  CHECK_THAT(parse_inet_diag(short_msg, 9, out).error().message,
             Contains("truncated inet_diag_msg (40 of 72 bytes)"));

  CHECK_THAT(parse_inet_diag(good, 10, out).error().message,
             Contains("reply to request 9, expected 10"));

  Bytes unknown;
  message(unknown, 99, 9, {});
  CHECK_THAT(parse_inet_diag(unknown, 9, out).error().message,
             Contains("unexpected message type 99"));

  // An attribute longer than what is left of its message.
  Bytes long_attribute;
  Bytes payload = diag_payload({});
  const std::uint16_t too_long = 200;
  std::memcpy(payload.data() + sizeof(inet_diag_msg), &too_long, sizeof too_long);
  message(long_attribute, SOCK_DIAG_BY_FAMILY, 9, payload);
  CHECK_THAT(parse_inet_diag(long_attribute, 9, out).error().message,
             Contains("byte 0: attribute of length 200 does not fit the 8 bytes left"));

  Bytes unix_family = socks(9, {{}});
  unix_family[NLMSG_HDRLEN] = std::byte{AF_UNIX};
  CHECK_THAT(parse_inet_diag(unix_family, 9, out).error().message,
             Contains("address family 1 in a TCP dump"));
}

TEST_CASE("inet_diag: no cut or corruption of a reply crashes the parser",
          "[collectors][inet_diag]") {
  const Bytes sockets =
      socks(4, {{.drops = 3}, {.family = AF_INET6, .local = "::1", .remote = "::1"}});
  const Bytes not_found = error(4, -ENOENT);
  const Bytes good = concat({sockets, not_found, done(4)});
  for (std::size_t cut = 0; cut <= good.size(); ++cut) {
    std::vector<DiagSocket> out;
    auto p = parse_inet_diag(std::span(good).first(cut), 4, out);
    CHECK(out.size() <= 2);
    // A cut reply never reads as complete; only a cut past the whole ENOENT answer is one.
    const bool whole_enoent = cut >= sockets.size() + not_found.size();
    if (p.ok()) CHECK(*p == (whole_enoent ? DumpProgress::not_found : DumpProgress::more));
  }
  std::mt19937 rng(12345);
  for (int round = 0; round < 2000; ++round) {
    Bytes noisy = good;
    for (int flips = 0; flips < 4; ++flips) {
      noisy[rng() % noisy.size()] = static_cast<std::byte>(rng());
    }
    std::vector<DiagSocket> out;
    (void)parse_inet_diag(noisy, 4, out);
    CHECK(out.size() <= noisy.size() / NLMSG_LENGTH(sizeof(inet_diag_msg)));
  }
}

TEST_CASE("inet_diag: TCP states have the names ss uses, in snake case",
          "[collectors][inet_diag]") {
  CHECK(tcp_state_name(TCP_ESTABLISHED) == "established");
  CHECK(tcp_state_name(TCP_TIME_WAIT) == "time_wait");
  CHECK(tcp_state_name(TCP_LISTEN) == "listen");
  CHECK(tcp_state_name(TCP_CLOSING) == "closing");
  CHECK(tcp_state_name(TCP_CLOSING + 1) == "unknown");
  CHECK(tcp_state_name(0) == "unknown");
}

namespace {

// The datagrams tests/fixtures/capture_inet_diag.py saved for one family ("ipv4", "ipv6"), in
// the order the kernel sent them, parsed as one dump of request 1.
std::vector<DiagSocket> captured_dump(const std::string& family) {
  const std::string dir = test::source_dir() + "/tests/fuzz/corpus/inet_diag/";
  std::size_t datagrams = 0;
  while (std::filesystem::exists(dir + family + "-" + std::to_string(datagrams))) ++datagrams;
  REQUIRE(datagrams > 0);
  std::vector<DiagSocket> out;
  for (std::size_t i = 0; i < datagrams; ++i) {
    INFO(family << "-" << i);
    const std::string bytes = test::read_text_file(dir + family + "-" + std::to_string(i));
    const auto progress = parse_inet_diag(std::as_bytes(std::span(bytes)), 1, out);
    REQUIRE(progress.ok());
    CHECK(*progress == (i + 1 == datagrams ? DumpProgress::done : DumpProgress::more));
  }
  return out;
}

std::size_t count(const std::vector<DiagSocket>& sockets, std::uint8_t state, bool server_side) {
  return static_cast<std::size_t>(std::count_if(sockets.begin(), sockets.end(), [&](auto& s) {
    return s.state == state && (server_side ? s.local_port : s.remote_port) == 11211;
  }));
}

}  // namespace

TEST_CASE("inet_diag: captured dumps hold what the capture script set up",
          "[collectors][inet_diag]") {
  SECTION("IPv4: a listener with 2 waiting, 5 clients, one closed, one with unread bytes") {
    const auto sockets = captured_dump("ipv4");
    REQUIRE(sockets.size() == 11);
    const DiagSocket& l = sockets.front();
    CHECK(l.state == TCP_LISTEN);
    CHECK(to_string(l.local) == "127.0.0.1");
    CHECK(l.local_port == 11211);
    CHECK(l.rqueue == 2);  // accept queue: 5 connected, 3 accepted
    CHECK(l.wqueue == 8);  // the backlog
    CHECK(l.drops == 0u);  // INET_DIAG_SKMEMINFO was asked for
    CHECK(count(sockets, TCP_LISTEN, true) == 1);
    CHECK(count(sockets, TCP_ESTABLISHED, true) == 4);
    CHECK(count(sockets, TCP_CLOSE_WAIT, true) == 1);
    CHECK(count(sockets, TCP_ESTABLISHED, false) == 4);
    CHECK(count(sockets, TCP_FIN_WAIT2, false) == 1);
    CHECK(std::count_if(sockets.begin(), sockets.end(), [](auto& s) {
            return s.state == TCP_ESTABLISHED && s.local_port == 11211 && s.rqueue == 5;
          }) == 1);
    for (const DiagSocket& s : sockets) {
      CHECK(s.local.family == AF_INET);
      // A closed socket in FIN_WAIT2 is a time-wait socket to the kernel: no memory, no drops.
      CHECK(s.drops.has_value() == (s.state != TCP_FIN_WAIT2));
      if (s.state != TCP_LISTEN) CHECK(to_string(s.remote) == "127.0.0.1");
    }
  }
  SECTION("IPv6: a listener with 2 clients, both accepted") {
    const auto sockets = captured_dump("ipv6");
    REQUIRE(sockets.size() == 5);
    const DiagSocket& l = sockets.front();
    CHECK(l.state == TCP_LISTEN);
    CHECK(to_string(l.local) == "::1");
    CHECK(l.local_port == 11211);
    CHECK(l.rqueue == 0);
    CHECK(l.wqueue == 8);
    CHECK(count(sockets, TCP_ESTABLISHED, true) == 2);
    CHECK(count(sockets, TCP_ESTABLISHED, false) == 2);
    for (const DiagSocket& s : sockets) CHECK(s.local.family == AF_INET6);
  }
  SECTION("the sequence number is checked") {
    const std::string bytes =
        test::read_text_file(test::source_dir() + "/tests/fuzz/corpus/inet_diag/ipv4-0");
    std::vector<DiagSocket> out;
    CHECK_THAT(parse_inet_diag(std::as_bytes(std::span(bytes)), 2, out).error().message,
               Contains("reply to request 1, expected 2"));
  }
}
