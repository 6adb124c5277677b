#pragma once
// HttpServer: Boost.Beast HTTP/1.1 on the daemon's io_context, for the endpoints of
// http_handler.hpp, over plain TCP or TLS, with optional basic authentication (HttpSecurity,
// from the web config file). It keeps connections alive for scrapers, and bounds what a client
// can cost: a deadline on the TLS handshake and on every read and write, header and body limits,
// a cap on concurrent sessions where a new connection evicts the session that has been waiting
// for a request the longest, and a bounded queue of password checks (bcrypt runs on a worker
// thread, never on the loop).
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
  std::chrono::milliseconds request_timeout = std::chrono::seconds(10);  // first request
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);  // between keep-alive requests
  std::chrono::milliseconds write_timeout = std::chrono::seconds(10);
  std::size_t header_limit = 8 * 1024;
  std::size_t body_limit = 4 * 1024;
  std::size_t max_sessions = 64;
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
  void accept(std::size_t index);

  std::shared_ptr<Shared> shared_;
};

}  // namespace mcb
