#include "daemon/http_server.hpp"

#include <list>
#include <optional>

#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace mcb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class Session;

struct HttpServer::Shared {
  Shared(asio::io_context& io, Handler h, HttpLimits l)
      : io(io), handler(std::move(h)), limits(l), retry(io) {}
  asio::io_context& io;
  Handler handler;
  HttpLimits limits;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::list<Session*> sessions;  // every live session; each removes itself when destroyed
  asio::steady_timer retry;      // pauses accepting after an accept error (e.g. out of fds)
  bool stopped = false;
};

namespace {

std::string to_text(const tcp::endpoint& e) {
  const auto a = e.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
}

}  // namespace

class Session : public std::enable_shared_from_this<Session> {
 public:
  using Clock = std::chrono::steady_clock;

  Session(tcp::socket socket, std::shared_ptr<HttpServer::Shared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {
    self_in_list_ = shared_->sessions.insert(shared_->sessions.end(), this);
  }
  ~Session() { shared_->sessions.erase(self_in_list_); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start() { read(); }

  // Waiting for or receiving a request (not writing a response): may be evicted.
  bool evictable() const { return reading_; }
  Clock::time_point waiting_since() const { return since_; }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(shared_->limits.header_limit));
    parser_->body_limit(shared_->limits.body_limit);
    stream_.expires_after(first_ ? shared_->limits.request_timeout : shared_->limits.idle_timeout);
    reading_ = true;
    since_ = Clock::now();
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    reading_ = false;
    if (ec == http::error::header_limit || ec == http::error::body_limit) {
      const bool header = ec == http::error::header_limit;
      respond_error(
          header ? http::status::request_header_fields_too_large : http::status::payload_too_large,
          header ? "request header too large\n" : "request body too large\n");
      return;
    }
    if (ec) {
      // end_of_stream, timeout, reset, eviction, shutdown: the session simply ends.
      close();
      return;
    }
    HttpRequest req = parser_->release();
    response_ = shared_->handler(req);
    write(!response_.keep_alive());
  }

  void respond_error(http::status status, const char* text) {
    response_ = HttpResponse{status, 11};
    response_.set(http::field::server, "mcbacklogd");
    response_.set(http::field::content_type, "text/plain; charset=utf-8");
    response_.keep_alive(false);
    response_.body() = text;
    response_.prepare_payload();
    write(true);
  }

  void write(bool close_after) {
    stream_.expires_after(shared_->limits.write_timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this(), close_after](beast::error_code ec, std::size_t) {
                        if (ec || close_after) {
                          self->close();
                          return;
                        }
                        self->first_ = false;
                        self->read();
                      });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpResponse response_;
  std::shared_ptr<HttpServer::Shared> shared_;
  std::list<Session*>::iterator self_in_list_;
  Clock::time_point since_;
  bool reading_ = false;
  bool first_ = true;
};

HttpServer::HttpServer(asio::io_context& io, Handler handler, HttpLimits limits)
    : shared_(std::make_shared<Shared>(io, std::move(handler), limits)) {}

HttpServer::~HttpServer() { stop(); }

Result<std::vector<std::string>> HttpServer::listen(const Endpoint& where) {
  std::vector<tcp::endpoint> endpoints;
  if (where.host.empty()) {
    endpoints.emplace_back(tcp::v6(), where.port);
  } else {
    beast::error_code ec;
    tcp::resolver resolver(shared_->io);
    auto results = resolver.resolve(where.host, std::to_string(where.port),
                                    tcp::resolver::numeric_service, ec);
    if (ec) return fail("cannot resolve listen address " + where.to_string() + ": " + ec.message());
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }
  std::vector<std::string> bound;
  for (tcp::endpoint ep : endpoints) {
    auto acceptor = std::make_unique<tcp::acceptor>(shared_->io);
    beast::error_code ec;
    acceptor->open(ep.protocol(), ec);
    if (ec && where.host.empty()) {
      // No IPv6 on this host: every address means every IPv4 address.
      ep = tcp::endpoint(tcp::v4(), where.port);
      ec = {};
      acceptor->open(ep.protocol(), ec);
    }
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && ep.address().is_v6()) {
      // The wildcard serves IPv4 too; a specific IPv6 address only itself.
      acceptor->set_option(asio::ip::v6_only(!where.host.empty()), ec);
    }
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("cannot listen on " + to_text(ep) + ": " + ec.message());
    bound.push_back(to_text(acceptor->local_endpoint()));
    shared_->acceptors.push_back(std::move(acceptor));
    accept(shared_->acceptors.size() - 1);
  }
  return bound;
}

void HttpServer::accept(std::size_t index) {
  auto& acceptor = *shared_->acceptors[index];
  acceptor.async_accept([this, shared = shared_, index](beast::error_code ec, tcp::socket socket) {
    if (shared->stopped) return;
    if (ec) {
      // Out of file descriptors and the like: pause, so the loop does not spin on the error.
      spdlog::warn("HTTP accept failed: {}", ec.message());
      shared->retry.expires_after(std::chrono::milliseconds(100));
      shared->retry.async_wait([this, shared, index](beast::error_code wait_ec) {
        if (!wait_ec && !shared->stopped) accept(index);
      });
      return;
    }
    if (shared->sessions.size() >= shared->limits.max_sessions) {
      Session* oldest = nullptr;
      for (Session* s : shared->sessions) {
        if (s->evictable() && (oldest == nullptr || s->waiting_since() < oldest->waiting_since())) {
          oldest = s;
        }
      }
      if (oldest != nullptr) {
        oldest->close();
      } else {
        beast::error_code ignored;
        socket.close(ignored);  // every session is busy writing: refuse the newcomer
        accept(index);
        return;
      }
    }
    std::make_shared<Session>(std::move(socket), shared)->start();
    accept(index);
  });
}

void HttpServer::stop() {
  if (shared_->stopped) return;
  shared_->stopped = true;
  shared_->retry.cancel();
  for (auto& a : shared_->acceptors) {
    beast::error_code ec;
    a->close(ec);
  }
  for (Session* s : std::vector<Session*>(shared_->sessions.begin(), shared_->sessions.end())) {
    s->close();
  }
}

std::size_t HttpServer::session_count() const { return shared_->sessions.size(); }

}  // namespace mcb
