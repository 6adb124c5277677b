#pragma once
// HttpServer: Boost.Beast HTTP/1.1 on the daemon's io_context, for the endpoints of
// http_handler.hpp, over plain TCP or TLS, with optional basic authentication (HttpSecurity,
// from the web config file). It keeps connections alive for scrapers, and bounds what a client
// can cost: a deadline on the TLS handshake, on every request (the first counted from the start
// of the connection, a later one from its first byte, so a request trickled on a kept-alive
// connection cannot hold it for the idle timeout), on the idle wait between requests and on every
// response, a shorter one on a write that moves no byte (a client that reads nothing), header and
// body limits, and a bounded queue of password checks (bcrypt runs on a worker thread, never on
// the loop).
//
// Sessions are shared fairly: at most max_sessions in all and max_sessions_per_address from one
// client address (IPv6 addresses by their /64). A newcomer may evict an idle session (one that
// has sent nothing since it connected or since its last answer; never one with a request in),
// first its own address's oldest, else the oldest of all. When every session is busy the server
// stops accepting and newcomers wait in the kernel's accept queue until one ends, so a client
// holding its share of sessions open cannot lock out a scraper from another address. Accept
// errors (out of descriptors) pause accepting briefly and are logged once a minute at most; a
// spare descriptor lets the server answer such a newcomer with a close rather than leave it
// hanging. A connection ends with FIN after a complete answer and with a reset otherwise (a
// deadline, an eviction, an error), so the kernel never keeps the unread answers of a client it
// dropped.
//
// Loop thread only; not thread-safe. The io_context must outlive the server. Sessions may outlive
// the server object briefly (until their pending handlers run); they share its state through a
// shared_ptr.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/result.hpp"
#include "config/address.hpp"
#include "daemon/http/handler.hpp"
#include "daemon/http/security.hpp"

namespace mcb {

struct HttpLimits {
  // A whole request, header and body: the first from the start of the connection (over TLS, from
  // the end of the handshake, which has a deadline as long), a later one from its first byte.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(10);
  // Between kept-alive requests: from the end of an answer to the next request's first byte.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  std::chrono::milliseconds write_timeout = std::chrono::seconds(10);       // a whole response
  std::chrono::milliseconds write_stall_timeout = std::chrono::seconds(3);  // no byte moved
  std::size_t header_limit = 8 * 1024;
  std::size_t body_limit = 4 * 1024;
  std::size_t max_sessions = 64;
  std::size_t max_sessions_per_address = 16;
  std::size_t max_queued_password_checks = 16;  // beyond: 503 until the queue drains
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // A null `security` is plain HTTP without authentication.
  HttpServer(boost::asio::io_context& io, Handler handler, HttpLimits limits = {},
             std::shared_ptr<const HttpSecurity> security = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting. An empty host listens on every IPv6 and IPv4 address (falling
  // back to IPv4 alone where IPv6 is off); a host name listens on each address it resolves to.
  // Returns the bound addresses, with the real port when 0 was asked for.
  Result<std::vector<std::string>> listen(const Endpoint& where);

  // New rules for connections accepted from now on (null: plain HTTP without authentication).
  // Open connections finish the exchange in progress and close, so every client reconnects under
  // the new rules (TLS on or off, users).
  void set_security(std::shared_ptr<const HttpSecurity> security);

  // Closes the listeners and every session, and stops the password-check worker.
  void stop();

  std::size_t session_count() const;

  struct Shared;

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace mcb
