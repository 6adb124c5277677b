#pragma once
// Signals: one sample of everything the evaluator judges, as plain values. The app fills it from
// the collectors' last samples after every cycle (collect_signals); tests build it by hand. A
// value the daemon could not measure this cycle is absent (nullopt or an empty list), never a
// stale number. Plain values; thread-safe as values are.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mcb {

// One memcached target.
struct TargetSignals {
  std::string name;                   // the `target` label
  std::string address;                // as configured: "host:port" or "unix:/path"
  std::string version;                // memcached's, when up
  std::optional<std::uint16_t> port;  // TCP targets: joins the target to its listener
  bool up = false;                    // `stats` answered on the persistent connection this cycle
  std::string stats_error;            // why not up
  // memcached answered a connection (ours or the probe's) with "ERROR Too many open
  // connections": it is alive and at its connection limit.
  bool refused_at_limit = false;
  // memcached `stats` (absent when down or when this memcached does not report it)
  std::optional<double> curr_connections;
  std::optional<double> max_connections;
  std::optional<double> reserved_fds;
  std::optional<double> total_connections;
  std::optional<double> rejected_connections;
  std::optional<double> listen_disabled_num;
  std::optional<double> time_in_listen_disabled_us;
  std::optional<double> accepting_conns;
  std::optional<double> cpu_utilization;  // rusage rate per worker thread over the last interval
  std::optional<double> threads;
  std::optional<double> bytes;
  std::optional<double> limit_maxbytes;
  std::optional<double> evictions;
  std::optional<double> uptime;
  // memcached `stats settings`
  std::optional<double> tcp_backlog;
  std::optional<bool> maxconns_fast;
  // the fresh-connection probe
  bool probe_enabled = false;
  std::optional<bool> probe_success;  // the last probe, once one has finished
  std::optional<double> probe_seconds;
  std::string probe_error;
};

// One LISTEN socket on a watched port.
struct ListenerSignals {
  std::string address;
  std::uint16_t port = 0;
  double queue_length = 0;
  double queue_max = 0;   // 0: the application stopped accepting (listen(fd, 0))
  double queue_peak = 0;  // largest length over the peak window
  // Connections it dropped since it was created (a counter), where the kernel reports it.
  std::optional<double> drops = std::nullopt;
};

struct ClientCount {
  std::string client;
  double connections = 0;
};

// Connections on one watched port.
struct PortSignals {
  std::uint16_t port = 0;
  double established = 0;
  double clients = 0;                    // distinct client addresses
  std::vector<ClientCount> top_clients;  // largest first
  double send_queue_blocked = 0;         // server-side sockets holding unread reply bytes
};

struct NicSignals {
  std::string device;
  std::optional<double> receive_utilization;  // 0..1 of link speed over the last interval
  std::optional<double> transmit_utilization;
  double receive_drops = 0;  // counters
  double transmit_drops = 0;
};

struct HostSignals {
  std::optional<double> listen_overflows;  // counters, per network namespace
  std::optional<double> listen_drops;
  std::optional<double> somaxconn;
};

struct Signals {
  std::chrono::steady_clock::time_point now;   // windows and `for` durations
  std::chrono::system_clock::time_point wall;  // `since` timestamps shown to people
  HostSignals host;
  std::vector<TargetSignals> targets;
  bool sockets_known = false;  // the sockdiag collector ran this cycle
  std::vector<ListenerSignals> listeners;
  std::vector<PortSignals> ports;
  bool nics_known = false;  // the netdev collector ran this cycle
  std::vector<NicSignals> nics;
};

struct CollectorSet;
struct Config;

// The signals of the collectors' last samples. A disabled or failed collector leaves its part
// absent (and sockets_known / nics_known false).
Signals collect_signals(const CollectorSet& collectors, const Config& config,
                        std::chrono::steady_clock::time_point now,
                        std::chrono::system_clock::time_point wall);

}  // namespace mcb
