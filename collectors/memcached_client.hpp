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
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "collectors/memcached_protocol.hpp"
#include "collectors/name_lookup.hpp"
#include "collectors/netns.hpp"
#include "common/clock.hpp"
#include "config/address.hpp"
#include "config/config.hpp"
#include "config/duration.hpp"

namespace mcb {

// The loop's clock (common/clock.hpp): steady_clock, or a test's ManualTime. Every deadline of
// the stats connection and the probe waits on it.
using SteadyClock = LoopClock;

// A target's TLS settings made ready (the OpenSSL context with its CA, certificate and key), and
// one connection's TLS state. Defined in memcached_client.cpp.
class TlsClient;
class TlsSession;

// Where the client's sockets go: the target's address, the network namespace they are created in
// (unset: the daemon's own), and TLS over them (unset: plain text). A socket for another
// namespace is created on a thread that entered it (collectors/netns.hpp) and then used from the
// loop like any other. With TLS every connection completes a handshake, verified as the target's
// `tls:` says, before its first command.
struct Transport {
  Transport() = default;
  Transport(Endpoint e) : endpoint(std::move(e)) {}  // NOLINT(google-explicit-constructor)
  Transport(Endpoint e, std::optional<NetnsConfig> ns)
      : endpoint(std::move(e)), netns(std::move(ns)) {}

  // The transport of a configured target. A TLS file that cannot be loaded is kept as tls_error:
  // every connection then fails with it. Every such file is in tls_errors, for --check-config.
  static Transport of(const TargetConfig& target);

  Endpoint endpoint;
  std::optional<NetnsConfig> netns;
  std::string procfs = "/proc";  // where /proc/PID/ns/net of a netns_pid is
  std::shared_ptr<TlsClient> tls;
  std::string tls_error;                // the first of tls_errors; empty when all loaded
  std::vector<std::string> tls_errors;  // one per file (or the system's CAs) that did not load
};

// Bounds on what a peer can make the client buffer. A reply beyond them is a protocol error and
// the connection is closed, so memory stays bounded whatever the peer sends.
struct ClientLimits {
  std::size_t max_line = 4096;  // bytes in one line, newline excluded
  // Bytes in one reply. memcached 1.6.18 sends about 2 KiB for `stats` and for `stats settings`;
  // `stats items` grows with the slab classes in use, to 53 KiB at all 63 (`stats slabs` to 22
  // KiB).
  std::size_t max_reply = 256 * 1024;
};

// Pure. The wait before reconnect attempt number `failures` (1 for the first failure): `base`
// doubled per failure, capped at `cap`, then scaled by a jitter factor in [0.5, 1] taken from
// `unit_random` in [0, 1), so a fleet of daemons does not reconnect in step.
Duration reconnect_delay(int failures, Duration base, Duration cap, double unit_random);

// Why an exchange failed, decided where it failed (never read back from a message).
enum class FailureKind {
  kNone,
  // memcached answered but refused at its connection limit ("ERROR Too many open connections").
  kAtLimit,
  // No connection, or no reply, by a deadline: a memcached that hangs or is stopped, or whose
  // accept queue is full or disabled.
  kNoReply,
  // The connect failed (refused, unreachable, name not resolved), or the peer reset or closed a
  // connection that had answered before.
  kUnreachable,
  // The connect failed for want of permission (EACCES, EPERM): a unix socket whose mode,
  // memcached's
  // `-a`, keeps the daemon's user out.
  kPermissionDenied,
  // The connection was accepted, but the peer closed or reset it without a byte of reply, or its
  // first bytes were not text: no memcached text protocol on this port. memcached with
  // `-B binary` or `-S` (SASL) reads every request as a binary header and closes on a text one;
  // a TLS listener (`-Z`) resets it; so does a TCP proxy whose backend is down.
  kNotTextProtocol,
  // The peer spoke text but not as memcached does: a malformed or oversized reply, an error line.
  kProtocol,
  // No socket could be made in the target's network namespace (`netns`, `netns_pid`): a
  // privilege is missing (setns needs CAP_SYS_ADMIN; /proc/PID/ns/net, ptrace access), or the
  // namespace is gone. The message says which (collectors/netns.hpp).
  kNamespace,
  // The target's `tls:` could not be made to work: a file it names does not load, the handshake
  // failed (memcached's certificate does not verify, or no TLS on that port) or did not finish
  // by the deadline. The message says which.
  kTls,
};

// Pure. A short name for logs and JSON: "none", "at_limit", "no_reply", "unreachable",
// "permission_denied", "not_text_protocol", "protocol", "namespace", "tls".
std::string_view failure_kind_name(FailureKind kind);

// Pure. What usually causes a failure of this kind and what fixes it, in a sentence or two for a
// person (empty for kNone).
std::string_view failure_kind_causes(FailureKind kind);

// Which replies a query asks for besides `stats`. The first query on a new connection asks all
// of them whatever the request says, and its reply holds them.
struct StatsRequest {
  bool settings = true;  // `stats settings`
  bool slabs = true;     // `stats items` and `stats slabs`
};

// The result of one exchange on the stats connection. A reply that was not asked for, or did not
// come, is an error saying why.
struct StatsReply {
  Result<StatsMap> stats = fail("not asked");
  Result<StatsMap> settings = fail("not asked");  // `stats settings`, when asked
  // `stats items` and `stats slabs`, when asked: the complete replies as they came, for
  // parse_stats_items and parse_stats_slabs (an error line is a reply too).
  Result<std::string> items = fail("not asked");
  Result<std::string> slabs = fail("not asked");
  FailureKind failure = FailureKind::kNone;  // why `stats` failed
  SteadyClock::time_point received;          // when the `stats` reply was complete
};

// One persistent connection to a memcached target, reused for every query. A query writes its
// commands at once (`stats`, and `stats settings`, `stats items`, `stats slabs` when asked) and
// reads the replies in order. Never holds more than one socket: a new connection is opened only
// after the old one is closed, and only during a query.
//
// The first write on a new connection always asks all four (49 bytes): a server that reads
// memcached's binary protocol on this port (`-B binary`, `-S`) takes the first 24 bytes for a
// request header and closes the connection at once, which the query reports as
// kNotTextProtocol instead of waiting for its deadline.
//
// A query that meets a slow peer ends at its deadline with an error, but the connection and the
// replies still due stay: the next query waits for them (and drops them) before asking again, so
// a memcached that is slow, stopped or has a full accept queue keeps being read over the
// connection that already exists instead of a new one. A connection whose replies have not come
// for `stall_limit` is closed. Errors (refused, reset, closed, protocol) close the connection;
// attempts to reconnect then back off exponentially with jitter. When a connection that sat idle
// between queries turns out to be closed (memcached restarted) the query reconnects at once, once.
class StatsConnection : public std::enable_shared_from_this<StatsConnection> {
 public:
  struct Options {
    ClientLimits limits;
    Duration backoff_base = std::chrono::seconds(1);
    Duration backoff_cap = std::chrono::seconds(30);
    Duration stall_limit = std::chrono::seconds(30);
  };
  using Handler = std::function<void(StatsReply)>;

  StatsConnection(boost::asio::io_context& io, Transport transport, Options options);

  // Runs one exchange and calls `handler` exactly once, on the loop thread and never from inside
  // query(), no later than `deadline`. Precondition: no query in flight.
  void query(SteadyClock::time_point deadline, Handler handler, StatsRequest request = {});

  // Ends the query in flight now as its deadline would ("no reply to stats by the next sample"),
  // calling its handler before returning; nothing when none is in flight.
  void expire();

  // Closes the connection and drops the query in flight without calling its handler. Final.
  void close();

  bool connected() const { return state_ == State::kIdle || state_ == State::kBusy; }
  const Transport& transport() const { return transport_; }
  // Sockets this object has connected so far (tests and logs).
  std::uint64_t connects() const { return connects_; }

 private:
  enum class State { kDisconnected, kConnecting, kIdle, kBusy };
  enum class Command { kStats, kSettings, kItems, kSlabs };

  void start();
  void connect();
  void secure(std::uint64_t gen);  // the TLS handshake on the socket just connected
  void send();
  void read_more();
  void on_bytes(std::size_t n);
  void on_reply(Command command, std::string_view reply);
  // `overdue`: ended by expire() (the next sample came), not by the query's own deadline.
  void on_deadline(bool overdue = false);
  // Closes the socket and records the failure; `peer_closed` marks an error that a restarted
  // memcached causes on an idle connection (eligible for the one immediate retry).
  void drop(const std::string& reason, FailureKind kind, bool peer_closed);
  // Sets the result of every command of this query still unanswered.
  void fail_unanswered(const std::string& reason, FailureKind kind);
  // Sets the result of `command` to an error.
  void fail_command(Command command, const std::string& reason);
  void finish();

  boost::asio::io_context& io_;
  Transport transport_;
  Endpoint endpoint_;
  Options options_;
  std::unique_ptr<NetnsWatch> netns_watch_;  // with transport_.netns: armed while connected
  std::string netns_gone_;                   // why the watch failed, until the query drops
  boost::asio::generic::stream_protocol::socket socket_;
  std::shared_ptr<TlsSession> tls_;     // of the connection, with TLS
  std::shared_ptr<NameLookup> lookup_;  // the host-name lookup in flight, if any
  bool resolving_ = false;              // the address is being looked up
  LoopTimer timer_;
  std::minstd_rand random_;

  State state_ = State::kDisconnected;
  std::uint64_t generation_ = 0;  // bumped on every close: handlers of older sockets return
  std::uint64_t connects_ = 0;
  bool received_ = false;  // this socket has received a byte
  bool asked_ = false;     // this socket has been written to
  std::string in_;         // bytes read and not yet consumed; at most max_reply + one chunk
  std::string out_;        // the write in flight
  std::array<char, 4096> chunk_{};

  std::deque<Command> due_;      // replies awaited, in order
  std::uint64_t due_query_ = 0;  // the query that asked for them
  SteadyClock::time_point due_since_;

  // The query in flight.
  Handler handler_;
  std::uint64_t query_id_ = 0;
  StatsRequest request_;
  SteadyClock::time_point query_started_;
  SteadyClock::time_point deadline_;
  StatsReply reply_;
  std::vector<Command> unanswered_;  // of this query
  bool retry_stale_ = false;

  // Reconnect backoff.
  int failures_ = 0;
  SteadyClock::time_point next_attempt_;
  std::string last_error_;
  FailureKind last_kind_ = FailureKind::kNone;
  bool closed_ = false;
};

// The outcome of one probe.
struct ProbeResult {
  bool success = false;
  double duration_seconds = 0;               // connect start to the reply, or to the failure
  std::string version;                       // on success
  std::string error;                         // on failure: what was seen
  SteadyClock::time_point at;                // when the probe ended
  FailureKind failure = FailureKind::kNone;  // on failure: its kind
  // The TCP handshake alone, which the kernels answer without memcached: a round-trip time of
  // the network. Absent over a unix socket, and when the connect failed.
  std::optional<double> connect_seconds;
};

// The fresh-connection probe: opens a new connection, sends `version` three times in one write
// (27 bytes, so that a binary-protocol or TLS listener closes at once rather than wait for more),
// times from the start of the connect (after name resolution) to the first complete reply line,
// and closes. It shares nothing with the stats connection, so a probe stuck in a full accept queue
// never delays stats.
class Probe : public std::enable_shared_from_this<Probe> {
 public:
  using Handler = std::function<void(ProbeResult)>;

  // Starts a probe; `handler` is called exactly once, on the loop thread and never from inside
  // start(), no later than `deadline`, unless cancel() comes first.
  static std::shared_ptr<Probe> start(boost::asio::io_context& io, const Transport& transport,
                                      SteadyClock::time_point deadline, Handler handler,
                                      std::size_t max_line = ClientLimits{}.max_line);

  void cancel();

  Probe(boost::asio::io_context& io, Transport transport, Handler handler, std::size_t max_line);

 private:
  void run(SteadyClock::time_point deadline);
  void secure();  // the TLS handshake, when the transport has TLS; then ask()
  void ask();     // sends `version`
  void read_more();
  void end(bool success, std::string text, FailureKind kind = FailureKind::kNone);

  boost::asio::io_context& io_;
  Transport transport_;
  Endpoint endpoint_;
  Handler handler_;
  std::size_t max_line_;
  boost::asio::generic::stream_protocol::socket socket_;
  std::shared_ptr<TlsSession> tls_;     // of the connection, with TLS
  std::shared_ptr<NameLookup> lookup_;  // the host-name lookup in flight, if any
  LoopTimer timer_;
  SteadyClock::time_point connect_started_;
  SteadyClock::time_point connected_at_;
  bool connected_ = false;
  bool resolving_ = false;    // the address is being looked up
  bool handshaking_ = false;  // the TLS handshake is under way
  std::string in_;
  std::array<char, 512> chunk_{};
};

}  // namespace mcb
