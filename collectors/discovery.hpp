#pragma once
// Discovery (`discover:`): the memcached processes of this host, each watched as a target.
//
// A scan lists the processes whose <procfs>/PID/comm is `process_name`, and for each reads its
// network namespace (the inode <procfs>/PID/ns/net names) and its sockets (the inodes of the
// <procfs>/PID/fd links, or of its <procfs>/PID/fdinfo files where the fd directory is closed to
// the daemon); it dumps the TCP listeners of each such namespace once (inet_diag,
// LISTEN only, from a netlink socket made inside the namespace). A process's listeners are those
// among its own sockets; each port it listens on is one target, reached from inside its
// namespace at the address it listens on (127.0.0.1 or ::1 for a wildcard).
//
// Names: a Kubernetes pod's "namespace/name" when the kubelet's cgroup path names a pod and the
// pod's files say which (/etc/hostname and the service account's namespace, read through
// <procfs>/PID/root with every link resolved inside that root, regular files only, at most 256
// bytes, never waiting on a FIFO); else the pod or container its cgroup names ("pod:<uid>",
// "container:<id>"); else "memcached@<netns inode>:<port>". Several ports of one name get
// ":<port>" each. A process in the daemon's own namespace is a target of that namespace (no
// `netns` label); in another, its namespace is `netns_pid: PID` and `host_pid` is PID.
//
// A configured target wins over a discovered one in the same namespace on the same port (it is
// not added twice; one at an IP address of another host does not count, and its settings such as
// `tls:` stay; a discovered target whose address a reload configures goes at once). A discovered
// target whose process went away stays for `grace`, so that MemcachedDown pages a crash, and a
// process of the same name that comes back replaces it at once.
//
// Privileges: ptrace access to each process (the same user, or CAP_SYS_PTRACE) for its ns/net,
// fdinfo and root; CAP_SYS_ADMIN (setns) to dump the listeners of another namespace. A process or
// namespace that cannot be read is skipped and the scan says why, naming the privilege.
//
// Cost per scan: a read of comm per process of the host; per memcached, a stat and one readlink
// (or one read of fdinfo) per descriptor, skipped while the listeners found last time are still
// listening or its namespace has the same listeners as then; one LISTEN dump per namespace (the
// kernel walks its connection table for it). Loop thread only.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "collectors/inet_diag.hpp"
#include "config/config.hpp"

namespace mcb {

// Pure. The inode of a descriptor link's target "socket:[12345]"; nullopt for anything else.
std::optional<std::uint32_t> socket_inode(std::string_view link);

// "namespace/name" of the Kubernetes pod of process `pid`, from its own files: the kubelet writes
// the pod's name to /etc/hostname and mounts the service account's `namespace`. Read through
// <procfs>/PID/root with every link resolved inside that root, regular files only, at most 256
// bytes each, never opening a FIFO or device, nothing read where FUSE or a network file system is
// mounted. nullopt when either is missing, refused or not a Kubernetes name (lower-case letters,
// digits, '-' and '.').
std::optional<std::string> pod_name(const std::string& procfs, int pid);

// Pure. The type of the first file system of a /proc/PID/mountinfo text whose reads may wait for
// a server (FUSE, NFS, CIFS, 9p, Ceph and the like); nullopt when there is none. pod_name() reads
// nothing from a process that has one mounted.
std::optional<std::string> blocking_filesystem(std::string_view mountinfo);

// Pure. The inode of a <procfs>/PID/fdinfo/N text (its "ino:" line); nullopt when
// it has none or it is malformed.
std::optional<std::uint64_t> fdinfo_inode(std::string_view text);

// One memcached process a scan found.
struct FoundMemcached {
  int pid = 0;
  std::uint64_t netns_inode = 0;
  bool own_netns = false;                // the daemon's own network namespace
  std::optional<std::string> container;  // container_of_cgroup(): "pod:<uid>", "container:<id>"
  std::optional<std::string> pod;        // "namespace/name", when the pod's files say
  std::vector<std::pair<IpAddress, std::uint16_t>> listeners;  // its TCP listening sockets
};

// A listener taken by a configured target: (namespace inode, port).
using TakenAddress = std::pair<std::uint64_t, std::uint16_t>;

// What the configured targets hold, which discovery leaves to them or shares with them.
struct Configured {
  std::vector<TakenAddress> addresses;              // of each TCP target whose namespace is there
  std::map<std::uint64_t, NetnsConfig> namespaces;  // namespace inode -> how a target names it
  std::vector<std::string> names;                   // their `target` labels
};

// Pure. The targets of `found`, named as above, without those on an address `configured` takes;
// a configured target's name gets "#<pid>" after it. Every target of one namespace names it the
// same way, so that it is read once: as a configured target names it, else by the lowest pid
// found there. Sorted by name.
std::vector<TargetConfig> discovered_targets(std::span<const FoundMemcached> found,
                                             const Configured& configured = {});

// The discovered targets over time: each scan's targets, and those of earlier scans whose
// process went away less than `grace` ago.
class DiscoveredTargets {
 public:
  using Clock = std::chrono::steady_clock;
  explicit DiscoveredTargets(Duration grace) : grace_(grace) {}

  // Takes effect at the next update (a reload keeps the targets and their time).
  void set_grace(Duration grace) { grace_ = grace; }

  // Merges the targets of a scan at `now`. Returns what changed in words ("added X (pid 12, ...)",
  // "dropped X: not found for 5m (...)"); empty when nothing did. A target in its grace period
  // keeps its labels, `netns` included, so that its MemcachedDown stays one alert; it is dropped
  // at once when a configured target now takes its address (`taken`).
  std::vector<std::string> update(std::vector<TargetConfig> scanned, Clock::time_point now,
                                  std::span<const TakenAddress> taken = {});
  // The targets being watched, by name.
  std::vector<TargetConfig> targets() const;
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    TargetConfig target;
    Clock::time_point seen;
  };
  Duration grace_;
  std::map<std::string, Entry, std::less<>> entries_;
};

// The scans themselves. Loop thread only.
class Discoverer {
 public:
  explicit Discoverer(DiscoverConfig config, std::string procfs)
      : config_(std::move(config)), procfs_(std::move(procfs)) {}

  struct Scan {
    std::vector<FoundMemcached> found;
    // Why a process or namespace was skipped, naming the privilege, in words, for the log: each
    // at the first scan that meets it, and again only after a scan without it.
    std::vector<std::string> problems;
  };
  Scan scan();

  // What `targets` hold (for discovered_targets); a target whose namespace cannot be read now
  // holds only its name.
  Configured configured(std::span<const TargetConfig> targets) const;

  // Processes or namespaces the last scan skipped (problems, new or not).
  std::size_t problem_count() const { return problems_.size(); }

  // A scan's targets beside `configured` (discovered_targets); its problems are appended to
  // `problems`.
  std::vector<TargetConfig> targets(const Configured& configured,
                                    std::vector<std::string>& problems);

 private:
  // The sockets a process listened on at the last scan: reused while they still listen.
  struct Known {
    std::uint64_t netns_inode = 0;
    std::vector<std::uint32_t> inodes;
    std::vector<std::uint32_t> namespace_listeners;  // every listener there then, sorted
    std::optional<std::string> container;            // FoundMemcached's, read once
    std::optional<std::string> pod;
  };
  void report(Scan& scan, std::string problem);

  DiscoverConfig config_;
  std::string procfs_;
  std::map<int, Known> known_;  // by pid
  // The problems of this scan and of the one before (each is logged when it starts).
  std::set<std::string, std::less<>> problems_;
  std::set<std::string, std::less<>> last_problems_;
};

}  // namespace mcb
