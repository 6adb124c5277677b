#include "daemon/http/server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <limits>
#include <list>
#include <optional>
#include <type_traits>
#include <utility>

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/rate_policy.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "common/text.hpp"

namespace mcb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class HttpSession;

struct HttpServer::Shared {
  using Clock = std::chrono::steady_clock;

  Shared(asio::io_context& io, Handler h, HttpLimits l, std::shared_ptr<const HttpSecurity> s)
      : io(io), handler(std::move(h)), limits(l), security(std::move(s)) {
    spare = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  ~Shared() {
    if (spare >= 0) ::close(spare);
  }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;

  // The thread that checks passwords, started when a first check is asked for. Only open
  // sessions ask, so never after stop().
  VerifyWorker& worker() {
    if (!verify_worker) {
      verify_worker =
          std::make_unique<VerifyWorker>(io.get_executor(), limits.max_queued_password_checks);
    }
    return *verify_worker;
  }

  // The oldest idle session, of client `key` only when one is given; null when none is idle.
  HttpSession* oldest_idle(const std::string* key) const;
  // A newcomer could be taken now: a free place, or an idle session to make room.
  bool has_room() const;

  // One listening socket, and whether an accept is pending on it.
  struct Listener {
    explicit Listener(asio::io_context& io) : acceptor(io), retry(io) {}
    tcp::acceptor acceptor;
    asio::steady_timer retry;  // pauses accepting after an accept error (e.g. out of fds)
    bool accepting = false;
  };

  asio::io_context& io;
  Handler handler;
  HttpLimits limits;
  std::shared_ptr<const HttpSecurity> security;  // for connections accepted from now on
  std::vector<std::unique_ptr<Listener>> listeners;
  std::list<HttpSession*> sessions;  // every open session; each removes itself when it closes
  // Connections accepted when a place seemed free that another took first: they wait, unread,
  // for the next free place, as they would in the kernel's queue.
  std::deque<std::pair<tcp::socket, std::string>> parked;
  bool resuming = false;
  std::unique_ptr<VerifyWorker> verify_worker;
  bool stopped = false;

  // A descriptor kept free, so that a newcomer can still be accepted and closed when the process
  // is out of them.
  int spare = -1;
  // "HTTP accept failed" is logged at most once a minute, with the count of failures since.
  std::optional<Clock::time_point> accept_logged;
  std::uint64_t accept_failures = 0;
};

namespace {

// What the per-address share counts by: an IPv4 address, or the /64 of an IPv6 one (a host
// usually holds a whole /64). IPv4 clients of an IPv6 wildcard listener count as IPv4.
std::string address_key(const tcp::endpoint& e) {
  auto a = e.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  if (a.is_v4()) {
    const auto bytes = a.to_v4().to_bytes();
    return std::string(bytes.begin(), bytes.end());
  }
  const auto bytes = a.to_v6().to_bytes();
  return std::string(bytes.begin(), bytes.begin() + 8);
}

void accept_on(const std::shared_ptr<HttpServer::Shared>& shared, std::size_t index);
bool admit(const std::shared_ptr<HttpServer::Shared>& shared, tcp::socket& socket, std::string key);

// Room may have come: takes the connections parked for want of it, then accepts again on every
// listener that is not accepting.
void resume_accepting(const std::shared_ptr<HttpServer::Shared>& shared) {
  if (shared->stopped || shared->resuming) return;
  shared->resuming = true;
  while (!shared->parked.empty() && shared->has_room()) {
    auto [socket, key] = std::move(shared->parked.front());
    shared->parked.pop_front();
    if (!admit(shared, socket, std::move(key))) {
      shared->parked.emplace_front(std::move(socket), std::string());  // cannot happen: room
      break;
    }
  }
  shared->resuming = false;
  if (!shared->parked.empty()) return;
  for (std::size_t i = 0; i < shared->listeners.size(); ++i) accept_on(shared, i);
}

std::string to_text(const tcp::endpoint& e) {
  const auto a = e.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
}

// The server's own answers: refusals that never reach the handler.
HttpResponse refusal(unsigned version, http::status status, std::string text, bool keep_alive) {
  HttpResponse res{status, version};
  res.set(http::field::server, "mcbacklogd");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  if (status == http::status::unauthorized) {
    res.set(http::field::www_authenticate, R"(Basic realm="mcbacklogd")");
  }
  res.keep_alive(keep_alive);
  res.body() = std::move(text);
  res.prepare_payload();
  return res;
}

// A request the parser refused for its form (request line, fields, framing, chunks), not a
// connection that ended, timed out or went over a limit.
bool malformed(const beast::error_code& ec) {
  if (ec.category() != make_error_code(http::error::bad_method).category()) return false;
  switch (static_cast<http::error>(ec.value())) {
    case http::error::bad_line_ending:
    case http::error::bad_method:
    case http::error::bad_target:
    case http::error::bad_version:
    case http::error::bad_field:
    case http::error::bad_value:
    case http::error::bad_content_length:
    case http::error::bad_transfer_encoding:
    case http::error::bad_chunk:
    case http::error::bad_chunk_extension:
    case http::error::bad_obs_fold:
      return true;
    default:
      return false;
  }
}

// RFC 9112 6.1: a request's last transfer coding must be chunked, or its framing is unknown
// (the parser took "chunked, gzip", "identity" and unknown codings as no body, and served the
// bytes after them as a request of their own). The daemon knows no coding but chunked.
bool only_chunked(const HttpRequest& request) {
  if (request.count(http::field::transfer_encoding) == 0) return true;
  const auto field = request[http::field::transfer_encoding];
  const std::string_view te = trim_blanks(std::string_view(field.data(), field.size()));
  return beast::iequals(beast::string_view(te.data(), te.size()), "chunked");
}

}  // namespace

// What the server needs of a session, whatever its stream: its place in the session list, and
// what eviction, reloads and stop() do to it.
class HttpSession {
 public:
  using Clock = std::chrono::steady_clock;

  HttpSession(std::shared_ptr<HttpServer::Shared> shared, std::string key)
      : shared_(std::move(shared)), security_(shared_->security), key_(std::move(key)) {
    in_list_ = shared_->sessions.insert(shared_->sessions.end(), this);
  }
  virtual ~HttpSession() { unlist(); }
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  // Closes the connection at once. Idempotent.
  virtual void close() = 0;

  // Lets the exchange in progress finish, then closes.
  void retire() { retired_ = true; }

  // Waiting for a request and nothing of it has come (no byte read or in the kernel's buffer):
  // may be evicted to make room for a newcomer.
  bool idle() const { return waiting_ && nothing_received(); }
  Clock::time_point waiting_since() const { return since_; }
  const std::string& key() const { return key_; }

 protected:
  virtual bool nothing_received() const = 0;

  void unlist() {
    if (listed_) shared_->sessions.erase(in_list_);
    listed_ = false;
  }
  // Ends the session's place: newcomers waiting in the kernel's queue may be taken now.
  void release() {
    unlist();
    resume_accepting(shared_);
  }
  void start_waiting() {
    waiting_ = true;
    since_ = Clock::now();
    resume_accepting(shared_);  // now idle, it can make room
  }

  std::shared_ptr<HttpServer::Shared> shared_;
  // Held for the connection's life: a TLS stream refers to its context.
  std::shared_ptr<const HttpSecurity> security_;
  bool waiting_ = false;
  bool retired_ = false;

 private:
  std::string key_;  // address_key() of the client
  std::list<HttpSession*>::iterator in_list_;
  bool listed_ = true;
  Clock::time_point since_;
};

// The socket's rate policy, which limits nothing: it tells a session when the socket reads the
// first byte of a request, under TLS too, where the bytes of a record arrive long before the
// record can be decrypted and parsed.
class FirstByteWatch {
 public:
  // `f` runs at the first read that returns a byte after arm(), once.
  void on_first_byte(std::function<void()> f) { on_first_byte_ = std::move(f); }
  void arm() { armed_ = true; }
  void disarm() { armed_ = false; }

 private:
  friend class beast::rate_policy_access;

  static std::size_t available_read_bytes() { return std::numeric_limits<std::size_t>::max(); }
  static std::size_t available_write_bytes() { return std::numeric_limits<std::size_t>::max(); }
  // Runs as a read of the socket completes, when the stream has no read pending: a new deadline
  // set here applies to the reads that follow.
  void transfer_read_bytes(std::size_t n) {
    if (n == 0 || !armed_) return;
    armed_ = false;
    on_first_byte_();
  }
  void transfer_write_bytes(std::size_t /*n*/) {}
  void on_timer() {}

  std::function<void()> on_first_byte_;
  bool armed_ = false;
};

using TcpStream = beast::basic_stream<tcp, asio::any_io_executor, FirstByteWatch>;
using PlainStream = TcpStream;
using TlsStream = beast::ssl_stream<TcpStream>;

// One HTTP/1.1 connection over a plain or a TLS stream: the same code, with the handshake and the
// closing of TLS where the stream has them.
template <class Stream>
class HttpStreamSession final : public HttpSession,
                                public std::enable_shared_from_this<HttpStreamSession<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  // `stream_args` construct the stream: a socket, and for TLS the context.
  template <class... Args>
  HttpStreamSession(std::shared_ptr<HttpServer::Shared> shared, std::string key,
                    Args&&... stream_args)
      : HttpSession(std::move(shared), std::move(key)),
        stream_(std::forward<Args>(stream_args)...) {
    // The stream is the session's own, so it never calls back into a session that is gone.
    lowest().rate_policy().on_first_byte(
        [this] { lowest().expires_after(shared_->limits.request_timeout); });
  }

  void start() {
    // Every end but a complete answer's resets the connection (see close_gracefully()).
    beast::error_code ec;
    lowest().socket().set_option(asio::socket_base::linger(true, 0), ec);
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
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
    release();
  }

 private:
  TcpStream& lowest() { return beast::get_lowest_layer(stream_); }
  const TcpStream& lowest() const { return beast::get_lowest_layer(stream_); }

  bool nothing_received() const override {
    if (buffer_.size() != 0 || (parser_ && parser_->got_some())) return false;
    beast::error_code ec;
    const std::size_t pending = lowest().socket().available(ec);
    return !ec && pending == 0;
  }

  void read() {
    if (retired_) {
      finish();
      return;
    }
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(shared_->limits.header_limit));
    parser_->body_limit(shared_->limits.body_limit);
    // A request must arrive whole within the request deadline: the first counted from the start
    // of the connection (or the end of its TLS handshake), a later one from its first byte. Until
    // that byte comes, a kept-alive connection is idle and has the idle timeout.
    if (first_ || next_request_begun()) {
      lowest().expires_after(shared_->limits.request_timeout);
    } else {
      lowest().expires_after(shared_->limits.idle_timeout);
      lowest().rate_policy().arm();
    }
    start_waiting();
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  // Bytes that came after the last request are here already, and the socket may read nothing
  // more of the next one: pipelined with the last, or held by TLS (records not yet decrypted, or
  // decrypted in part).
  bool next_request_begun() {
    if (buffer_.size() != 0) return true;
    if constexpr (kTls) {
      SSL* ssl = stream_.native_handle();
      return SSL_has_pending(ssl) == 1 || BIO_ctrl_pending(SSL_get_rbio(ssl)) > 0;
    }
    return false;
  }

  void on_read(beast::error_code ec) {
    waiting_ = false;
    lowest().rate_policy().disarm();
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
    if (malformed(ec)) {
      // Said, as net/http says it, so that the client and its log know why; the text is the
      // parser's, never the peer's bytes.
      respond(refusal(11, http::status::bad_request, "bad request: " + ec.message() + "\n", false));
      return;
    }
    if (ec) {
      // end_of_stream, timeout, reset, eviction, shutdown: the session simply ends.
      close();
      return;
    }
    request_ = parser_->release();
    if (!only_chunked(request_)) {
      respond(
          refusal(11, http::status::bad_request, "bad request: bad Transfer-Encoding\n", false));
      return;
    }
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
    close_after_ = !response_.keep_alive() || retired_;
    if (close_after_) response_.keep_alive(false);
    serializer_.emplace(response_);
    write_deadline_ = Clock::now() + shared_->limits.write_timeout;
    write_some();
  }

  // Writes what the socket takes, again and again: each step must move a byte within the stall
  // timeout, and the whole response must be out by the write deadline.
  void write_some() {
    const auto left = write_deadline_ - Clock::now();
    if (left <= Clock::duration::zero()) {
      close();
      return;
    }
    lowest().expires_after(std::min<Clock::duration>(left, shared_->limits.write_stall_timeout));
    http::async_write_some(stream_, *serializer_,
                           [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                             if (ec) {
                               self->close();
                             } else if (!self->serializer_->is_done()) {
                               self->write_some();
                             } else {
                               self->serializer_.reset();
                               if (self->close_after_) {
                                 self->finish();
                               } else {
                                 self->first_ = false;
                                 self->read();
                               }
                             }
                           });
  }

  // Closes after a complete exchange: TLS says goodbye first (close_notify), within the write
  // deadline. Waiting for the peer's goodbye, the session may be evicted.
  void finish() {
    if constexpr (kTls) {
      start_waiting();
      lowest().expires_after(shared_->limits.write_timeout);
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code ec) {
        if (ec) {
          self->close();
        } else {
          self->close_gracefully();
        }
      });
    } else {
      close_gracefully();
    }
  }

  // A complete answer ends with FIN, so the client reads all of it. Any other end (a deadline, an
  // eviction, an error, a stop) is a reset: the kernel then drops what the client did not read
  // instead of holding it, orphaned, for minutes (a client reading a byte a second could otherwise
  // make it hold megabytes per connection).
  void close_gracefully() {
    beast::error_code ec;
    lowest().socket().set_option(asio::socket_base::linger(false, 0), ec);
    close();
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpRequest request_;
  HttpResponse response_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
  Clock::time_point write_deadline_;
  bool close_after_ = false;
  bool first_ = true;
  bool closed_ = false;
};

HttpSession* HttpServer::Shared::oldest_idle(const std::string* key) const {
  HttpSession* oldest = nullptr;
  for (HttpSession* s : sessions) {
    if ((key == nullptr || s->key() == *key) && s->idle() &&
        (oldest == nullptr || s->waiting_since() < oldest->waiting_since())) {
      oldest = s;
    }
  }
  return oldest;
}

bool HttpServer::Shared::has_room() const {
  return sessions.size() < limits.max_sessions || oldest_idle(nullptr) != nullptr;
}

namespace {

// Out of descriptors: the spare one is given up for a moment to take the newcomer off the queue
// and close it, so that it hears "closed" now instead of waiting for a timeout.
void shed_one(HttpServer::Shared& shared, tcp::acceptor& acceptor) {
  if (shared.spare < 0) return;
  ::close(shared.spare);
  const int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) ::close(fd);
  shared.spare = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void log_accept_failure(HttpServer::Shared& shared, const beast::error_code& ec) {
  const auto now = HttpServer::Shared::Clock::now();
  ++shared.accept_failures;
  if (shared.accept_logged && now - *shared.accept_logged < std::chrono::minutes(1)) return;
  if (shared.accept_failures > 1) {
    spdlog::warn("HTTP accept failed: {} ({} failures in the last minute; logged once a minute)",
                 ec.message(), shared.accept_failures);
  } else {
    spdlog::warn("HTTP accept failed: {}", ec.message());
  }
  shared.accept_logged = now;
  shared.accept_failures = 0;
}

// Takes a new connection within its address's share and the cap, evicting an idle session where
// it must. A newcomer whose address holds its whole share busy is closed at once. Returns false,
// leaving `socket` open, when every session is busy: the caller parks it.
bool admit(const std::shared_ptr<HttpServer::Shared>& shared, tcp::socket& socket,
           std::string key) {
  beast::error_code ec;
  std::size_t same = 0;
  for (const HttpSession* s : shared->sessions) same += s->key() == key ? 1 : 0;
  if (same >= shared->limits.max_sessions_per_address) {
    HttpSession* own = shared->oldest_idle(&key);
    if (own == nullptr) {
      socket.close(ec);
      return true;
    }
    own->close();
  }
  if (shared->sessions.size() >= shared->limits.max_sessions) {
    HttpSession* oldest = shared->oldest_idle(nullptr);
    if (oldest == nullptr) return false;
    oldest->close();
  }
  if (const auto& tls = shared->security->tls) {
    std::make_shared<HttpStreamSession<TlsStream>>(shared, std::move(key), std::move(socket), *tls)
        ->start();
  } else {
    std::make_shared<HttpStreamSession<PlainStream>>(shared, std::move(key), std::move(socket))
        ->start();
  }
  return true;
}

void accept_on(const std::shared_ptr<HttpServer::Shared>& shared, std::size_t index) {
  auto& listener = *shared->listeners[index];
  if (shared->stopped || listener.accepting || !shared->has_room()) return;
  listener.accepting = true;
  listener.acceptor.async_accept([shared, index](beast::error_code ec, tcp::socket socket) {
    auto& l = *shared->listeners[index];
    l.accepting = false;
    if (shared->stopped) return;
    if (ec) {
      log_accept_failure(*shared, ec);
      if (ec == boost::system::errc::too_many_files_open ||
          ec == boost::system::errc::too_many_files_open_in_system) {
        shed_one(*shared, l.acceptor);
      }
      // Pause, so the loop does not spin on the error.
      l.accepting = true;
      l.retry.expires_after(std::chrono::milliseconds(100));
      l.retry.async_wait([shared, index](beast::error_code wait_ec) {
        shared->listeners[index]->accepting = false;
        if (!wait_ec) accept_on(shared, index);
      });
      return;
    }
    beast::error_code peer_ec;
    const tcp::endpoint peer = socket.remote_endpoint(peer_ec);
    if (peer_ec) {
      accept_on(shared, index);  // gone already
      return;
    }
    std::string key = address_key(peer);
    shared->resuming = true;  // evictions below must not take parked connections first
    const bool taken = admit(shared, socket, key);
    shared->resuming = false;
    if (!taken) {
      shared->parked.emplace_back(std::move(socket), std::move(key));
      return;  // accepting resumes when a place frees
    }
    resume_accepting(shared);
  });
}

}  // namespace

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
    auto listener = std::make_unique<Shared::Listener>(shared_->io);
    tcp::acceptor* acceptor = &listener->acceptor;
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
    shared_->listeners.push_back(std::move(listener));
    accept_on(shared_, shared_->listeners.size() - 1);
  }
  return bound;
}

void HttpServer::set_security(std::shared_ptr<const HttpSecurity> security) {
  shared_->security = security ? std::move(security) : std::make_shared<const HttpSecurity>();
  for (HttpSession* s :
       std::vector<HttpSession*>(shared_->sessions.begin(), shared_->sessions.end())) {
    if (s->idle()) {
      s->close();
    } else {
      s->retire();
    }
  }
}

void HttpServer::stop() {
  if (shared_->stopped) return;
  shared_->stopped = true;
  for (auto& l : shared_->listeners) {
    l->retry.cancel();
    beast::error_code ec;
    l->acceptor.close(ec);
  }
  shared_->parked.clear();
  // First: the password checks it drops release the sessions waiting for them.
  if (shared_->verify_worker) shared_->verify_worker->stop();
  for (HttpSession* s :
       std::vector<HttpSession*>(shared_->sessions.begin(), shared_->sessions.end())) {
    s->close();
  }
}

std::size_t HttpServer::session_count() const { return shared_->sessions.size(); }

}  // namespace mcb
