#pragma once
// The asynchronous memcached client on the daemon's event loop: one persistent stats connection
// per target (StatsConnection) and the fresh-connection probe (Probe). TCP ("host:port", IPv4
// and IPv6, host names resolved on every connect) and unix sockets share one code path through
// Asio's generic stream socket. Host names are looked up on threads that the exit never waits
// for (collectors/name_lookup.hpp).
//
// Ownership and threading: both are owned through shared_ptr and keep themselves alive in their
// handlers; every method is called on the loop thread only; not thread-safe. Each operation ends
// by a deadline, and a handler is called exactly once per operation unless close()/cancel() came
// first.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "collectors/memcached_protocol.hpp"
#include "collectors/name_lookup.hpp"
#include "config/address.hpp"
#include "config/duration.hpp"

namespace mcb {

using SteadyClock = std::chrono::steady_clock;

// Bounds on what a peer can make the client buffer. A reply beyond them is a protocol error and
// the connection is closed, so memory stays bounded whatever the peer sends.
struct ClientLimits {
  std::size_t max_line = 4096;        // bytes in one line, newline excluded
  std::size_t max_reply = 64 * 1024;  // bytes in one reply (memcached 1.6 sends about 2 KiB)
};

// Pure. The wait before reconnect attempt number `failures` (1 for the first failure): `base`
// doubled per failure, capped at `cap`, then scaled by a jitter factor in [0.5, 1] taken from
// `unit_random` in [0, 1), so a fleet of daemons does not reconnect in step.
Duration reconnect_delay(int failures, Duration base, Duration cap, double unit_random);

// What an error message of this client says happened, for the evaluator: memcached answered but
// refused at its connection limit ("ERROR Too many open connections"), no connection or no reply
// came by a deadline (a memcached that hangs, or whose accept queue is full or disabled), the
// peer refused, reset or closed (nothing listening), or anything else (a protocol error).
enum class FailureKind { kNone, kAtLimit, kNoReply, kUnreachable, kProtocol };

// Pure. Classifies a message produced by StatsConnection or Probe; empty is kNone.
FailureKind classify_failure(std::string_view error);

// The result of one exchange on the stats connection.
struct StatsReply {
  Result<StatsMap> stats = fail("not asked");
  Result<StatsMap> settings = fail("not asked");  // asked only when `stats` succeeded
  SteadyClock::time_point received;               // when the `stats` reply was complete
};

// One persistent connection to a memcached target, reused for `stats` then `stats settings` on
// every query. Never holds more than one socket: a new connection is opened only after the old
// one is closed, and only during a query.
//
// A query that meets a slow peer ends at its deadline with an error, but the connection and the
// command in flight stay: the next query waits for that reply (and drops it) before asking
// again, so a memcached that is slow, stopped or has a full accept queue keeps being read over
// the connection that already exists instead of a new one. A connection whose reply has not come
// for `stall_limit` is closed. Errors (refused, reset, closed, protocol) close the connection;
// attempts to reconnect then back off exponentially with jitter. When a connection that sat
// idle between queries turns out to be closed (memcached restarted) the query reconnects at once,
// once.
class StatsConnection : public std::enable_shared_from_this<StatsConnection> {
 public:
  struct Options {
    ClientLimits limits;
    Duration backoff_base = std::chrono::seconds(1);
    Duration backoff_cap = std::chrono::seconds(30);
    Duration stall_limit = std::chrono::seconds(30);
  };
  using Handler = std::function<void(StatsReply)>;

  StatsConnection(boost::asio::io_context& io, Endpoint endpoint, Options options);

  // Runs one exchange and calls `handler` exactly once, on the loop thread and never from inside
  // query(), no later than `deadline`. Precondition: no query in flight.
  void query(SteadyClock::time_point deadline, Handler handler);

  // Closes the connection and drops the query in flight without calling its handler. Final.
  void close();

  bool connected() const { return state_ == State::kIdle || state_ == State::kBusy; }
  // Sockets this object has connected so far (tests and logs).
  std::uint64_t connects() const { return connects_; }

 private:
  enum class State { kDisconnected, kConnecting, kIdle, kBusy };
  enum class Command { kNone, kStats, kSettings };

  void start();
  void connect();
  void send(Command command);
  void read_more();
  void on_reply(std::string_view reply);
  void on_deadline();
  // Closes the socket and records the failure; `peer_closed` marks an error that a restarted
  // memcached causes on an idle connection (eligible for the one immediate retry).
  void drop(const std::string& reason, bool peer_closed);
  void finish();

  boost::asio::io_context& io_;
  Endpoint endpoint_;
  Options options_;
  boost::asio::generic::stream_protocol::socket socket_;
  std::shared_ptr<NameLookup> lookup_;  // the host-name lookup in flight, if any
  boost::asio::steady_timer timer_;
  std::minstd_rand random_;

  State state_ = State::kDisconnected;
  std::uint64_t generation_ = 0;  // bumped on every close: handlers of older sockets return
  std::uint64_t connects_ = 0;
  std::string in_;  // bytes read and not yet consumed; at most max_reply + one chunk
  std::array<char, 4096> chunk_{};

  Command outstanding_ = Command::kNone;  // the command whose reply is awaited
  std::uint64_t outstanding_query_ = 0;   // the query that sent it
  SteadyClock::time_point outstanding_since_;

  // The query in flight.
  Handler handler_;
  std::uint64_t query_id_ = 0;
  SteadyClock::time_point query_started_;
  SteadyClock::time_point deadline_;
  StatsReply reply_;
  bool retry_stale_ = false;

  // Reconnect backoff.
  int failures_ = 0;
  SteadyClock::time_point next_attempt_;
  std::string last_error_;
  bool closed_ = false;
};

// The outcome of one probe.
struct ProbeResult {
  bool success = false;
  double duration_seconds = 0;  // connect start to the reply, or to the failure
  std::string version;          // on success
  std::string error;            // on failure
  SteadyClock::time_point at;   // when the probe ended
  // The TCP handshake alone, which the kernels answer without memcached: a round-trip time of
  // the network. Absent over a unix socket, and when the connect failed.
  std::optional<double> connect_seconds;
};

// The fresh-connection probe: opens a new connection, sends `version`, times from the start of
// the connect (after name resolution) to the complete reply, and closes. It shares nothing with
// the stats connection, so a probe stuck in a full accept queue never delays stats.
class Probe : public std::enable_shared_from_this<Probe> {
 public:
  using Handler = std::function<void(ProbeResult)>;

  // Starts a probe; `handler` is called exactly once, on the loop thread and never from inside
  // start(), no later than `deadline`, unless cancel() comes first.
  static std::shared_ptr<Probe> start(boost::asio::io_context& io, const Endpoint& endpoint,
                                      SteadyClock::time_point deadline, Handler handler,
                                      std::size_t max_line = ClientLimits{}.max_line);

  void cancel();

  Probe(boost::asio::io_context& io, Endpoint endpoint, Handler handler, std::size_t max_line);

 private:
  void run(SteadyClock::time_point deadline);
  void read_more();
  void end(bool success, std::string text);

  boost::asio::io_context& io_;
  Endpoint endpoint_;
  Handler handler_;
  std::size_t max_line_;
  boost::asio::generic::stream_protocol::socket socket_;
  std::shared_ptr<NameLookup> lookup_;  // the host-name lookup in flight, if any
  boost::asio::steady_timer timer_;
  SteadyClock::time_point connect_started_;
  SteadyClock::time_point connected_at_;
  bool connected_ = false;
  std::string in_;
  std::array<char, 512> chunk_{};
};

}  // namespace mcb
