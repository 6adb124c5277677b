#pragma once
// The table of collectors: which exist, and how each is built from its `collectors.<name>` config
// section. The app asks for the enabled set once at start and on every reload. Loop thread only.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "collectors/collector.hpp"
#include "collectors/cpu.hpp"
#include "collectors/memcached.hpp"
#include "collectors/memcached_threads.hpp"
#include "collectors/netdev.hpp"
#include "collectors/netstat.hpp"
#include "collectors/sockdiag.hpp"
#include "collectors/softnet.hpp"
#include "collectors/sysctl.hpp"
#include "config/config.hpp"

namespace mcb {

// The `target` label of a target's series: its name, else its address ("127.0.0.1:11211").
inline std::string target_label(const TargetConfig& t) {
  return t.name.empty() ? t.address.to_string() : t.name;
}

// The kernel-side collectors of a network namespace other than the daemon's, where targets live
// (`netns:`/`netns_pid:`). Their series carry netns="<label>"; a disabled one is null.
struct NamespaceCollectors {
  NetnsConfig netns;
  std::string label;
  std::shared_ptr<NetstatCollector> netstat;
  std::shared_ptr<SysctlCollector> sysctl;
  std::shared_ptr<SockdiagCollector> sockdiag;
};

// The enabled collectors, with typed handles for the evaluator; a disabled one is null. Those at
// the top watch the daemon's own network namespace; netdev is always that namespace's.
struct CollectorSet {
  std::shared_ptr<NetstatCollector> netstat;
  std::shared_ptr<SysctlCollector> sysctl;
  std::shared_ptr<MemcachedCollector> memcached;  // null when there are no targets
  std::shared_ptr<SockdiagCollector> sockdiag;
  std::shared_ptr<NetdevCollector> netdev;
  std::shared_ptr<CpuCollector> cpu;
  std::shared_ptr<SoftnetCollector> softnet;
  // Null when there are no targets; reads the memcached collector's samples.
  std::shared_ptr<MemcachedThreadsCollector> memcached_threads;
  // Other namespaces, one per distinct label, in order of first mention by a target.
  std::vector<NamespaceCollectors> namespaces;
  // The targets that live in another namespace: target name -> its namespace's label.
  std::map<std::string, std::string, std::less<>> target_netns;

  // Every enabled collector, in a stable order: memcached first, so that its requests are on the
  // wire while the others read their files.
  std::vector<std::shared_ptr<Collector>> all() const;
};

// Builds the enabled collectors. The label of each other namespace is fixed here (netns_label:
// a pid's cgroup is read once), so label sets do not change until the next reload. Namespaces of
// different targets that get the same label are read as one (two processes of one pod).
CollectorSet make_collectors(const Config& config, boost::asio::io_context& io);

}  // namespace mcb
