#pragma once
// Host-name lookups (getaddrinfo) off the event loop, on threads that shutdown never waits for.
//
// Asio's resolver runs getaddrinfo on one private thread per io_context and joins that thread
// when the io_context is destroyed: a lookup that hangs (a DNS server that does not answer) then
// holds the daemon's exit for the resolver's whole timeout, and every other lookup of the
// process waits behind it. Here lookups run on a small pool of detached threads shared by the
// process (kLookupThreads, at most kMaxWaitingLookups waiting). A result is posted to the
// caller's loop unless the lookup was cancelled first or the loop's io_context is being
// destroyed; a lookup that still hangs at exit only holds a pool thread, which the exit ends.
//
// start() and cancel() are called on the thread that runs the io_context; the pool behind them is
// thread-safe. Every caller puts its own deadline on a lookup and cancels it there.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mcb {

inline constexpr std::size_t kLookupThreads = 4;
inline constexpr std::size_t kMaxWaitingLookups = 1024;

class NameLookup {
 public:
  using Addresses = std::vector<boost::asio::ip::tcp::endpoint>;
  // `error` is empty on success, when `addresses` holds at least one address.
  using Handler = std::function<void(std::string error, Addresses addresses)>;

  // Looks `host` up for TCP `port`. `handler` is posted to `io` exactly once, never from inside
  // start(), unless cancel() comes first or `io` is destroyed first (then it is destroyed
  // unrun). When kMaxWaitingLookups already wait, the handler is posted at once with an error.
  static std::shared_ptr<NameLookup> start(boost::asio::io_context& io, std::string host,
                                           std::uint16_t port, Handler handler);

  // The handler will not run; it is destroyed here. Idempotent.
  void cancel();

  struct Request;
  explicit NameLookup(std::shared_ptr<Request> request) : request_(std::move(request)) {}
  ~NameLookup() { cancel(); }
  NameLookup(const NameLookup&) = delete;
  NameLookup& operator=(const NameLookup&) = delete;

 private:
  std::shared_ptr<Request> request_;
};

}  // namespace mcb
