// The unix_diag protocol: the request checked field by field, replies built byte by byte here
// (as the kernel's unix_diag_fill writes them), malformed ones refused, and one real dump of a
// listening unix socket of this process.

#include <catch2/catch.hpp>

#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>

#include "collectors/netlink.hpp"
#include "collectors/sockdiag.hpp"
#include "collectors/unix_diag.hpp"

using namespace mcb;
using Catch::Matchers::Contains;

namespace {

using Bytes = std::vector<std::byte>;

template <class T>
void put(Bytes& out, const T& value) {
  const auto* p = reinterpret_cast<const std::byte*>(&value);
  out.insert(out.end(), p, p + sizeof value);
}

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

void attribute(Bytes& out, std::uint16_t type, const void* data, std::size_t size) {
  nlattr a{};
  a.nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + size);
  a.nla_type = type;
  put(out, a);
  const auto* p = static_cast<const std::byte*>(data);
  out.insert(out.end(), p, p + size);
  out.resize(NLA_ALIGN(out.size()));
}

struct Unix {
  std::uint8_t family = AF_UNIX;
  std::uint8_t state = TCP_LISTEN;
  std::string name = "/run/memcached/memcached.sock";  // empty: no UNIX_DIAG_NAME
  bool abstract = false;
  std::optional<std::pair<std::uint32_t, std::uint32_t>> queues = std::pair{3u, 1024u};
  std::uint32_t inode = 4242;
};

Bytes payload(const Unix& u) {
  unix_diag_msg m{};
  m.udiag_family = u.family;
  m.udiag_type = SOCK_STREAM;
  m.udiag_state = u.state;
  m.udiag_ino = u.inode;
  Bytes p;
  put(p, m);
  if (!u.name.empty()) {
    std::string name = u.abstract ? std::string(1, '\0') + u.name : u.name;
    attribute(p, UNIX_DIAG_NAME, name.data(), name.size());
  }
  if (u.queues) {
    const unix_diag_rqlen q{u.queues->first, u.queues->second};
    attribute(p, UNIX_DIAG_RQLEN, &q, sizeof q);
  }
  return p;
}

Bytes done_message(std::uint32_t seq) {
  Bytes out;
  Bytes status;
  put(status, 0);
  message(out, NLMSG_DONE, seq, status);
  return out;
}

}  // namespace

TEST_CASE("unix_diag: the request dumps listening unix sockets with their name and queues",
          "[collectors][unix_diag]") {
  const Bytes req = encode_unix_listeners_request(7);
  REQUIRE(req.size() == NLMSG_LENGTH(sizeof(unix_diag_req)));
  nlmsghdr h{};
  std::memcpy(&h, req.data(), sizeof h);
  CHECK(h.nlmsg_type == SOCK_DIAG_BY_FAMILY);
  CHECK(h.nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP));
  CHECK(h.nlmsg_seq == 7);
  unix_diag_req r{};
  std::memcpy(&r, req.data() + NLMSG_HDRLEN, sizeof r);
  CHECK(r.sdiag_family == AF_UNIX);
  CHECK(r.udiag_states == (1u << TCP_LISTEN));
  CHECK(r.udiag_show == (UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN));
}

TEST_CASE("unix_diag: a reply gives each socket's path, state and queues",
          "[collectors][unix_diag]") {
  Bytes d;
  message(d, SOCK_DIAG_BY_FAMILY, 3, payload(Unix{}));
  Unix abstract;
  abstract.name = "memcached";
  abstract.abstract = true;
  abstract.queues = std::pair{0u, 0u};
  message(d, SOCK_DIAG_BY_FAMILY, 3, payload(abstract));
  Unix unnamed;
  unnamed.name.clear();
  unnamed.queues.reset();
  message(d, SOCK_DIAG_BY_FAMILY, 3, payload(unnamed));
  std::vector<UnixDiagSocket> out;
  auto more = parse_unix_diag(d, 3, out);
  REQUIRE(more);
  CHECK(*more == DumpProgress::more);
  REQUIRE(out.size() == 3);
  CHECK(out[0].path == "/run/memcached/memcached.sock");
  CHECK(out[0].state == TCP_LISTEN);
  CHECK(out[0].inode == 4242);
  CHECK(out[0].has_queues);
  CHECK(out[0].rqueue == 3);
  CHECK(out[0].wqueue == 1024);
  CHECK(out[1].path == "@memcached");
  CHECK(out[1].wqueue == 0);
  CHECK(out[2].path.empty());
  CHECK_FALSE(out[2].has_queues);
  auto done = parse_unix_diag(done_message(3), 3, out);
  REQUIRE(done);
  CHECK(*done == DumpProgress::done);
}

TEST_CASE("unix_diag: malformed replies are errors that say what is wrong",
          "[collectors][unix_diag]") {
  std::vector<UnixDiagSocket> out;
  SECTION("a unix_diag_msg cut short") {
    Bytes d;
    Bytes p = payload(Unix{});
    p.resize(sizeof(unix_diag_msg) - 2);
    message(d, SOCK_DIAG_BY_FAMILY, 1, p);
    auto r = parse_unix_diag(d, 1, out);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Contains("truncated unix_diag_msg"));
  }
  SECTION("another address family") {
    Unix u;
    u.family = AF_INET;
    Bytes d;
    message(d, SOCK_DIAG_BY_FAMILY, 1, payload(u));
    auto r = parse_unix_diag(d, 1, out);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Contains("address family 2 in a unix dump"));
  }
  SECTION("a queue attribute of the wrong size") {
    Bytes p;
    put(p, unix_diag_msg{AF_UNIX, SOCK_STREAM, TCP_LISTEN, 0, 1, {0, 0}});
    const std::uint32_t one = 1;
    attribute(p, UNIX_DIAG_RQLEN, &one, sizeof one);
    Bytes d;
    message(d, SOCK_DIAG_BY_FAMILY, 1, p);
    auto r = parse_unix_diag(d, 1, out);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Contains("UNIX_DIAG_RQLEN of 4 bytes"));
  }
  SECTION("an attribute that runs past its message") {
    Bytes p = payload(Unix{});
    nlattr a{};
    a.nla_len = 200;
    a.nla_type = UNIX_DIAG_NAME;
    put(p, a);
    Bytes d;
    message(d, SOCK_DIAG_BY_FAMILY, 1, p);
    auto r = parse_unix_diag(d, 1, out);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Contains("runs past its message"));
  }
  SECTION("a message longer than the datagram") {
    Bytes d;
    message(d, SOCK_DIAG_BY_FAMILY, 1, payload(Unix{}));
    d.resize(d.size() - 8);
    auto r = parse_unix_diag(d, 1, out);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Contains("does not fit"));
  }
  SECTION("a reply to another request") {
    Bytes d;
    message(d, SOCK_DIAG_BY_FAMILY, 9, payload(Unix{}));
    auto r = parse_unix_diag(d, 1, out);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Contains("reply to request 9, expected 1"));
  }
  SECTION("the kernel's refusal, in words") {
    Bytes d;
    Bytes e;
    put(e, -EPERM);
    message(d, NLMSG_ERROR, 1, e);
    auto r = parse_unix_diag(d, 1, out);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Contains("Operation not permitted"));
  }
}

TEST_CASE("unix_diag: listeners are matched by path, sockets sharing one summed",
          "[collectors][unix_diag]") {
  std::vector<UnixDiagSocket> sockets(4);
  sockets[0] = {TCP_LISTEN, 1, "/a.sock", true, 2, 1024};
  sockets[1] = {TCP_LISTEN, 2, "/a.sock", true, 1, 1024};
  sockets[2] = {TCP_LISTEN, 3, "/b.sock", true, 0, 0};
  sockets[3] = {TCP_ESTABLISHED, 4, "/c.sock", true, 9, 9};
  const std::vector<std::string> paths{"/b.sock", "/a.sock", "/c.sock", "/a.sock"};
  const auto l = unix_listeners(sockets, paths, {{"/a.sock", 7}});
  REQUIRE(l.size() == 2);
  CHECK(l[0].address == "unix:/b.sock");
  CHECK(l[0].unix_socket);
  CHECK(l[0].listening);
  CHECK(l[0].queue_max == 0);
  CHECK(l[1].address == "unix:/a.sock");
  CHECK(l[1].queue_length == 3);
  CHECK(l[1].queue_max == 2048);
  CHECK(l[1].queue_peak == 7);
  CHECK(listener_name(l[1]) == "unix:/a.sock");
  const Families f = sockdiag_families(SockdiagSample{l, {}}, std::chrono::milliseconds(100),
                                       std::chrono::seconds(15));
  bool saw_length = false;
  for (const auto& family : f) {
    CHECK(family.name.find("client") == std::string::npos);  // no connection figures
    if (family.name != "mcbacklog_accept_queue_length") continue;
    saw_length = true;
    REQUIRE(family.metric.size() == 2);
    REQUIRE(family.metric[1].label.size() == 1);
    CHECK(family.metric[1].label[0].value == "unix:/a.sock");
  }
  CHECK(saw_length);
}

TEST_CASE("unix_diag: a real dump finds this process's listening socket and its backlog",
          "[collectors][unix_diag]") {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("mcb-unix-diag-" + std::to_string(::getpid())))
          .string();
  ::unlink(path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 7) == 0);
  const int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(::connect(client, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);

  SockDiagSocket diag;
  std::vector<UnixDiagSocket> out;
  auto st =
      diag.dump_unix_listeners(std::chrono::steady_clock::now() + std::chrono::seconds(5), out);
  REQUIRE(st);
  const std::vector<std::string> paths{path};
  const auto l = unix_listeners(out, paths);
  ::close(client);
  ::close(fd);
  ::unlink(path.c_str());
  REQUIRE(l.size() == 1);
  CHECK(l[0].queue_length == 1);  // connected, never accepted
  CHECK(l[0].queue_max == 7);
}
