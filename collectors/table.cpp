#include "collectors/table.hpp"

#include <algorithm>

#include "collectors/netns.hpp"
#include "collectors/procfs.hpp"

namespace mcb {

std::vector<std::shared_ptr<Collector>> CollectorSet::all() const {
  std::vector<std::shared_ptr<Collector>> out;
  auto put = [&out](std::shared_ptr<Collector> c) {
    if (c) out.push_back(std::move(c));
  };
  put(memcached);
  put(sysctl);
  put(sockdiag);
  put(netstat);  // after sockdiag: its pace asks whether this cycle's listeners are at rest
  put(netdev);
  put(cpu);
  put(softnet);
  put(memcached_threads);
  for (const NamespaceCollectors& n : namespaces) {
    put(n.sysctl);
    put(n.sockdiag);
    put(n.netstat);
  }
  return out;
}

namespace {

// The unix socket paths of the targets in `netns` (unset: the daemon's own namespace).
std::vector<std::string> unix_paths(const Config& config, const std::optional<NetnsConfig>& netns,
                                    const std::map<NetnsConfig, std::string>& labels) {
  std::vector<std::string> out;
  for (const TargetConfig& t : config.targets) {
    if (!t.address.is_unix()) continue;
    const bool here = !netns ? !t.netns : t.netns && labels.at(*t.netns) == labels.at(*netns);
    if (here) out.push_back(t.address.path);
  }
  return out;
}

// The watched ports of the targets whose namespace has the label of `netns`.
std::vector<std::uint16_t> ports_of(const Config& config, const NetnsConfig& netns,
                                    const std::map<NetnsConfig, std::string>& labels) {
  std::vector<std::uint16_t> out;
  for (const NetnsConfig& other : config.namespaces()) {
    if (labels.at(other) != labels.at(netns)) continue;
    for (std::uint16_t p : config.watched_ports(other)) out.push_back(p);
  }
  return out;
}

// The targets whose process has a pid here other than the one memcached reports: discovered
// ones, and a `netns_pid` that names memcached itself (its comm is discover.process_name).
std::map<std::string, std::int64_t, std::less<>> host_pids(const Config& config) {
  std::map<std::string, std::int64_t, std::less<>> out;
  for (const TargetConfig& t : config.targets) {
    const std::string name = target_label(t);
    if (t.host_pid != 0) {
      out.emplace(name, t.host_pid);
    } else if (t.netns && t.netns->pid != 0) {
      auto comm =
          read_optional_file(config.paths.procfs + "/" + std::to_string(t.netns->pid) + "/comm");
      if (comm && *comm && **comm == config.discover.process_name + "\n") {
        out.emplace(name, t.netns->pid);
      }
    }
  }
  return out;
}

// The host's listen counters wait for `interval` while the same namespace's listeners are at
// rest; both collectors belong to one set, which the scheduler runs sockdiag first in.
void pace_netstat(const std::shared_ptr<NetstatCollector>& netstat,
                  const std::shared_ptr<SockdiagCollector>& sockdiag, Duration interval) {
  if (!netstat || !sockdiag) return;
  netstat->pace(interval, [weak = std::weak_ptr<const SockdiagCollector>(sockdiag)] {
    const auto s = weak.lock();
    return s && s->listeners_at_rest();
  });
}

// memcached using less than this many CPU seconds per second, all its threads together, has no
// thread anywhere near saturation (MemcachedCpuSaturated's default levels start at 0.8 of one).
constexpr double kQuietMemcachedCpu = 0.05;

// The CPU seconds per second below which memcached is quiet: kQuietMemcachedCpu, or less under
// MemcachedCpuSaturated's configured warning or clear level.
double quiet_level(const Config& config) {
  double level = kQuietMemcachedCpu;
  if (const auto t = config.thresholds.find("MemcachedCpuSaturated");
      t != config.thresholds.end()) {
    level = std::min({level, t->second.warning, t->second.clear});
  }
  return level;
}

// Whether every target that answers used less than `level` at its last sample (one whose CPU is
// not known yet is not quiet).
bool memcached_quiet(const std::weak_ptr<const MemcachedCollector>& memcached, double level) {
  const auto m = memcached.lock();
  if (!m) return false;
  for (const MemcachedSample& s : m->samples()) {
    if (!s.up) continue;
    const auto threads = worker_threads(s);
    if (!s.cpu_utilization_ratio || !threads) return false;
    if (*s.cpu_utilization_ratio * *threads >= level) return false;
  }
  return true;
}

}  // namespace

CollectorSet make_collectors(const Config& config, boost::asio::io_context& io) {
  CollectorSet set;
  const std::string& procfs = config.paths.procfs;
  if (config.netstat.enabled) set.netstat = std::make_shared<NetstatCollector>(procfs);
  if (config.sysctl.enabled) set.sysctl = std::make_shared<SysctlCollector>(procfs);
  std::map<NetnsConfig, std::string> labels;
  for (const NetnsConfig& n : config.namespaces()) labels.emplace(n, netns_label(n, procfs));
  for (const TargetConfig& t : config.targets) {
    if (!t.netns) continue;
    set.target_netns.emplace(target_label(t), labels.at(*t.netns));
  }
  if (!config.targets.empty()) {
    set.memcached = std::make_shared<MemcachedCollector>(
        io, config.targets, MemcachedTiming::for_interval(config.interval));
    set.memcached->set_target_netns(set.target_netns);
  }
  if (config.sockdiag.enabled) {
    set.sockdiag = std::make_shared<SockdiagCollector>(
        io, config.sockdiag, config.watched_ports(), config.interval,
        SockdiagScope{std::nullopt, procfs, unix_paths(config, std::nullopt, labels)});
  }
  if (config.netdev.enabled) {
    set.netdev =
        std::make_shared<NetdevCollector>(config.netdev, config.paths.procfs, config.paths.sysfs);
  }
  const double quiet_cpu = quiet_level(config);
  const auto quiet = [memcached = std::weak_ptr<const MemcachedCollector>(set.memcached),
                      quiet_cpu] { return memcached_quiet(memcached, quiet_cpu); };
  if (config.cpu.enabled) {
    set.cpu = std::make_shared<CpuCollector>(config.paths.procfs);
    // Its steal and iowait are MemcachedCpuSaturated's evidence: needed once memcached works.
    if (set.memcached) set.cpu->pace(config.cpu.interval, quiet);
  }
  if (config.softnet.enabled) {
    set.softnet = std::make_shared<SoftnetCollector>(config.paths.procfs);
  }
  if (config.memcached_threads.enabled && set.memcached) {
    // The memcached collector outlives no run of this one: both belong to the same set.
    set.memcached_threads = std::make_shared<MemcachedThreadsCollector>(
        [memcached = std::weak_ptr<const MemcachedCollector>(set.memcached)] {
          const auto m = memcached.lock();
          return m ? std::span<const MemcachedSample>(m->samples())
                   : std::span<const MemcachedSample>();
        },
        config.paths.procfs);
    set.memcached_threads->set_target_netns(set.target_netns);
    set.memcached_threads->set_host_pids(host_pids(config));
    // Quiet, and its own last figures too: a thread read once has no rate yet, and a busy figure
    // does not stand after the work.
    set.memcached_threads->pace(config.memcached_threads.interval,
                                [quiet, threads = set.memcached_threads.get(), quiet_cpu] {
                                  if (!quiet() || !threads->last()) return false;
                                  return std::all_of(threads->last()->targets.begin(),
                                                     threads->last()->targets.end(),
                                                     [quiet_cpu](const MemcachedThreads& t) {
                                                       return t.view != ThreadView::kPerThread ||
                                                              (t.busiest && *t.busiest < quiet_cpu);
                                                     });
                                });
  }
  pace_netstat(set.netstat, set.sockdiag, config.netstat.interval);
  for (const NetnsConfig& n : config.namespaces()) {
    const std::string& label = labels.at(n);
    if (std::any_of(set.namespaces.begin(), set.namespaces.end(),
                    [&](const NamespaceCollectors& c) { return c.label == label; })) {
      continue;  // read through the first namespace of that name
    }
    NamespaceCollectors c;
    c.netns = n;
    c.label = label;
    if (config.netstat.enabled) c.netstat = std::make_shared<NetstatCollector>(procfs, n);
    if (config.sysctl.enabled)
      c.sysctl = std::make_shared<SysctlCollector>(procfs, SysctlCollector::kRefresh, n);
    if (config.sockdiag.enabled) {
      c.sockdiag = std::make_shared<SockdiagCollector>(
          io, config.sockdiag, ports_of(config, n, labels), config.interval,
          SockdiagScope{n, procfs, unix_paths(config, n, labels)});
    }
    pace_netstat(c.netstat, c.sockdiag, config.netstat.interval);
    for (const std::shared_ptr<Collector>& each :
         {std::shared_ptr<Collector>(c.netstat), std::shared_ptr<Collector>(c.sysctl),
          std::shared_ptr<Collector>(c.sockdiag)}) {
      if (each) each->set_netns_label(label);
    }
    set.namespaces.push_back(std::move(c));
  }
  return set;
}

}  // namespace mcb
