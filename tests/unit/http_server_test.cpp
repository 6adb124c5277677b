#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "daemon/http_server.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
namespace http = boost::beast::http;

namespace {

// An HttpServer on its own io thread, answering every request with the request target.
class Server {
 public:
  explicit Server(HttpLimits limits, const std::string& address = "127.0.0.1:0")
      : server_(
            io_,
            [this](const HttpRequest& req) {
              ++requests;
              HttpResponse res{http::status::ok, req.version()};
              res.body() = std::string(req.target());
              res.keep_alive(req.keep_alive());
              res.prepare_payload();
              return res;
            },
            limits) {
    auto bound = server_.listen(*parse_listen_address(address));
    REQUIRE(bound.ok());
    bound_ = *bound;
    const auto colon = bound_.at(0).rfind(':');
    port = static_cast<std::uint16_t>(std::stoi(bound_[0].substr(colon + 1)));
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Server() {
    boost::asio::post(io_, [this] { server_.stop(); });
    guard_.reset();
    thread_.join();
  }
  std::size_t sessions() {
    std::promise<std::size_t> p;
    boost::asio::post(io_, [&] { p.set_value(server_.session_count()); });
    return p.get_future().get();
  }
  std::uint16_t port = 0;
  std::atomic<int> requests{0};
  std::vector<std::string> bound_;

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
      io_.get_executor()};
  HttpServer server_;
  std::thread thread_;
};

int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

// Reads until the peer closes or `timeout`; returns what was read and whether it closed.
std::pair<std::string, bool> read_until_close(int fd, std::chrono::milliseconds timeout) {
  std::string out;
  const auto end = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return {out, true};
    out.append(buf, static_cast<std::size_t>(n));
  }
  return {out, false};
}

void send_all(int fd, const std::string& data) {
  REQUIRE(::send(fd, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size()));
}

}  // namespace

TEST_CASE("http server: a kept-alive connection serves several requests", "[daemon][http]") {
  Server s({});
  const int fd = connect_to(s.port);
  send_all(fd,
           "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\nConnection: "
           "close\r\n\r\n");
  auto [out, closed] = read_until_close(fd, 5s);
  ::close(fd);
  CHECK(closed);
  CHECK(out.find("/one") != std::string::npos);
  CHECK(out.find("/two") != std::string::npos);
  CHECK(s.requests == 2);
}

TEST_CASE("http server: an oversized header gets 431 and the connection closes", "[daemon][http]") {
  HttpLimits limits;
  limits.header_limit = 1024;
  Server s(limits);
  const int fd = connect_to(s.port);
  send_all(fd, "GET / HTTP/1.1\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n");
  auto [out, closed] = read_until_close(fd, 5s);
  ::close(fd);
  CHECK(closed);
  CHECK(out.rfind("HTTP/1.1 431", 0) == 0);
  CHECK(s.requests == 0);
}

TEST_CASE("http server: a body over the limit gets 413", "[daemon][http]") {
  HttpLimits limits;
  limits.body_limit = 16;
  Server s(limits);
  const int fd = connect_to(s.port);
  send_all(fd, "POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'b'));
  auto [out, closed] = read_until_close(fd, 5s);
  ::close(fd);
  CHECK(out.rfind("HTTP/1.1 413", 0) == 0);
}

TEST_CASE("http server: a silent connection is closed after the request timeout",
          "[daemon][http]") {
  HttpLimits limits;
  limits.request_timeout = 200ms;
  Server s(limits);
  const int fd = connect_to(s.port);
  auto [out, closed] = read_until_close(fd, 10s);
  ::close(fd);
  CHECK(closed);
  CHECK(out.empty());
}

TEST_CASE("http server: at the session cap the longest-idle connection makes room",
          "[daemon][http]") {
  HttpLimits limits;
  limits.max_sessions = 4;
  Server s(limits);
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(connect_to(s.port));
    REQUIRE(test::eventually([&] { return s.sessions() == idle.size(); }));
  }
  auto reply = test::http_get("127.0.0.1", s.port, "/metrics");
  REQUIRE(reply.ok());
  CHECK(reply->status == 200);
  CHECK(reply->body == "/metrics");
  // The first idle connection was the one dropped.
  CHECK(read_until_close(idle[0], 5s).second);
  for (int fd : idle) ::close(fd);
}

TEST_CASE("http server: an empty host listens on IPv6 and IPv4 at once", "[daemon][http]") {
  const bool has_v6 =
      test::run_command("test -f /proc/net/if_inet6 && grep -q ' lo$' /proc/net/if_inet6")
          .exit_code == 0;
  Server s({}, ":0");
  auto v4 = test::http_get("127.0.0.1", s.port, "/v4");
  REQUIRE(v4.ok());
  CHECK(v4->body == "/v4");
  if (!has_v6) {
    WARN("IPv6 is off on this host's loopback: only the IPv4 half was checked");
    return;
  }
  auto v6 = test::http_get("::1", s.port, "/v6");
  REQUIRE(v6.ok());
  CHECK(v6->body == "/v6");
}
