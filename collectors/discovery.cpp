#include "collectors/discovery.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/openat2.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <set>

#include "collectors/netlink.hpp"
#include "collectors/netns.hpp"
#include "collectors/procfs.hpp"
#include "collectors/table.hpp"
#include "common/files.hpp"
#include "common/text.hpp"
#include "config/duration.hpp"

namespace mcb {

namespace {

constexpr std::string_view kPtrace = "ptrace access: the same user, or CAP_SYS_PTRACE";

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

std::optional<int> parse_pid(std::string_view name) {
  int pid = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
  if (ec != std::errc{} || end != name.data() + name.size() || pid <= 0) return std::nullopt;
  return pid;
}

// The inode of the namespace file `path`; nullopt with `error` set to errno when stat fails.
std::optional<std::uint64_t> netns_inode(const std::string& path, int& error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    error = errno;
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(st.st_ino);
}

// The inode of a network namespace file; an error when it cannot be opened or names something
// else (another kind of namespace, any other file, a FIFO: never waited on).
Result<std::uint64_t> network_namespace_inode(const std::string& path) {
  auto fd = open_network_namespace(path, 0);
  if (!fd) return fd.error();
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return fail(std::strerror(errno));
  return static_cast<std::uint64_t>(st.st_ino);
}

// A Kubernetes object name (RFC 1123 subdomain: lower-case letters, digits, '-' and '.').
bool kubernetes_name(std::string_view s) {
  return !s.empty() && s.size() <= 253 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

// The regular file `file` (relative, at most 256 bytes) of a process's root `root_fd`: every link
// resolved inside that root (openat2 RESOLVE_IN_ROOT, no /proc magic links), and only a regular
// file opened (resolved with O_PATH, checked, then read through /proc/self/fd with
// read_regular_file, which checks again what it opened), so no FIFO, device or socket is ever
// opened. nullopt otherwise. The files are the pod's own, and whoever made its image chose them.
std::optional<std::string> read_in_root(int root_fd, const char* file) {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const FileDescriptor path_fd(
      static_cast<int>(::syscall(SYS_openat2, root_fd, file, &how, sizeof how)));
  if (!path_fd.valid()) return std::nullopt;
  struct stat st {};
  if (::fstat(path_fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  auto text =
      read_regular_file("/proc/self/fd/" + std::to_string(path_fd.get()), 256, "a pod's file");
  if (!text || text->empty()) return std::nullopt;
  return std::move(*text);
}

}  // namespace

std::optional<std::string> blocking_filesystem(std::string_view mountinfo) {
  constexpr std::array<std::string_view, 9> kNetwork = {"nfs",  "nfs4",      "cifs",   "smb3", "9p",
                                                        "ceph", "glusterfs", "lustre", "afs"};
  for (std::string_view line; take_line(mountinfo, line);) {
    const auto dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    std::string_view type = line.substr(dash + 3);
    type = type.substr(0, type.find(' '));
    if (type.starts_with("fuse") ||
        std::find(kNetwork.begin(), kNetwork.end(), type) != kNetwork.end()) {
      return std::string(type);
    }
  }
  return std::nullopt;
}

std::optional<std::string> pod_name(const std::string& procfs, int pid) {
  const std::string dir = procfs + "/" + std::to_string(pid);
  // A lookup on FUSE or a network file system waits for its server, whatever the flags: a pod
  // with one mounted is named by its UID.
  auto mounts = read_optional_file(dir + "/mountinfo");
  if (!mounts || !*mounts || blocking_filesystem(**mounts)) return std::nullopt;
  const std::string root = dir + "/root";
  const FileDescriptor root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) return std::nullopt;
  const auto name = read_in_root(root_fd.get(), "etc/hostname");
  const auto ns =
      read_in_root(root_fd.get(), "var/run/secrets/kubernetes.io/serviceaccount/namespace");
  if (!name || !ns) return std::nullopt;
  const std::string_view n = trimmed(*name);
  const std::string_view s = trimmed(*ns);
  if (!kubernetes_name(n) || !kubernetes_name(s)) return std::nullopt;
  return std::string(s) + "/" + std::string(n);
}

namespace {

bool wildcard(const IpAddress& a) {
  return std::all_of(a.bytes.begin(), a.bytes.end(), [](std::uint8_t b) { return b == 0; });
}

// The address to reach a listener on from inside its namespace.
std::string connect_host(const IpAddress& a) {
  if (!wildcard(a)) return to_string(a);
  return a.family == AF_INET6 ? "::1" : "127.0.0.1";
}

bool same_target(const TargetConfig& a, const TargetConfig& b) {
  return a.address.to_string() == b.address.to_string() && a.netns == b.netns &&
         a.host_pid == b.host_pid;
}

// The most descriptors read of one process per look: memcached opens its listeners first, among
// its lowest descriptors, and a process with a million must not hold the loop for seconds.
constexpr std::size_t kMaxDescriptors = 4096;

// The inodes of the open sockets of process `pid` (of its first kMaxDescriptors descriptors), from
// the links of <procfs>/PID/fd. Where that directory is closed to the daemon (it is its owner's
// alone, and root without CAP_DAC_READ_SEARCH, as in the DaemonSet, is not its owner), the "ino:"
// of each <procfs>/PID/fdinfo/N instead, which ptrace access opens: the inodes of every descriptor,
// which the caller matches against its sockets' inodes. nullopt with `error` set when neither
// opens.
std::optional<std::vector<std::uint64_t>> descriptor_inodes(const std::string& procfs, int pid,
                                                            int& error) {
  const std::string dir = procfs + "/" + std::to_string(pid);
  std::vector<std::uint64_t> out;
  std::size_t read = 0;
  if (DIR* fds = ::opendir((dir + "/fd").c_str())) {
    std::array<char, 64> link{};
    while (const dirent* e = ::readdir(fds)) {
      if (++read > kMaxDescriptors) break;
      if (e->d_name[0] == '.') continue;
      const ssize_t n = ::readlinkat(::dirfd(fds), e->d_name, link.data(), link.size());
      if (n <= 0) continue;
      const auto inode = socket_inode(std::string_view(link.data(), static_cast<size_t>(n)));
      if (inode) out.push_back(*inode);
    }
    ::closedir(fds);
    return out;
  }
  DIR* infos = ::opendir((dir + "/fdinfo").c_str());
  if (infos == nullptr) {
    error = errno;
    return std::nullopt;
  }
  while (const dirent* e = ::readdir(infos)) {
    if (++read > kMaxDescriptors) break;
    if (e->d_name[0] == '.') continue;
    auto text = read_optional_file(dir + "/fdinfo/" + e->d_name);
    if (!text || !*text) continue;  // closed meanwhile
    if (const auto inode = fdinfo_inode(**text)) out.push_back(*inode);
  }
  ::closedir(infos);
  return out;
}

}  // namespace

std::optional<std::uint64_t> fdinfo_inode(std::string_view text) {
  for (std::string_view line; take_line(text, line);) {
    if (!line.starts_with("ino:")) continue;
    line.remove_prefix(4);
    while (!line.empty() && (line.front() == '\t' || line.front() == ' ')) line.remove_prefix(1);
    std::uint64_t inode = 0;
    const auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), inode);
    if (ec != std::errc{} || p != line.data() + line.size()) return std::nullopt;
    return inode;
  }
  return std::nullopt;
}

std::optional<std::uint32_t> socket_inode(std::string_view link) {
  constexpr std::string_view kPrefix = "socket:[";
  if (link.size() <= kPrefix.size() + 1 || !link.starts_with(kPrefix) || link.back() != ']') {
    return std::nullopt;
  }
  const std::string_view digits = link.substr(kPrefix.size(), link.size() - kPrefix.size() - 1);
  std::uint32_t inode = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), inode);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return inode;
}

std::vector<TargetConfig> discovered_targets(std::span<const FoundMemcached> found,
                                             const Configured& configured) {
  // How each other namespace is named: as a configured target names it, else by its lowest pid.
  std::map<std::uint64_t, NetnsConfig> namespaces = configured.namespaces;
  for (const FoundMemcached& f : found) {
    if (f.own_netns) continue;
    auto [it, added] = namespaces.emplace(f.netns_inode, NetnsConfig{"", f.pid});
    if (!added && !configured.namespaces.contains(f.netns_inode) && f.pid < it->second.pid) {
      it->second.pid = f.pid;
    }
  }
  const std::vector<TakenAddress>& taken = configured.addresses;
  struct Candidate {
    const FoundMemcached* process;
    std::uint16_t port;
    std::string host;
    std::string base;  // the name before any ":<port>"
  };
  std::vector<Candidate> candidates;
  for (const FoundMemcached& f : found) {
    std::map<std::uint16_t, std::string> hosts;  // by port: IPv4 first
    for (const auto& [address, port] : f.listeners) {
      auto [it, added] = hosts.emplace(port, connect_host(address));
      if (!added && address.family == AF_INET && it->second.find(':') != std::string::npos) {
        it->second = connect_host(address);
      }
    }
    for (const auto& [port, host] : hosts) {
      if (std::find(taken.begin(), taken.end(), TakenAddress{f.netns_inode, port}) != taken.end()) {
        continue;
      }
      std::string base =
          f.pod         ? *f.pod
          : f.container ? *f.container
                        : "memcached@" + std::to_string(f.netns_inode) + ":" + std::to_string(port);
      candidates.push_back({&f, port, host, std::move(base)});
    }
  }
  std::map<std::string, int, std::less<>> uses;
  for (const Candidate& c : candidates) ++uses[c.base];
  std::vector<TargetConfig> out;
  std::set<std::string, std::less<>> names(configured.names.begin(), configured.names.end());
  for (const Candidate& c : candidates) {
    TargetConfig t;
    t.name = c.base;
    if (uses[c.base] > 1 && !c.base.starts_with("memcached@")) {
      t.name += ":" + std::to_string(c.port);
    }
    // A configured target's name, or one process's twice: "#<pid>", then "#<pid>.2", ...
    const std::string base = t.name + "#" + std::to_string(c.process->pid);
    for (int n = 1; !names.insert(t.name).second; ++n) {
      t.name = n == 1 ? base : base + "." + std::to_string(n);
    }
    t.address.kind = Endpoint::Kind::kTcp;
    t.address.host = c.host;
    t.address.port = c.port;
    if (!c.process->own_netns) t.netns = namespaces.at(c.process->netns_inode);
    t.host_pid = c.process->pid;
    t.netns_inode = c.process->netns_inode;
    out.push_back(std::move(t));
  }
  std::sort(out.begin(), out.end(),
            [](const TargetConfig& a, const TargetConfig& b) { return a.name < b.name; });
  return out;
}

std::vector<std::string> DiscoveredTargets::update(std::vector<TargetConfig> scanned,
                                                   Clock::time_point now,
                                                   std::span<const TakenAddress> taken) {
  std::vector<std::string> changes;
  std::set<std::string, std::less<>> present;
  for (TargetConfig& t : scanned) {
    present.insert(t.name);
    const std::string what = t.name + " (pid " + std::to_string(t.host_pid) + ", " +
                             t.address.to_string() +
                             (t.netns ? ", netns " + t.netns->describe() : std::string()) + ")";
    auto it = entries_.find(t.name);
    if (it == entries_.end()) {
      changes.push_back("added " + what);
      std::string name = t.name;
      entries_.emplace(std::move(name), Entry{std::move(t), now});
      continue;
    }
    if (!same_target(it->second.target, t)) {
      changes.push_back("replaced " + what);
      it->second.target = std::move(t);
    }
    it->second.seen = now;
  }
  for (auto it = entries_.begin(); it != entries_.end();) {
    const TargetConfig& target = it->second.target;
    std::string dropped;  // why it goes, if it does
    const bool configured =
        std::find(taken.begin(), taken.end(),
                  TakenAddress{target.netns_inode, target.address.port}) != taken.end();
    if (present.contains(it->first)) {
      // seen in this scan
    } else if (configured) {
      dropped =
          "a configured target now watches " + target.address.to_string() + " in its namespace";
    } else if (now - it->second.seen >= grace_) {
      dropped = "not found for " +
                format_duration(std::chrono::duration_cast<Duration>(now - it->second.seen)) +
                " (its process ended, or no longer listens there)";
    }
    if (dropped.empty()) {
      ++it;
    } else {
      changes.push_back("dropped " + it->first + ": " + dropped);
      it = entries_.erase(it);
    }
  }
  return changes;
}

std::vector<TargetConfig> DiscoveredTargets::targets() const {
  std::vector<TargetConfig> out;
  out.reserve(entries_.size());
  for (const auto& [name, e] : entries_) out.push_back(e.target);
  return out;
}

void Discoverer::report(Scan& scan, std::string problem) {
  if (problems_.insert(problem).second && !last_problems_.contains(problem)) {
    scan.problems.push_back(std::move(problem));
  }
}

Discoverer::Scan Discoverer::scan() {
  Scan scan;
  std::swap(last_problems_, problems_);
  problems_.clear();
  int error = 0;
  const auto own = netns_inode(procfs_ + "/self/ns/net", error);
  if (!own) {
    report(scan, procfs_ + "/self/ns/net: " + std::strerror(error));
    return scan;
  }
  std::set<std::uint64_t> only;
  for (std::size_t i = 0; i < config_.only_netns.size(); ++i) {
    const std::string& path = config_.only_netns[i];
    if (auto inode = network_namespace_inode(path)) {
      only.insert(*inode);
    } else {
      const std::string where = i < config_.only_netns_origins.size()
                                    ? config_.only_netns_origins[i]
                                    : std::string("discover.only_netns");
      report(scan, where + ": " + escape_untrusted(path) + ": " + inode.error().message);
    }
  }
  if (!config_.only_netns.empty() && only.empty()) return scan;

  // The processes by name.
  DIR* dir = ::opendir(procfs_.c_str());
  if (dir == nullptr) {
    report(scan, procfs_ + ": " + std::strerror(errno));
    return scan;
  }
  std::vector<int> pids;
  while (const dirent* e = ::readdir(dir)) {
    const auto pid = parse_pid(e->d_name);
    if (!pid) continue;
    auto comm = read_optional_file(procfs_ + "/" + e->d_name + "/comm");
    if (comm && *comm && trimmed(**comm) == config_.process_name) pids.push_back(*pid);
  }
  ::closedir(dir);
  std::sort(pids.begin(), pids.end());

  // Their namespaces.
  for (int pid : pids) {
    const std::string file = procfs_ + "/" + std::to_string(pid) + "/ns/net";
    const auto inode = netns_inode(file, error);
    if (!inode) {
      if (error == ENOENT || error == ESRCH) continue;  // it ended
      report(scan, "process " + std::to_string(pid) + " (" + config_.process_name + "): " + file +
                       ": " + std::strerror(error) +
                       (error == EACCES || error == EPERM ? " (needs " + std::string(kPtrace) + ")"
                                                          : std::string()));
      continue;
    }
    if (!only.empty() && !only.contains(*inode)) continue;
    FoundMemcached f;
    f.pid = pid;
    f.netns_inode = *inode;
    f.own_netns = *inode == *own;
    scan.found.push_back(std::move(f));
  }

  // The listeners of each namespace, once.
  std::map<std::uint64_t, std::vector<DiagSocket>> listeners;
  for (const FoundMemcached& f : scan.found) {
    if (listeners.contains(f.netns_inode)) continue;
    const NetnsConfig netns{"", f.pid};
    SockDiagSocket socket(f.own_netns ? SockDiagSocket::Opener() : [&] {
      return netns_socket(netns, procfs_, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
                          NETLINK_SOCK_DIAG);
    });
    std::vector<DiagSocket> found;
    const Status dumped =
        socket.dump_tcp(tcp_state_bit(TCP_LISTEN), {}, /*memory_info=*/false,
                        std::chrono::steady_clock::now() + std::chrono::seconds(1), found);
    if (!dumped) {
      report(scan, "the listeners of process " + std::to_string(f.pid) +
                       "'s network namespace: " + dumped.error().message);
      found.clear();
    }
    listeners.emplace(f.netns_inode, std::move(found));
  }

  // Each process's own listeners, and its container.
  std::map<int, Known> known;
  for (FoundMemcached& f : scan.found) {
    const std::vector<DiagSocket>& all = listeners.at(f.netns_inode);
    auto listening = [&all](std::uint32_t inode) {
      return std::find_if(all.begin(), all.end(),
                          [inode](const DiagSocket& s) { return s.inode == inode; });
    };
    std::vector<std::uint32_t> here;
    here.reserve(all.size());
    for (const DiagSocket& s : all) here.push_back(s.inode);
    std::sort(here.begin(), here.end());
    const auto before = known_.find(f.pid);
    const bool same = before != known_.end() && before->second.netns_inode == f.netns_inode;
    Known k;
    // Reused while no listener appeared there that could be its own (those that went away could
    // not), or its own still listen.
    if (same &&
        (std::includes(before->second.namespace_listeners.begin(),
                       before->second.namespace_listeners.end(), here.begin(), here.end()) ||
         (!before->second.inodes.empty() &&
          std::all_of(before->second.inodes.begin(), before->second.inodes.end(),
                      [&](std::uint32_t i) { return listening(i) != all.end(); })))) {
      k = before->second;  // nothing that could be its own appeared, or its own still listen
    } else {
      k.netns_inode = f.netns_inode;
      if (!all.empty()) {
        const auto inodes = descriptor_inodes(procfs_, f.pid, error);
        if (!inodes) {
          if (error != ENOENT) {
            report(scan, "process " + std::to_string(f.pid) + ": " + procfs_ + "/" +
                             std::to_string(f.pid) + "/fdinfo: " + std::strerror(error) +
                             (error == EACCES ? " (needs " + std::string(kPtrace) + ")" : ""));
          }
          continue;
        }
        for (std::uint64_t inode : *inodes) {
          if (inode <= UINT32_MAX && listening(static_cast<std::uint32_t>(inode)) != all.end()) {
            k.inodes.push_back(static_cast<std::uint32_t>(inode));
          }
        }
      }
      if (auto cgroup = read_optional_file(procfs_ + "/" + std::to_string(f.pid) + "/cgroup");
          cgroup && *cgroup) {
        k.container = container_of_cgroup(**cgroup);
        if (k.container && k.container->starts_with("pod:")) k.pod = pod_name(procfs_, f.pid);
      }
    }
    k.namespace_listeners = std::move(here);
    for (std::uint32_t inode : k.inodes) {
      const DiagSocket& s = *listening(inode);
      f.listeners.emplace_back(s.local, s.local_port);
    }
    f.container = k.container;
    f.pod = k.pod;
    known.emplace(f.pid, std::move(k));
  }
  known_ = std::move(known);
  return scan;
}

namespace {

// The addresses of the daemon's own network namespace (getifaddrs), loopback included; nullopt
// when they cannot be read.
std::optional<std::set<IpAddress>> own_addresses() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return std::nullopt;
  std::set<IpAddress> out;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    IpAddress a;
    a.family = i->ifa_addr->sa_family;
    if (a.family == AF_INET) {
      std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
    } else if (a.family == AF_INET6) {
      std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr,
                  16);
    } else {
      continue;
    }
    out.insert(canonical(a));
  }
  ::freeifaddrs(list);
  return out;
}

// Whether a target at IP literal `ip` in the daemon's namespace is a memcached of this host: a
// loopback or wildcard address, or one of `own`'s (unknown: yes).
bool of_this_host(const IpAddress& ip, const std::optional<std::set<IpAddress>>& own) {
  const bool loopback = ip.family == AF_INET ? ip.bytes[0] == 127 : ip == *parse_ip("::1");
  const bool wildcard = ip == IpAddress{ip.family, {}};
  return loopback || wildcard || !own || own->contains(ip);
}

}  // namespace

Configured Discoverer::configured(std::span<const TargetConfig> targets) const {
  Configured out;
  int error = 0;
  const auto own = netns_inode(procfs_ + "/self/ns/net", error);
  const auto addresses = own_addresses();
  for (const TargetConfig& t : targets) {
    out.names.push_back(target_label(t));
    const auto inode = t.netns ? netns_inode(netns_file(*t.netns, procfs_), error) : own;
    if (!inode) continue;
    if (t.netns) out.namespaces.emplace(*inode, *t.netns);
    if (t.address.is_unix()) continue;
    // A memcached of another host on the same port is not the one found here. (A host name, or
    // a target in another namespace, is taken as this host's.)
    if (const auto ip = parse_ip(t.address.host); ip && !t.netns && !of_this_host(*ip, addresses)) {
      continue;
    }
    out.addresses.emplace_back(*inode, t.address.port);
  }
  return out;
}

std::vector<TargetConfig> Discoverer::targets(const Configured& configured,
                                              std::vector<std::string>& problems) {
  Scan found = scan();
  for (std::string& p : found.problems) problems.push_back(std::move(p));
  return discovered_targets(found.found, configured);
}

}  // namespace mcb
