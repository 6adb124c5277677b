#pragma once
// The sockdiag collector: memcached's listeners and connections as the kernel sees them, from
// netlink sock_diag dumps filtered in the kernel to the watched ports (their local port).
//
// Each run dumps the watched ports' sockets (dump_watched) and reports per listener the accept
// queue (length, max, and its peak over `peak_window`) and the connections that came to it by
// state, the clients holding them and the sockets whose send queue is blocked. Between runs a
// sampler on its own timer reads only the LISTEN sockets every `sample_interval` (the kernel then
// skips the connection table, so it costs the same whatever the number of connections) and keeps
// the peak, so a burst shorter than a run's interval still shows. The sampler runs while a queue
// is non-empty or the application stopped accepting, and for `peak_window` after; or when the
// owner calls sample_closely() (something connection-related moves). At rest, with every queue
// empty, each run's own read is the only sample: ten wake-ups a second fewer, the larger part of
// an idle daemon's CPU. `sample_at_rest` keeps the sampler running always. It ends with stop().
//
// Owned through shared_ptr (the sampler's timer holds a weak_ptr); loop thread only; not
// thread-safe. A dump runs synchronously and is bounded by a deadline (collectors/netlink.hpp):
// half the interval for a run, half of sample_interval for the sampler.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "collectors/collector.hpp"
#include "collectors/failure_log.hpp"
#include "collectors/inet_diag.hpp"
#include "collectors/netlink.hpp"
#include "collectors/netns.hpp"
#include "collectors/unix_diag.hpp"
#include "common/clock.hpp"
#include "config/config.hpp"

namespace mcb {

// A listener's identity: its port and canonical local address.
using ListenerKey = std::pair<std::uint16_t, IpAddress>;
using ListenerPeaks = std::map<ListenerKey, std::uint32_t>;

struct ClientConnections {
  std::string client;  // the remote address, IPv4-mapped IPv6 shown as IPv4
  std::uint64_t connections = 0;
};

// One watched listener, keyed by (port, address): its accept queue, while a LISTEN socket is
// open there, and the server-side connections that came to it. A connection belongs to the
// listener on its own local address and port, else to the wildcard listener (0.0.0.0, or :: which
// also takes IPv4 on a dual-stack socket) on its port; one that matches no open listener (the
// listener closed, memcached went away) is kept under its own local address with `listening`
// false, so its figures are never given to another memcached.
struct ListenerSample {
  std::string address;     // "0.0.0.0", "::", "127.0.0.1"; "unix:/path" for a unix socket
  std::uint16_t port = 0;  // 0 for a unix socket
  // A listening unix stream socket (unix_diag): its queue figures only, no connection figures.
  bool unix_socket = false;
  bool listening = false;            // a LISTEN socket is open here; the queue figures are its own
  std::optional<std::uint32_t> uid;  // the user owning its (first) LISTEN socket, when listening
  std::uint32_t queue_length = 0;    // idiag_rqueue: connections waiting for accept()
  std::uint32_t queue_max = 0;       // idiag_wqueue; 0: the application stopped accepting
  std::uint32_t queue_peak = 0;      // largest queue_length over the peak window
  // Connections the listener dropped since it was created (DiagSocket::drops), when the kernel
  // reports it: the overflows of this listener, where ListenOverflows counts the host's.
  std::optional<std::uint64_t> drops = std::nullopt;

  // Server-side sockets that came to this listener, by state name: every state but "listen"
  // present, "established" included.
  std::map<std::string, std::uint64_t, std::less<>> connections;
  // ESTABLISHED connections per remote address: the `top_clients` largest, most first (ties by
  // address), and the connections of every other client summed.
  std::vector<ClientConnections> top_clients;
  std::uint64_t other_clients_connections = 0;
  std::uint64_t clients = 0;  // distinct remote addresses with an ESTABLISHED connection
  // Server-side sockets whose send queue holds more than send_queue_threshold_bytes: replies the
  // client is not reading.
  std::uint64_t send_queue_blocked = 0;

  std::uint64_t established() const;
};

// "127.0.0.1:11211", "[::1]:11211", "unix:/path": how a listener is written for people.
std::string listener_name(std::string_view address, std::uint16_t port);
inline std::string listener_name(const ListenerSample& l) {
  return listener_name(l.address, l.port);
}

// Whether `address` is the wildcard address of its family (0.0.0.0 or ::).
bool is_wildcard(std::string_view address);

struct SockdiagSample {
  // Watched listeners by (port, address). Sockets sharing an address and port (SO_REUSEPORT) are
  // one listener with their queues summed.
  std::vector<ListenerSample> listeners;
  // When the connection figures were counted: the last walk of the connection table. The queue
  // figures are always this run's.
  std::chrono::steady_clock::time_point connections_at{};
};

// Pure: `listeners` (a listeners-only sample of this run) with the connection figures of the last
// walk (`walked`) for each listener it had; groups of connections without a listener are kept
// from the walk. Returns the keys of listeners the walk did not see (they need one).
std::vector<ListenerKey> merge_connections(SockdiagSample& listeners, const SockdiagSample& walked);

struct SockdiagOptions {
  std::vector<std::uint16_t> ports;  // sorted, unique
  // Ports watched for a memcached that says it listens there (not configured ones): only a
  // listener owned by this user counts, with the connections that came to it; other sockets on
  // the port are another service's and left out.
  std::map<std::uint16_t, std::uint32_t> port_owners;
  int top_clients = 10;
  std::uint64_t send_queue_threshold_bytes = 65536;
};

// The LISTEN sockets of both families that pass `filter` (compile_port_filter of the watched
// ports), with their drop counters, appended to `out`. Cheap whatever the number of
// connections: for LISTEN alone the kernel walks its listener table only.
Status dump_listeners(SockDiagSocket& socket, const std::vector<std::byte>& filter,
                      SockDiagSocket::Clock::time_point deadline, std::vector<DiagSocket>& out);

// One run's dump, appended to `out`: dump_listeners, then, when a listener is there, the
// connections (kConnectionStates) of both families in one dump (SockDiagSocket::dump_tcp). The
// kernel walks its whole connection table for it, once for both families (a cost that grows with
// every socket on the machine, see README "Benchmarks"); one dump per family walked it twice.
// What this leaves out: connections of a listener that has gone while none is left (memcached
// down or restarting), which are closing anyway.
Status dump_watched(SockDiagSocket& socket, const std::vector<std::byte>& filter,
                    SockDiagSocket::Clock::time_point deadline, std::vector<DiagSocket>& out);

// Pure: whether `s` is on a port watched for a memcached's sake (options.port_owners) and owned by
// another user than that memcached: another service's socket, left out of every figure.
bool foreign_socket(const DiagSocket& s, const SockdiagOptions& options);

// Pure: aggregates the sockets of a dump into listeners, connections joined to the listener they
// came to (see ListenerSample). Sockets whose local port is not watched are ignored, so an
// unfiltered dump gives the same sample; so are foreign_socket ones. A listener's queue_peak is the
// larger of its length and its entry in `peaks`.
SockdiagSample sockdiag_sample(std::span<const DiagSocket> sockets, const SockdiagOptions& options,
                               const ListenerPeaks& peaks = {});

// Pure. The help text of the peak names its window and sampling period; `connections_age` is the
// age of the connection figures at this run.
Families sockdiag_families(const SockdiagSample& sample, Duration sample_interval,
                           Duration peak_window,
                           std::optional<Duration> connections_age = std::nullopt);

// The largest value added over a sliding window of time. Memory is bounded by the number of
// additions within one window. Not thread-safe.
class PeakWindow {
 public:
  using Clock = LoopClock;

  explicit PeakWindow(Duration window) : window_(window) {}

  // Precondition: `at` is not earlier than any earlier addition.
  void add(Clock::time_point at, std::uint32_t value);

  // The largest value added in (now - window, now]; 0 if none.
  std::uint32_t peak(Clock::time_point now);

 private:
  Duration window_;
  std::deque<std::pair<Clock::time_point, std::uint32_t>> decreasing_;  // values strictly fall
};

// Pure: the listening unix sockets bound to `paths` (each once; sockets sharing a path summed),
// as listeners named "unix:<path>", in the order of `paths`; a path nothing listens on is left
// out. A listener's queue_peak is the larger of its length and its entry in `peaks`.
std::vector<ListenerSample> unix_listeners(std::span<const UnixDiagSocket> sockets,
                                           std::span<const std::string> paths,
                                           const std::map<std::string, std::uint32_t>& peaks = {});

// Where a sockdiag collector looks: the network namespace (unset: the daemon's own; another is
// entered to open the netlink socket there, collectors/netns.hpp) and the unix socket paths of
// its targets.
struct SockdiagScope {
  std::optional<NetnsConfig> netns;
  std::string procfs = "/proc";
  std::vector<std::string> unix_paths;
};

class SockdiagCollector final : public Collector,
                                public std::enable_shared_from_this<SockdiagCollector> {
 public:
  using Clock = LoopClock;
  using Sample = SockdiagSample;

  // `interval`: the scheduler's; it bounds each run's dump to half of it.
  SockdiagCollector(boost::asio::io_context& io, const SockdiagConfig& config,
                    std::vector<std::uint16_t> watched_ports, Duration interval,
                    SockdiagScope scope = {});

  std::string_view name() const override { return "sockdiag"; }

  // One run: the listeners, and the connections when a walk is due (connections_interval since
  // the last, a walk asked for with walk_next(), a listener the last walk did not see, or the
  // first run); between walks the connection figures are the last walk's. Fails when a dump
  // fails, or (with the families of the dump still published) when the sampler failed since the
  // previous run, naming its error.
  void collect(Done done) override;
  void stop() override;
  // The families of the last good run, built now (when /metrics is rendered, not every run);
  // none after a failed run.
  std::vector<prometheus::MetricFamily> Collect() const override;

  // The next run walks the connections, whatever the interval: something connection-related
  // is wrong and needs them every sample.
  void walk_next() { walk_requested_ = true; }
  // Watches the listeners on the ports of `owners` too, besides the configured ones: the other
  // listeners a memcached says it has (memcached_listen_endpoints), each port with the user that
  // owns that memcached's listeners. On such a port only that user's sockets count
  // (SockdiagOptions::port_owners): a memcached-compatible server that names another service's
  // port gets nothing from it. The set replaces the last one given, so a port no longer named is
  // dropped; nothing changes when it is the same, else the next run dumps the listeners and walks
  // the connections. At most kMaxMemcachedPorts ports besides the configured ones (the lowest),
  // logged once when there are more. True when the watched ports changed (logged then; another
  // owner on the same ports, memcached restarted as another user, is not).
  bool watch_more_ports(const std::map<std::uint16_t, std::uint32_t>& owners);
  static constexpr std::size_t kMaxMemcachedPorts = 64;
  // The ports watched now, sorted (tests).
  const std::vector<std::uint16_t>& watched_ports() const { return options_.ports; }
  // Samples the accept queues every sample_interval from now for a peak window, whatever they
  // hold: something connection-related moves and a burst may follow.
  void sample_closely();
  // Whether the sampler is running now (tests).
  bool sampling_closely() const { return sampler_.running(); }
  std::uint64_t walks() const { return walks_; }
  // Listener dumps and single-listener lookups since the start (tests and benchmarks).
  std::uint64_t listener_dumps() const { return listener_dumps_; }
  std::uint64_t listener_lookups() const { return listener_lookups_; }

  // The sample of the last run, if it succeeded.
  const std::optional<SockdiagSample>& last() const { return last_; }

  // Whether the last run succeeded, read the drop counter (ListenerSample::drops) of every
  // watched TCP listener open, found none risen since the run before nor any closed since then
  // (its last drops are unseen), and no accept queue is being sampled closely: every overflow at
  // memcached's listeners would have shown here, so the host's TcpExt counters
  // (NetstatCollector::pace) can wait. False before the first run.
  bool listeners_at_rest() const { return at_rest_; }

 private:
  // A listener found by the last listener dump, to be looked up by address and port until the
  // next: the kernel's socket lookup walks no table. Sockets sharing an address and port
  // (SO_REUSEPORT) are a group, which only a dump sums.
  struct Known {
    IpAddress address;  // as bound, in its socket's family (an IPv4-mapped address stays IPv6)
    std::uint16_t port = 0;
    bool group = false;
  };

  // Adds the listeners' queue lengths to their peak windows (a listener that went away takes its
  // window with it), and starts or stops the sampler (pace_sampler). Allocates nothing while the
  // listeners stay the same and the sampler keeps its pace.
  void observe_listeners(std::span<const DiagSocket> sockets, Clock::time_point at);
  // Watches `ports` (sorted and made unique here) and compiles their filter; false when they are
  // the ports watched already.
  bool set_ports(std::vector<std::uint16_t> ports);
  // Logs the watched ports (watch_more_ports), with the count of changes left out before.
  void log_ports();
  // Erases the foreign_socket ones from `sockets`, from index `first` on.
  void drop_foreign(std::vector<DiagSocket>& sockets, std::size_t first) const;
  // Runs the sampler until close_until_, stops it after.
  void pace_sampler(Clock::time_point now);
  // Each listener's peak at `at`, after observe_listeners.
  ListenerPeaks peaks(Clock::time_point at);
  // The watched listeners now: looked up one by one when all are known and single, else
  // dumped (and learned).
  Status read_listeners(Clock::time_point deadline, std::vector<DiagSocket>& out);
  void learn_listeners(std::span<const DiagSocket> sockets);
  void sample_listeners();
  // Ends a run whose sample is in last_ (setting at_rest_ from it): failed when the sampler
  // failed since the last run.
  void finish_run(Done done);
  // Dumps the listening unix sockets into unix_sampled_ and adds the queue length of each of
  // scope_.unix_paths to its peak window (a path nothing listens on loses its window); a queue
  // that holds a connection, or a max of 0, keeps the sampler running as for TCP.
  Status observe_unix_listeners(Clock::time_point deadline);
  // The unix listeners of scope_.unix_paths now (observe_unix_listeners), with their peaks.
  Result<std::vector<ListenerSample>> read_unix_listeners(Clock::time_point deadline);

  PeriodicTimer sampler_;
  SockdiagOptions options_;
  std::vector<std::uint16_t> configured_ports_;  // sorted, unique; options_.ports adds to them
  bool too_many_ports_logged_ = false;
  std::map<std::uint16_t, std::uint32_t> last_owners_;  // watch_more_ports's last argument
  LogBudget ports_log_;                                 // its "watching the listeners" lines
  Duration interval_;
  Duration sample_interval_;
  Duration peak_window_;
  Duration connections_interval_;
  bool sample_at_rest_;
  Clock::time_point close_until_{};  // the sampler runs until then
  bool walk_requested_ = true;       // the first run walks
  std::uint64_t walks_ = 0;
  std::uint64_t listener_dumps_ = 0;
  std::uint64_t listener_lookups_ = 0;
  std::optional<SockdiagSample> walked_;  // the last walk's sample
  std::vector<Known> known_;
  bool relearn_ = true;            // a lookup missed, or nothing learned yet: dump the listeners
  std::vector<std::byte> filter_;  // compiled from options_.ports; empty when none are watched
  std::optional<std::string> filter_error_;  // why the ports did not compile to a filter
  SockDiagSocket socket_;
  std::map<ListenerKey, PeakWindow> peaks_;
  // Kept between samples so that the sampler allocates nothing: the sockets of a sample, and
  // the queue length of each listener in it.
  std::vector<DiagSocket> sampled_;
  std::vector<DiagSocket> run_sockets_;  // a run's, the walk's included
  std::vector<std::pair<ListenerKey, std::uint32_t>> lengths_;
  SockdiagScope scope_;
  // With scope_.netns: whether the socket's namespace is still the target's (armed by the
  // socket's opener, checked every run).
  std::optional<NetnsWatch> watch_;
  std::vector<UnixDiagSocket> unix_sampled_;      // the last unix_diag dump, kept as sampled_ is
  std::map<std::string, PeakWindow> unix_peaks_;  // by path
  std::optional<std::string> sampler_error_;      // the sampler's last failure since the last run
  std::optional<SockdiagSample> last_;
  std::optional<Duration> last_age_;  // of the connection figures, at the last run
  bool at_rest_ = false;
  // Each open TCP listener's drop counter at the last run, by listener_name.
  std::vector<std::pair<std::string, std::uint64_t>> drops_;
  bool stopped_ = false;
};

}  // namespace mcb
