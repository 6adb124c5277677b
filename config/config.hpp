#pragma once
// The daemon's configuration: typed structs with every default built in, loaded from YAML.
//
// A default-constructed Config is what the daemon runs with when no file exists. Loading is a
// pure function from text to Result<Config>; every error names the file, line, column, the key
// path and the reason, and all errors of a file are reported at once. Plain values; thread-safe
// as values are.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "config/address.hpp"
#include "config/duration.hpp"

namespace mcb {

inline constexpr std::string_view kDefaultConfigFile = "/etc/mcbacklogd/mcbacklogd.yaml";
inline constexpr std::string_view kDefaultListenAddress = ":9741";
inline constexpr std::string_view kDefaultTargetAddress = "127.0.0.1:11211";

// The network namespace a target lives in, when not the daemon's own: a bind-mounted namespace
// file (`netns: /run/netns/NAME`) or the namespace of a process (`netns_pid: PID`, its
// /proc/PID/ns/net). Targets with equal NetnsConfig share one namespace's collectors.
struct NetnsConfig {
  std::string path;  // `netns:`; empty with a pid
  int pid = 0;       // `netns_pid:`; 0 with a path

  bool operator==(const NetnsConfig&) const = default;
  auto operator<=>(const NetnsConfig&) const = default;
  // "/run/netns/NAME" or "pid 1234", for messages.
  std::string describe() const;
};

// TLS to memcached (its -Z): verify its certificate against `ca_file` (empty: the system's CAs)
// and the name `server_name` (empty: the address's host), present `cert_file` and `key_file`
// when memcached asks for a client certificate. Relative files are relative to the config file.
struct TlsClientConfig {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string server_name;
  bool insecure_skip_verify = false;  // encrypt, but accept any certificate
  // Where each file is named ("FILE:LINE:COL: targets[N].tls.ca_file"), which begins the message
  // when it cannot be loaded; empty when not from a file.
  std::string ca_file_origin;
  std::string cert_file_origin;
  std::string key_file_origin;
};

struct TargetConfig {
  std::string name;  // the `target` label; defaults to the address text
  Endpoint address;  // parsed from "host:port", "[v6]:port" or "unix:/path"
  Duration probe_interval = std::chrono::seconds(5);  // 0 disables the probe
  // Period of `stats items` and `stats slabs` (the per-slab-class families); 0 turns them off.
  Duration slab_stats_interval = std::chrono::seconds(15);
  std::optional<NetnsConfig> netns;  // unset: the daemon's own network namespace
  std::string netns_origin;  // where netns or netns_pid is set ("FILE:LINE:COL: targets[N].netns")
  std::optional<TlsClientConfig> tls;  // unset: plain text
  // Not configured: a discovered target's process as this daemon sees it (its pid in the
  // daemon's pid namespace), which memcached_threads reads; 0: the `pid` memcached reports.
  int host_pid = 0;
  // Not configured: a discovered target's network namespace (the inode of /proc/PID/ns/net).
  std::uint64_t netns_inode = 0;
};

// Finding the memcached processes of this host, each watched as a target
// (collectors/discovery.hpp). Off by default.
struct DiscoverConfig {
  bool enabled = false;
  Duration interval = std::chrono::seconds(30);
  // How long a discovered target whose process went away is still watched, so that
  // MemcachedDown pages a crash, before its series leave /metrics.
  Duration grace = std::chrono::minutes(5);
  std::string process_name = "memcached";  // <procfs>/PID/comm, exactly
  // Only processes in these network namespaces (files such as /run/netns/NAME or
  // /proc/PID/ns/net, compared by inode at each scan); empty: every namespace.
  std::vector<std::string> only_netns;
  // Where each of only_netns is named ("FILE:LINE:COL: discover.only_netns[N]"), in its order.
  std::vector<std::string> only_netns_origins;
};

struct NetstatConfig {
  bool enabled = true;
  // How often /proc/net/netstat and snmp are read while the watched listeners are at rest (their
  // own drop counters still, no accept queue sampled closely); every sample while they are not,
  // and always when the sockdiag collector is off. 0: every sample.
  Duration interval = std::chrono::seconds(15);
};

struct SysctlConfig {
  bool enabled = true;
};

// The host's CPU time by mode (/proc/stat): steal and iowait.
struct CpuConfig {
  bool enabled = true;
  // How often /proc/stat is read while every memcached target uses less than a twentieth of a CPU
  // (all its threads together); every sample while one uses more. 0: every sample.
  Duration interval = std::chrono::seconds(15);
};

// The per-CPU receive backlogs' drops and squeezes (/proc/net/softnet_stat).
struct SoftnetConfig {
  bool enabled = true;
};

// The CPU of each memcached worker thread (/proc/<pid>/task), for targets on this host.
struct MemcachedThreadsConfig {
  bool enabled = true;
  // As CpuConfig::interval: while memcached's whole process uses less than a twentieth of a CPU,
  // none of its threads can be near saturation, and the threads are read this often.
  Duration interval = std::chrono::seconds(15);
};

struct SockdiagConfig {
  // The most ports one kernel-side filter holds (collectors/inet_diag.hpp).
  static constexpr std::size_t kMaxPorts = 4096;

  bool enabled = true;
  std::vector<std::uint16_t> ports;  // empty: the ports of the TCP targets
  int top_clients = 10;
  // How often the accept queues are sampled between runs while a queue is non-empty or something
  // connection-related moves (SockdiagCollector::sample_closely); at rest each run's own sample
  // is the only one, unless `sample_at_rest`.
  Duration sample_interval = std::chrono::milliseconds(100);
  bool sample_at_rest = false;
  Duration peak_window = std::chrono::seconds(15);
  // How often the connections are walked (the kernel walks its whole connection table for it)
  // while nothing connection-related is wrong; every sample while something is. 0: every sample.
  Duration connections_interval = std::chrono::seconds(30);
  std::uint64_t send_queue_threshold_bytes = 65536;  // above this a socket counts as blocked
};

struct NetdevConfig {
  bool enabled = true;
  // RE2 regex searched in device names; empty: the devices that carry traffic off the host
  // (collectors/netdev.hpp, default_selection).
  std::string include;
  std::string exclude = "^lo$";  // narrows either
  // Link speeds in bits per second by device name, for NICs whose driver reports none (most
  // cloud NICs) or reports more than the network gives; they override the driver's.
  std::map<std::string, double, std::less<>> speeds;
  // Read the drivers' own counters (cloud allowances, driver drops) with the ethtool ioctl.
  bool driver_stats = true;
};

// One alert's levels. What the value measures (a ratio, seconds, a count) is the alert's own;
// docs/alerts.md lists them. `clear` is the hysteresis level past which a condition that held
// returns to ok, `for_` how long a condition must hold before it fires, `window` the span over
// which counter increases ("rising") are measured.
struct AlertThreshold {
  double warning = 0;
  double critical = 0;
  double clear = 0;
  Duration for_ = std::chrono::seconds(0);
  Duration window = std::chrono::seconds(60);
  // ConnectionSprawl: connections held, as a share of the effective connection limit, while they
  // keep rising.
  double connections_warning = 0;
  double connections_critical = 0;
  // MaxConnectionsNear: seconds left before connections, growing as they are, reach the limit.
  double time_left_warning = 0;
  double time_left_critical = 0;
  // MemcachedCpuSaturated: the share of the host's CPU time the hypervisor steals at which the
  // verdict blames the VM.
  double steal_warning = 0;
  // NetworkSaturated: TCP segments retransmitted over those sent (a ratio), packets the CPUs'
  // receive backlogs dropped (a count over the window), and the TCP handshake of the
  // fresh-connection probe, a round-trip time (seconds).
  double retransmit_warning = 0;
  double retransmit_critical = 0;
  double softnet_drops_warning = 0;
  double softnet_drops_critical = 0;
  double rtt_warning = 0;
  double rtt_critical = 0;
};

// A level an alert takes beside warning, critical, clear, for and window.
struct ThresholdKey {
  std::string_view key;
  double AlertThreshold::*field;
  double max;  // the largest value accepted (the smallest is 0)
};

// What the loader knows of one alert: its name, default levels, which way they run, and the
// alert-specific keys it takes. The alert rule table (daemon/alerts/rules.hpp) makes these, so the
// names and defaults have one source.
struct AlertSchema {
  std::string_view name;
  AlertThreshold defaults;
  bool lower_is_worse = false;  // floors (SomaxconnTooLow): a lower value is worse
  std::span<const ThresholdKey> extra_keys;
  bool ratio = false;  // warning, critical and clear are ratios, 0 to 1 (0.8 for 80 %)
};
using AlertSchemas = std::span<const AlertSchema>;

// Absolute paths (checked at load); each must be a directory (checked by check_named_files,
// daemon/app.hpp, at --check-config, the start and a reload).
struct PathsConfig {
  std::string procfs = "/proc";
  std::string sysfs = "/sys";
  std::string procfs_origin;  // where procfs is set ("FILE:LINE:COL: paths.procfs"); empty: default
  std::string sysfs_origin;
};

struct WebConfig {
  std::string listen_address = std::string(kDefaultListenAddress);
  // The web configuration file (TLS, basic auth; config/web_config_file.hpp); empty: plain HTTP
  // without authentication. Given relative, it is relative to this config file's directory.
  std::string config_file;
  // Where config_file is set ("FILE:LINE:COL: web.config_file"); empty when not from a file.
  std::string config_file_origin;
};

struct LogConfig {
  std::string level = "info";   // debug, info, warn, error
  std::string format = "text";  // text or json
};

struct Config {
  std::string source = "<built-in defaults>";  // the file it came from, escaped for messages
  Duration interval = std::chrono::seconds(1);
  std::vector<TargetConfig> targets;  // default: one target at 127.0.0.1:11211
  NetstatConfig netstat;
  SysctlConfig sysctl;
  SockdiagConfig sockdiag;
  NetdevConfig netdev;
  CpuConfig cpu;
  SoftnetConfig softnet;
  MemcachedThreadsConfig memcached_threads;
  DiscoverConfig discover;
  std::map<std::string, AlertThreshold, std::less<>> thresholds;  // every alert of the schemas
  PathsConfig paths;
  WebConfig web;
  LogConfig log;

  // The built-in defaults (what runs when there is no config file), with every alert of `alerts`
  // at its default levels.
  static Config defaults(AlertSchemas alerts);

  // Ports the sockdiag collector watches in the network namespace `netns` (unset: the daemon's
  // own): its `ports`, or those of the TCP targets in that namespace.
  std::vector<std::uint16_t> watched_ports(
      const std::optional<NetnsConfig>& netns = std::nullopt) const;
  // The other network namespaces targets live in, each once, in order of first mention.
  std::vector<NetnsConfig> namespaces() const;
};

// Parses YAML text; `thresholds` may name the alerts of `alerts` only. `file_name` is used in
// error messages only.
Result<Config> parse_config(std::string_view yaml, std::string_view file_name, AlertSchemas alerts);

// Reads and parses a file. A missing or unreadable file is an error naming it.
Result<Config> load_config(const std::string& path, AlertSchemas alerts);

}  // namespace mcb
