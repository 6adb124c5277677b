#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <future>
#include <optional>
#include <thread>
#include <tuple>

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>

#include "daemon/http/server.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"
#include "tests/support/tls.hpp"

using namespace mcb;
using namespace std::chrono_literals;
namespace http = boost::beast::http;

namespace {

// An HttpServer on its own io thread, answering every request with the request target.
class Server {
 public:
  explicit Server(HttpLimits limits, const std::string& address = "127.0.0.1:0",
                  std::shared_ptr<const HttpSecurity> security = nullptr)
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
            limits, std::move(security)) {
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
  void set_security(std::shared_ptr<const HttpSecurity> security) {
    std::promise<void> p;
    boost::asio::post(io_, [&] {
      server_.set_security(std::move(security));
      p.set_value();
    });
    p.get_future().get();
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
  const int fd = test::connect_loopback(port);
  REQUIRE(fd >= 0);
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

// Sends `request` on a new connection to `port` and reads until the server closes (at most 5 s):
// what came back, and whether it closed.
std::pair<std::string, bool> round_trip(std::uint16_t port, const std::string& request) {
  const int fd = connect_to(port);
  send_all(fd, request);
  auto reply = read_until_close(fd, std::chrono::seconds(5));
  ::close(fd);
  return reply;
}

// Reads until what came ends with `tail` or `timeout`; what was read.
std::string read_until_tail(int fd, const std::string& tail, std::chrono::milliseconds timeout) {
  std::string out;
  const auto end = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (std::chrono::steady_clock::now() < end && !out.ends_with(tail)) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// The peer has closed the connection (FIN or reset); reads nothing.
bool peer_gone(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLERR | POLLHUP)) != 0;
}

// Limits with a request timeout far shorter than the idle timeout (60 s).
HttpLimits short_request_timeout() {
  HttpLimits limits;
  limits.request_timeout = 500ms;
  return limits;
}

// A connection to `port` that has had GET /one answered, kept alive.
int after_one_request(std::uint16_t port) {
  const int fd = connect_to(port);
  send_all(fd, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(read_until_tail(fd, "/one", 5s).ends_with("/one"));
  return fd;
}

// Sends `bytes` one at a time, `interval` apart, until the peer closes. Returns how long after
// the first byte the peer was found gone, or nullopt when it was still there after the last byte.
std::optional<std::chrono::milliseconds> trickle(int fd, const std::string& bytes,
                                                 std::chrono::milliseconds interval) {
  const auto start = std::chrono::steady_clock::now();
  auto since_start = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  };
  for (const char c : bytes) {
    if (peer_gone(fd) || ::send(fd, &c, 1, MSG_NOSIGNAL) != 1) return since_start();
    std::this_thread::sleep_for(interval);
  }
  return peer_gone(fd) ? std::optional(since_start()) : std::nullopt;
}

// A TLS client of 127.0.0.1:`port` (it verifies nothing) on the calling thread, for tests that
// send a request in pieces. Each exchange gives up after 10 s, so a broken server fails the test
// rather than hang it.
class TlsClient {
 public:
  explicit TlsClient(std::uint16_t port) {
    bool done = false;
    stream_.next_layer().connect({boost::asio::ip::make_address("127.0.0.1"), port});
    stream_.async_handshake(boost::asio::ssl::stream_base::client,
                            [&](boost::system::error_code ec) { done = !ec; });
    io_.run_for(10s);
    REQUIRE(done);
  }

  // Sends `request` and reads one response; its body, or "failed" when the exchange failed.
  std::string exchange(const std::string& request) {
    std::string body = "failed";
    response_ = {};
    boost::asio::async_write(
        stream_, boost::asio::buffer(request), [&](boost::system::error_code ec, std::size_t) {
          if (ec) return;
          http::async_read(stream_, buffer_, response_,
                           [&](boost::system::error_code read_ec, std::size_t) {
                             if (!read_ec) body = response_.body();
                           });
        });
    io_.restart();
    io_.run_for(10s);
    return body;
  }

  // `text` encrypted as one TLS record, to be sent raw: until its last byte the server has
  // nothing it can decrypt. The client writes nothing more through TLS afterwards.
  std::string seal(const std::string& text) {
    SSL* ssl = stream_.native_handle();
    BIO* out = BIO_new(BIO_s_mem());
    REQUIRE(out != nullptr);
    SSL_set0_wbio(ssl, out);  // the TLS session now writes its records there
    REQUIRE(SSL_write(ssl, text.data(), static_cast<int>(text.size())) ==
            static_cast<int>(text.size()));
    char* data = nullptr;
    const long size = BIO_get_mem_data(out, &data);
    return {data, static_cast<std::size_t>(size)};
  }

  int fd() { return stream_.next_layer().native_handle(); }

 private:
  boost::asio::io_context io_;
  boost::asio::ssl::context context_{boost::asio::ssl::context::tls_client};
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream_{io_, context_};
  boost::beast::flat_buffer buffer_;
  http::response<http::string_body> response_;
};

}  // namespace

TEST_CASE("http server: a kept-alive connection serves several requests", "[daemon][http]") {
  Server s({});
  auto [out, closed] =
      round_trip(s.port,
                 "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\nConnection: "
                 "close\r\n\r\n");
  CHECK(closed);
  CHECK(out.find("/one") != std::string::npos);
  CHECK(out.find("/two") != std::string::npos);
  CHECK(s.requests == 2);
}

TEST_CASE("http server: an oversized header gets 431 and the connection closes", "[daemon][http]") {
  HttpLimits limits;
  limits.header_limit = 1024;
  Server s(limits);
  auto [out, closed] =
      round_trip(s.port, "GET / HTTP/1.1\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n");
  CHECK(closed);
  CHECK(out.rfind("HTTP/1.1 431", 0) == 0);
  CHECK(s.requests == 0);
}

TEST_CASE("http server: a body over the limit gets 413", "[daemon][http]") {
  HttpLimits limits;
  limits.body_limit = 16;
  Server s(limits);
  auto [out, closed] = round_trip(
      s.port, "POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'b'));
  CHECK(out.rfind("HTTP/1.1 413", 0) == 0);
}

TEST_CASE(
    "http server: a malformed request gets 400 naming what is wrong, and the connection "
    "closes",
    "[daemon][http]") {
  struct Case {
    const char* request;
    const char* reason;  // Beast's word for it
  };
  const Case c = GENERATE(
      Case{"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", "bad Content-Length"},
      Case{"GET /metrics HTTP/1.1\r\nHo st: x\r\n\r\n", "bad field"},
      Case{"G\x01T /metrics HTTP/1.1\r\n\r\n", "bad method"},
      Case{"GET /metrics HTTP/1.x\r\n\r\n", "bad version"},
      Case{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk"},
      Case{"GET /metrics HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
           "bad Content-Length"});
  CAPTURE(c.request);
  Server s({});
  auto [out, closed] = round_trip(s.port, c.request);
  CHECK(closed);
  CHECK(out.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
  CHECK(out.find("Connection: close") != std::string::npos);
  CHECK(out.find(std::string("\r\n\r\nbad request: ") + c.reason + "\n") != std::string::npos);
  CHECK(s.requests == 0);
}

TEST_CASE(
    "http server: a transfer coding other than chunked alone gets 400, and what follows is "
    "never served",
    "[daemon][http]") {
  // RFC 9112 6.1. The parser took these as requests without a body and served the bytes after
  // them as a request of their own: a proxy that frames them otherwise would be desynchronised.
  const std::string te = GENERATE(std::string("chunked, gzip"), std::string("identity"),
                                  std::string("gzipX"), std::string("gzip, chunked , x"));
  CAPTURE(te);
  Server s({});
  auto [out, closed] = round_trip(s.port, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te +
                                              "\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(closed);
  CHECK(out.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
  CHECK(out.find("bad request: bad Transfer-Encoding\n") != std::string::npos);
  CHECK(out.find("/two") == std::string::npos);
  CHECK(s.requests == 0);
}

TEST_CASE("http server: a chunked request body is read and the next request served",
          "[daemon][http]") {
  Server s({});
  auto [out, closed] = round_trip(
      s.port,
      "POST /one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n"
      "\r\nGET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(closed);
  CHECK(out.find("/two") != std::string::npos);
  CHECK(s.requests == 2);
}

TEST_CASE("http server: a request cut off by the client gets no answer", "[daemon][http]") {
  Server s({});
  const int fd = connect_to(s.port);
  send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n");
  ::shutdown(fd, SHUT_WR);
  auto [out, closed] = read_until_close(fd, 5s);
  ::close(fd);
  CHECK(closed);
  CHECK(out.empty());
  CHECK(s.requests == 0);
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

TEST_CASE(
    "http server: a request after the first on a kept-alive connection is closed at the request "
    "timeout counted from its first byte, not at the idle timeout",
    "[daemon][http]") {
  Server s(short_request_timeout());
  const int fd = after_one_request(s.port);
  // The idle wait before it does not count: the connection is idle longer than the request
  // timeout before the second request's first byte.
  std::this_thread::sleep_for(1s);
  REQUIRE_FALSE(peer_gone(fd));
  // A header that would take 20 s at a byte every 50 ms.
  const std::string second = "GET /two HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(400, 'a');
  const auto gone = trickle(fd, second, 50ms);
  ::close(fd);
  REQUIRE(gone.has_value());
  CHECK(*gone >= 250ms);  // the deadline, not an error: it cannot pass before 500 ms
  CHECK(*gone < 15s);     // not the idle timeout, 60 s
  CHECK(s.requests == 1);
}

TEST_CASE(
    "http server: the body of a request after the first must arrive within the request timeout",
    "[daemon][http]") {
  Server s(short_request_timeout());
  const int fd = after_one_request(s.port);
  send_all(fd, "POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
  const auto gone = trickle(fd, std::string(400, 'b'), 50ms);
  ::close(fd);
  REQUIRE(gone.has_value());
  CHECK(*gone < 15s);
  CHECK(s.requests == 1);
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

namespace {

std::shared_ptr<const HttpSecurity> secured(const WebConfigFile& config) {
  auto s = make_http_security(config);
  INFO((s ? "" : s.error().message));
  REQUIRE(s.ok());
  return *s;
}

WebConfigFile tls_config(const test::TestPki& pki,
                         ClientAuth client_auth = ClientAuth::kNoClientCert) {
  WebConfigFile c;
  c.tls.emplace();
  c.tls->cert_file = pki.server_cert;
  c.tls->key_file = pki.server_key;
  c.tls->client_auth = client_auth;
  c.tls->min_version = TlsVersion::kTls12;
  if (client_auth == ClientAuth::kVerifyClientCertIfGiven ||
      client_auth == ClientAuth::kRequireAndVerifyClientCert) {
    c.tls->client_ca_file = pki.ca_cert;
  }
  return c;
}

std::string https_url(const Server& s, const std::string& path) {
  return "https://127.0.0.1:" + std::to_string(s.port) + path;
}

}  // namespace

TEST_CASE("http server: over TLS it serves HTTPS, and plain HTTP gets no HTTP answer",
          "[daemon][http][tls]") {
  test::TempDir dir;
  const auto pki = test::make_test_pki(dir);
  Server s({}, "127.0.0.1:0", secured(tls_config(pki)));
  const auto ok = test::curl({"--cacert", pki.ca_cert, https_url(s, "/over-tls")});
  INFO(ok.output);
  CHECK(ok.status == 200);
  CHECK_THAT(ok.output, Catch::Matchers::EndsWith("/over-tls"));

  const int fd = connect_to(s.port);
  send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  auto [out, closed] = read_until_close(fd, 10s);
  ::close(fd);
  CHECK(closed);
  CHECK(out.find("HTTP/") == std::string::npos);
  CHECK(out.find("/metrics") == std::string::npos);
  CHECK(s.requests == 1);
}

TEST_CASE("http server: a TLS client that never says hello is closed at the request timeout",
          "[daemon][http][tls]") {
  test::TempDir dir;
  const auto pki = test::make_test_pki(dir);
  HttpLimits limits;
  limits.request_timeout = 200ms;
  Server s(limits, "127.0.0.1:0", secured(tls_config(pki)));
  const int fd = connect_to(s.port);
  auto [out, closed] = read_until_close(fd, 10s);
  ::close(fd);
  CHECK(closed);
  CHECK(out.empty());
  CHECK(test::eventually([&] { return s.sessions() == 0; }));
}

TEST_CASE(
    "http server: over TLS, a request after the first sent a byte at a time is closed at the "
    "request timeout, though no byte of it can be decrypted, while an idle connection keeps the "
    "idle timeout",
    "[daemon][http][tls]") {
  test::TempDir dir;
  const auto pki = test::make_test_pki(dir);
  Server s(short_request_timeout(), "127.0.0.1:0", secured(tls_config(pki)));
  TlsClient client(s.port);
  CHECK(client.exchange("GET /one HTTP/1.1\r\nHost: x\r\n\r\n") == "/one");
  std::this_thread::sleep_for(1s);
  REQUIRE_FALSE(peer_gone(client.fd()));
  CHECK(client.exchange("GET /two HTTP/1.1\r\nHost: x\r\n\r\n") == "/two");
  std::this_thread::sleep_for(1s);
  REQUIRE_FALSE(peer_gone(client.fd()));
  // One record that would take over 20 s at a byte every 50 ms.
  const std::string third =
      client.seal("GET /three HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(400, 'a'));
  const auto gone = trickle(client.fd(), third, 50ms);
  REQUIRE(gone.has_value());
  CHECK(*gone >= 250ms);
  CHECK(*gone < 15s);
  CHECK(s.requests == 2);
}

TEST_CASE("http server: client certificates are asked for, required and verified as configured",
          "[daemon][http][tls]") {
  test::TempDir dir;
  const auto pki = test::make_test_pki(dir);
  const std::vector<std::string> trusted{"--cert", pki.client_cert, "--key", pki.client_key};
  const std::vector<std::string> stranger{"--cert", pki.stranger_cert, "--key", pki.stranger_key};
  auto status = [&](Server& s, std::vector<std::string> client) {
    client.insert(client.end(), {"--cacert", pki.ca_cert, https_url(s, "/")});
    const auto r = test::curl(client);
    UNSCOPED_INFO(r.output);
    return r.status;
  };
  {
    Server s({}, "127.0.0.1:0", secured(tls_config(pki, ClientAuth::kRequireAndVerifyClientCert)));
    CHECK(status(s, {}) == 0);
    CHECK(status(s, stranger) == 0);
    CHECK(status(s, trusted) == 200);
  }
  {
    Server s({}, "127.0.0.1:0", secured(tls_config(pki, ClientAuth::kVerifyClientCertIfGiven)));
    CHECK(status(s, {}) == 200);
    CHECK(status(s, stranger) == 0);
    CHECK(status(s, trusted) == 200);
  }
  {
    Server s({}, "127.0.0.1:0", secured(tls_config(pki, ClientAuth::kRequireAnyClientCert)));
    CHECK(status(s, {}) == 0);
    CHECK(status(s, stranger) == 200);
  }
  {
    Server s({}, "127.0.0.1:0", secured(tls_config(pki, ClientAuth::kRequestClientCert)));
    CHECK(status(s, {}) == 200);
    CHECK(status(s, stranger) == 200);
  }
}

TEST_CASE("http server: min_version TLS13 refuses a TLS 1.2 client", "[daemon][http][tls]") {
  test::TempDir dir;
  const auto pki = test::make_test_pki(dir);
  auto config = tls_config(pki);
  config.tls->min_version = TlsVersion::kTls13;
  Server s({}, "127.0.0.1:0", secured(config));
  const auto old = test::curl({"--tls-max", "1.2", "--cacert", pki.ca_cert, https_url(s, "/")});
  CHECK(old.status == 0);
  CHECK(test::curl({"--tlsv1.3", "--cacert", pki.ca_cert, https_url(s, "/")}).status == 200);
}

TEST_CASE("http server: TLS files that do not load are errors naming the key and the file",
          "[daemon][http][tls]") {
  test::TempDir dir;
  const auto pki = test::make_test_pki(dir);
  auto config = tls_config(pki);
  config.source = "web.yml";
  auto error_of = [](const WebConfigFile& c) {
    auto s = make_http_security(c);
    REQUIRE_FALSE(s.ok());
    return s.error().message;
  };
  auto missing = config;
  missing.tls->cert_file = dir.path() + "/none.crt";
  CHECK_THAT(error_of(missing),
             Catch::Matchers::Contains("web.yml: tls_server_config.cert_file: " + dir.path() +
                                       "/none.crt: cannot open: No such file or directory"));
  auto mismatched = config;
  mismatched.tls->key_file = pki.client_key;
  CHECK_THAT(error_of(mismatched),
             Catch::Matchers::Contains("tls_server_config.key_file: " + pki.client_key +
                                       ": cannot load the private key: key values mismatch"));
  auto not_a_key = config;
  not_a_key.tls->key_file = pki.ca_cert;
  CHECK_THAT(error_of(not_a_key),
             Catch::Matchers::Contains("tls_server_config.key_file: " + pki.ca_cert +
                                       ": cannot load the private key"));
  auto not_a_ca = tls_config(pki, ClientAuth::kRequireAndVerifyClientCert);
  not_a_ca.tls->client_ca_file = dir.write("empty.crt", "");
  CHECK_THAT(error_of(not_a_ca), Catch::Matchers::Contains("tls_server_config.client_ca_file"));
}

TEST_CASE("http server: a key no TLS client verifies, or one too slow to sign with, is refused",
          "[daemon][http][tls]") {
  // secp256k1 loads, and then every handshake fails: no client offers the curve. A large RSA key
  // loads, and then each handshake holds the event loop (80 ms at 8192 bits).
  test::TempDir dir;
  const auto run = [](const std::string& command) {
    const auto r = test::run_command(command);
    INFO(command << ": " << r.output);
    REQUIRE(r.exit_code == 0);
  };
  const auto self_signed = [&](const std::string& name, const std::string& make_key,
                               const std::string& bits = "") {
    const std::string key = dir.path() + "/" + name + ".key";
    const std::string cert = dir.path() + "/" + name + ".crt";
    run(make_key + " -out " + key + " " + bits + " 2>&1");
    run("openssl req -x509 -key " + key + " -days 2 -subj /CN=localhost -out " + cert + " 2>&1");
    WebConfigFile c;
    c.source = "web.yml";
    c.tls.emplace();
    c.tls->cert_file = cert;
    c.tls->key_file = key;
    return c;
  };
  auto k1 = make_http_security(self_signed("k1", "openssl ecparam -name secp256k1 -genkey -noout"));
  REQUIRE_FALSE(k1.ok());
  CHECK_THAT(k1.error().message,
             Catch::Matchers::Contains("web.yml: tls_server_config.key_file: " + dir.path() +
                                       "/k1.key: an EC key on curve secp256k1: TLS clients"));
  auto big = make_http_security(self_signed("rsa", "openssl genrsa", "4104"));
  REQUIRE_FALSE(big.ok());
  CHECK_THAT(big.error().message,
             Catch::Matchers::Contains("/rsa.key: an RSA key of 4104 bits; at most 4096 are "
                                       "allowed"));
  // Loaded by OpenSSL and curl, refused by Prometheus' Go TLS: Ed448, RSA-PSS, explicit curves.
  for (const auto& [name, make_key, says] :
       {std::tuple{"ed448", "openssl genpkey -algorithm ed448",
                   "a key of a type Prometheus (Go) does not verify (ED448)"},
        std::tuple{"pss", "openssl genpkey -algorithm RSA-PSS",
                   "a key of a type Prometheus (Go) does not verify (RSASSA-PSS)"},
        std::tuple{"explicit", "openssl ecparam -name prime256v1 -param_enc explicit -genkey",
                   "an EC key written with its curve's explicit parameters"}}) {
    CAPTURE(name);
    auto refused = make_http_security(self_signed(name, make_key));
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.error().message,
               Catch::Matchers::Contains(std::string("/") + name + ".key: " + says));
  }
  // What clients use loads: P-384, Ed25519 and RSA 2048 (the P-256 of make_test_pki elsewhere).
  for (const auto& [name, make_key] :
       {std::pair{"p384", "openssl ecparam -name secp384r1 -genkey -noout"},
        std::pair{"ed25519", "openssl genpkey -algorithm ed25519"},
        std::pair{"rsa2048", "openssl genrsa"}}) {
    CAPTURE(name);
    auto ok = make_http_security(
        self_signed(name, make_key, std::string_view(name) == "rsa2048" ? "2048" : ""));
    CHECK(ok.ok());
  }
}

TEST_CASE("http server: a FIFO named as a TLS file is refused at once, where it is named",
          "[daemon][http][tls]") {
  test::TempDir dir;
  const auto pki = test::make_test_pki(dir);
  const std::string fifo = test::make_fifo(dir, "fifo.pem");
  for (const std::string key : {"cert_file", "key_file", "client_ca_file"}) {
    INFO(key);
    auto config = tls_config(pki, ClientAuth::kRequireAndVerifyClientCert);
    config.source = "web.yml";
    TlsServerConfig& t = *config.tls;
    const std::string origin = "web.yml:3:14: tls_server_config." + key;
    if (key == "cert_file") std::tie(t.cert_file, t.cert_file_origin) = std::tie(fifo, origin);
    if (key == "key_file") std::tie(t.key_file, t.key_file_origin) = std::tie(fifo, origin);
    if (key == "client_ca_file") {
      std::tie(t.client_ca_file, t.client_ca_file_origin) = std::tie(fifo, origin);
    }
    auto made = test::unless_held(fifo, [&] { return make_http_security(config); });
    REQUIRE(made.has_value());
    REQUIRE_FALSE(made->ok());
    CHECK(made->error().message == origin + ": " + fifo + ": is a FIFO, not a regular file");
  }
}

TEST_CASE("http server: with users, a request without or with wrong credentials gets 401",
          "[daemon][http][auth]") {
  WebConfigFile config;
  config.basic_auth_users = {{"prometheus", test::bcrypt_hash("prometheus", "right", 5)}};
  Server s({}, "127.0.0.1:0", secured(config));
  auto get = [&](const test::Headers& headers) {
    auto r = test::http_get("127.0.0.1", s.port, "/metrics", headers);
    REQUIRE(r.ok());
    return *r;
  };
  auto none = get({});
  CHECK(none.status == 401);
  CHECK(none.headers["www-authenticate"] == R"(Basic realm="mcbacklogd")");
  // "prometheus:wrong", "prometheus:right", "nobody:right"
  CHECK(get({{"Authorization", "Basic cHJvbWV0aGV1czp3cm9uZw=="}}).status == 401);
  CHECK(get({{"Authorization", "Basic bm9ib2R5OnJpZ2h0"}}).status == 401);
  CHECK(get({{"Authorization", "Bearer cHJvbWV0aGV1czpyaWdodA=="}}).status == 401);
  const auto right = get({{"Authorization", "Basic cHJvbWV0aGV1czpyaWdodA=="}});
  CHECK(right.status == 200);
  CHECK(right.body == "/metrics");
  CHECK(s.requests == 1);
}

TEST_CASE("http server: a 401 keeps the connection for the retry with credentials",
          "[daemon][http][auth]") {
  WebConfigFile config;
  config.basic_auth_users = {{"prometheus", test::bcrypt_hash("prometheus", "right", 5)}};
  Server s({}, "127.0.0.1:0", secured(config));
  const int fd = connect_to(s.port);
  send_all(fd,
           "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
           "GET /second HTTP/1.1\r\nHost: x\r\nAuthorization: Basic cHJvbWV0aGV1czpyaWdodA==\r\n"
           "Connection: close\r\n\r\n");
  auto [out, closed] = read_until_close(fd, 10s);
  ::close(fd);
  CHECK(closed);
  CHECK(out.rfind("HTTP/1.1 401", 0) == 0);
  CHECK(out.find("HTTP/1.1 200") != std::string::npos);
  CHECK(out.find("/second") != std::string::npos);
  CHECK(out.find("/first") == std::string::npos);
}

TEST_CASE("http server: with the password-check queue full, a request gets 503",
          "[daemon][http][auth]") {
  WebConfigFile config;
  config.basic_auth_users = {{"prometheus", test::bcrypt_hash("prometheus", "right", 5)}};
  HttpLimits limits;
  limits.max_queued_password_checks = 0;
  Server s(limits, "127.0.0.1:0", secured(config));
  auto r = test::http_get("127.0.0.1", s.port, "/",
                          {{"Authorization", "Basic cHJvbWV0aGV1czpyaWdodA=="}});
  REQUIRE(r.ok());
  CHECK(r->status == 503);
  CHECK(s.requests == 0);
}

TEST_CASE("http server: new security applies to new connections and closes idle ones",
          "[daemon][http][tls]") {
  test::TempDir dir;
  const auto pki = test::make_test_pki(dir);
  Server s({});
  const int idle = connect_to(s.port);
  REQUIRE(test::eventually([&] { return s.sessions() == 1; }));
  s.set_security(secured(tls_config(pki)));
  CHECK(read_until_close(idle, 10s).second);
  ::close(idle);
  CHECK_FALSE(test::http_get("127.0.0.1", s.port, "/plain").ok());
  CHECK(test::curl({"--cacert", pki.ca_cert, https_url(s, "/tls")}).status == 200);
  s.set_security(nullptr);
  auto plain = test::http_get("127.0.0.1", s.port, "/plain-again");
  REQUIRE(plain.ok());
  CHECK(plain->body == "/plain-again");
}

TEST_CASE("http server: a connection with part of a request is never evicted, an idle one is",
          "[daemon][http][fairness]") {
  HttpLimits limits;
  limits.max_sessions = 2;
  Server s(limits);
  const int partial = connect_to(s.port);
  send_all(partial, "GET /partial HTTP/1.1\r\nHost: x\r\n");
  REQUIRE(test::eventually([&] { return s.sessions() == 1; }));
  const int idle = connect_to(s.port);
  REQUIRE(test::eventually([&] { return s.sessions() == 2; }));

  auto reply = test::http_get("127.0.0.1", s.port, "/newcomer", {}, 5s);
  REQUIRE(reply.ok());
  CHECK(reply->body == "/newcomer");
  CHECK(read_until_close(idle, 5s).second);  // the idle one made room
  // The one with half a request is still there and gets its answer.
  send_all(partial, "Connection: close\r\n\r\n");
  auto [out, closed] = read_until_close(partial, 5s);
  CHECK(closed);
  CHECK(out.find("/partial") != std::string::npos);
  ::close(partial);
  ::close(idle);
}

TEST_CASE("http server: when every session is busy, newcomers wait in the kernel's queue",
          "[daemon][http][fairness]") {
  HttpLimits limits;
  limits.max_sessions = 2;
  Server s(limits);
  std::vector<int> busy;
  for (int i = 0; i < 2; ++i) {
    busy.push_back(connect_to(s.port));
    send_all(busy.back(), "GET /busy HTTP/1.1\r\nHost: x\r\n");
    REQUIRE(test::eventually([&] { return s.sessions() == busy.size(); }));
  }
  // Connected by the kernel, not accepted: neither answered nor closed while both are busy.
  const int waiting = connect_to(s.port);
  send_all(waiting, "GET /waited HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  auto early = read_until_close(waiting, 500ms);
  CHECK(early.first.empty());
  CHECK_FALSE(early.second);
  CHECK(s.requests == 0);
  // One busy session ends: the newcomer is taken and answered.
  send_all(busy[0], "Connection: close\r\n\r\n");
  CHECK(read_until_close(busy[0], 5s).second);
  auto [out, closed] = read_until_close(waiting, 5s);
  CHECK(closed);
  CHECK(out.find("/waited") != std::string::npos);
  for (int fd : busy) ::close(fd);
  ::close(waiting);
}

TEST_CASE("http server: one address gets its share of sessions, its idle ones make room",
          "[daemon][http][fairness]") {
  HttpLimits limits;
  limits.max_sessions_per_address = 2;
  Server s(limits);
  const int a = connect_to(s.port);
  send_all(a, "GET /a HTTP/1.1\r\nHost: x\r\n");
  REQUIRE(test::eventually([&] { return s.sessions() == 1; }));
  const int idle = connect_to(s.port);
  REQUIRE(test::eventually([&] { return s.sessions() == 2; }));
  // A third from the same address: its idle one makes room.
  const int third = connect_to(s.port);
  send_all(third, "GET /c HTTP/1.1\r\nHost: x\r\n");
  CHECK(read_until_close(idle, 5s).second);
  REQUIRE(test::eventually([&] { return s.sessions() == 2; }));
  // A fourth finds both busy: closed at once, unanswered, while the others go on.
  const int fourth = connect_to(s.port);
  auto [refused, closed] = read_until_close(fourth, 5s);
  CHECK(closed);
  CHECK(refused.empty());
  CHECK(s.sessions() == 2);
  for (int fd : {a, idle, third, fourth}) ::close(fd);
}

TEST_CASE("http server: a client that reads nothing is reset at the stall timeout",
          "[daemon][http][fairness]") {
  HttpLimits limits;
  limits.write_stall_timeout = 300ms;
  limits.write_timeout = 60s;
  // Answers big enough to fill any socket buffer.
  boost::asio::io_context io;
  HttpServer server(
      io,
      [](const HttpRequest& req) {
        HttpResponse res{http::status::ok, req.version()};
        res.body() = std::string(std::size_t{16} << 20, 'x');
        res.prepare_payload();
        return res;
      },
      limits);
  auto bound = server.listen(*parse_listen_address("127.0.0.1:0"));
  REQUIRE(bound.ok());
  const auto port = static_cast<std::uint16_t>(std::stoi(bound->at(0).substr(10)));
  std::thread loop([&] { io.run_for(20s); });
  // The smallest receive buffer, set before the handshake: the answer cannot hide in it.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int tiny = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
  send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  auto sessions = [&] {
    std::promise<std::size_t> p;
    boost::asio::post(io, [&] { p.set_value(server.session_count()); });
    return p.get_future().get();
  };
  REQUIRE(test::eventually([&] { return sessions() == 1; }));
  // Reads nothing; the server gives up long before its 60 s write deadline.
  CHECK(test::eventually([&] { return sessions() == 0; }, 15s));
  // Reset, not closed after the answer: what the kernel held for the client is dropped, so
  // reading now ends in ECONNRESET well before the 16 MiB answer.
  std::size_t read = 0;
  int error = 0;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) error = errno;
    if (n <= 0) break;
    read += static_cast<std::size_t>(n);
  }
  CHECK(error == ECONNRESET);
  CHECK(read < (std::size_t{8} << 20));
  boost::asio::post(io, [&] { server.stop(); });
  io.stop();
  loop.join();
  ::close(fd);
}
