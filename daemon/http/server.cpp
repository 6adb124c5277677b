#include "daemon/http/server.hpp"

#include <list>
#include <optional>
#include <type_traits>

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
#include <boost/beast/ssl/ssl_stream.hpp>

namespace mcb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class HttpSession;

struct HttpServer::Shared {
  Shared(asio::io_context& io, Handler h, HttpLimits l, std::shared_ptr<const HttpSecurity> s)
      : io(io), handler(std::move(h)), limits(l), security(std::move(s)), retry(io) {}

  // The thread that checks passwords, started when a first check is asked for. Only open
  // sessions ask, so never after stop().
  VerifyWorker& worker() {
    if (!verify_worker) {
      verify_worker =
          std::make_unique<VerifyWorker>(io.get_executor(), limits.max_queued_password_checks);
    }
    return *verify_worker;
  }

  asio::io_context& io;
  Handler handler;
  HttpLimits limits;
  std::shared_ptr<const HttpSecurity> security;  // for connections accepted from now on
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::list<HttpSession*> sessions;  // every open session; each removes itself when it closes
  asio::steady_timer retry;          // pauses accepting after an accept error (e.g. out of fds)
  std::unique_ptr<VerifyWorker> verify_worker;
  bool stopped = false;
};

namespace {

std::string to_text(const tcp::endpoint& e) {
  const auto a = e.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
}

// The server's own answers: refusals that never reach the handler.
HttpResponse refusal(unsigned version, http::status status, const char* text, bool keep_alive) {
  HttpResponse res{status, version};
  res.set(http::field::server, "mcbacklogd");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  if (status == http::status::unauthorized) {
    res.set(http::field::www_authenticate, R"(Basic realm="mcbacklogd")");
  }
  res.keep_alive(keep_alive);
  res.body() = text;
  res.prepare_payload();
  return res;
}

}  // namespace

// What the server needs of a session, whatever its stream: its place in the session list, and
// what eviction, reloads and stop() do to it.
class HttpSession {
 public:
  using Clock = std::chrono::steady_clock;

  explicit HttpSession(std::shared_ptr<HttpServer::Shared> shared)
      : shared_(std::move(shared)), security_(shared_->security) {
    in_list_ = shared_->sessions.insert(shared_->sessions.end(), this);
  }
  virtual ~HttpSession() { unlist(); }
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  // Closes the connection at once. Idempotent.
  virtual void close() = 0;

  // Lets the exchange in progress finish, then closes.
  void retire() { retired_ = true; }

  // Handshaking, waiting for or receiving a request (not checking a password or writing): may be
  // evicted.
  bool evictable() const { return waiting_; }
  Clock::time_point waiting_since() const { return since_; }

 protected:
  void unlist() {
    if (listed_) shared_->sessions.erase(in_list_);
    listed_ = false;
  }
  void start_waiting() {
    waiting_ = true;
    since_ = Clock::now();
  }

  std::shared_ptr<HttpServer::Shared> shared_;
  // Held for the connection's life: a TLS stream refers to its context.
  std::shared_ptr<const HttpSecurity> security_;
  bool waiting_ = false;
  bool retired_ = false;

 private:
  std::list<HttpSession*>::iterator in_list_;
  bool listed_ = true;
  Clock::time_point since_;
};

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One HTTP/1.1 connection over a plain or a TLS stream: the same code, with the handshake and the
// closing of TLS where the stream has them.
template <class Stream>
class HttpStreamSession final : public HttpSession,
                                public std::enable_shared_from_this<HttpStreamSession<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  // `stream_args` construct the stream: a socket, and for TLS the context.
  template <class... Args>
  explicit HttpStreamSession(std::shared_ptr<HttpServer::Shared> shared, Args&&... stream_args)
      : HttpSession(std::move(shared)), stream_(std::forward<Args>(stream_args)...) {}

  void start() {
    if constexpr (kTls) {
      start_waiting();
      lowest().expires_after(shared_->limits.request_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) {
                                  // Plain HTTP sent to a TLS listener ends here, unanswered.
                                  spdlog::debug("TLS handshake failed: {}", ec.message());
                                  self->close();
                                  return;
                                }
                                self->read();
                              });
    } else {
      read();
    }
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    waiting_ = false;
    unlist();
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void read() {
    if (retired_) {
      finish();
      return;
    }
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(shared_->limits.header_limit));
    parser_->body_limit(shared_->limits.body_limit);
    lowest().expires_after(first_ ? shared_->limits.request_timeout : shared_->limits.idle_timeout);
    start_waiting();
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    waiting_ = false;
    if (closed_) return;
    if (ec == http::error::header_limit) {
      respond(refusal(11, http::status::request_header_fields_too_large,
                      "request header too large\n", false));
      return;
    }
    if (ec == http::error::body_limit) {
      respond(refusal(11, http::status::payload_too_large, "request body too large\n", false));
      return;
    }
    if (ec) {
      // end_of_stream, timeout, reset, eviction, shutdown: the session simply ends.
      close();
      return;
    }
    request_ = parser_->release();
    if (!security_->auth) {
      respond(shared_->handler(request_));
      return;
    }
    const auto authorization = request_[http::field::authorization];
    security_->auth->check(std::string_view(authorization.data(), authorization.size()),
                           shared_->worker(),
                           [self = this->shared_from_this()](BasicAuth::Verdict verdict) {
                             self->on_verdict(verdict);
                           });
  }

  void on_verdict(BasicAuth::Verdict verdict) {
    if (closed_) return;
    switch (verdict) {
      case BasicAuth::Verdict::kAllowed:
        respond(shared_->handler(request_));
        break;
      case BasicAuth::Verdict::kDenied:
        respond(refusal(request_.version(), http::status::unauthorized, "unauthorized\n",
                        request_.keep_alive()));
        break;
      case BasicAuth::Verdict::kBusy:
        respond(refusal(request_.version(), http::status::service_unavailable,
                        "too many password checks at once; retry later\n", false));
        break;
    }
  }

  void respond(HttpResponse response) {
    response_ = std::move(response);
    const bool close_after = !response_.keep_alive() || retired_;
    if (close_after) response_.keep_alive(false);
    lowest().expires_after(shared_->limits.write_timeout);
    http::async_write(
        stream_, response_,
        [self = this->shared_from_this(), close_after](beast::error_code ec, std::size_t) {
          if (ec) {
            self->close();
          } else if (close_after) {
            self->finish();
          } else {
            self->first_ = false;
            self->read();
          }
        });
  }

  // Closes after a complete exchange: TLS says goodbye first (close_notify), within the write
  // deadline. Waiting for the peer's goodbye, the session may be evicted.
  void finish() {
    if constexpr (kTls) {
      start_waiting();
      lowest().expires_after(shared_->limits.write_timeout);
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->close(); });
    } else {
      close();
    }
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpRequest request_;
  HttpResponse response_;
  bool first_ = true;
  bool closed_ = false;
};

HttpServer::HttpServer(asio::io_context& io, Handler handler, HttpLimits limits,
                       std::shared_ptr<const HttpSecurity> security)
    : shared_(std::make_shared<Shared>(
          io, std::move(handler), limits,
          security ? std::move(security) : std::make_shared<const HttpSecurity>())) {}

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
      HttpSession* oldest = nullptr;
      for (HttpSession* s : shared->sessions) {
        if (s->evictable() && (oldest == nullptr || s->waiting_since() < oldest->waiting_since())) {
          oldest = s;
        }
      }
      if (oldest == nullptr) {
        beast::error_code ignored;
        socket.close(ignored);  // every session is busy: refuse the newcomer
        accept(index);
        return;
      }
      oldest->close();
    }
    if (const auto& tls = shared->security->tls) {
      std::make_shared<HttpStreamSession<TlsStream>>(shared, std::move(socket), *tls)->start();
    } else {
      std::make_shared<HttpStreamSession<PlainStream>>(shared, std::move(socket))->start();
    }
    accept(index);
  });
}

void HttpServer::set_security(std::shared_ptr<const HttpSecurity> security) {
  shared_->security = security ? std::move(security) : std::make_shared<const HttpSecurity>();
  for (HttpSession* s :
       std::vector<HttpSession*>(shared_->sessions.begin(), shared_->sessions.end())) {
    if (s->evictable()) {
      s->close();
    } else {
      s->retire();
    }
  }
}

void HttpServer::stop() {
  if (shared_->stopped) return;
  shared_->stopped = true;
  shared_->retry.cancel();
  for (auto& a : shared_->acceptors) {
    beast::error_code ec;
    a->close(ec);
  }
  // First: the password checks it drops release the sessions waiting for them.
  if (shared_->verify_worker) shared_->verify_worker->stop();
  for (HttpSession* s :
       std::vector<HttpSession*>(shared_->sessions.begin(), shared_->sessions.end())) {
    s->close();
  }
}

std::size_t HttpServer::session_count() const { return shared_->sessions.size(); }

}  // namespace mcb
