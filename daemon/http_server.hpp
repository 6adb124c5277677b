#pragma once
// HttpServer: Boost.Beast HTTP/1.1 on the daemon's io_context, for the endpoints of
// http_handler.hpp. It keeps connections alive for scrapers, and bounds what a client can cost:
// a deadline on every read and write, header and body limits, and a cap on concurrent sessions
// where a new connection evicts the session that has been waiting for a request the longest.
//
// Loop thread only; not thread-safe. Sessions may outlive the server object briefly (until their
// pending handlers run); they share its state through a shared_ptr.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/result.hpp"
#include "config/address.hpp"
#include "daemon/http_handler.hpp"

namespace mcb {

struct HttpLimits {
  std::chrono::milliseconds request_timeout = std::chrono::seconds(10);  // first request
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);  // between keep-alive requests
  std::chrono::milliseconds write_timeout = std::chrono::seconds(10);
  std::size_t header_limit = 8 * 1024;
  std::size_t body_limit = 4 * 1024;
  std::size_t max_sessions = 64;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  HttpServer(boost::asio::io_context& io, Handler handler, HttpLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting. An empty host listens on every IPv6 and IPv4 address (falling
  // back to IPv4 alone where IPv6 is off); a host name listens on each address it resolves to.
  // Returns the bound addresses, with the real port when 0 was asked for.
  Result<std::vector<std::string>> listen(const Endpoint& where);

  // Closes the listeners and every session.
  void stop();

  std::size_t session_count() const;

  struct Shared;

 private:
  void accept(std::size_t index);

  std::shared_ptr<Shared> shared_;
};

}  // namespace mcb
