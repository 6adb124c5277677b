#include "collectors/table.hpp"

namespace mcb {

std::vector<std::shared_ptr<Collector>> CollectorSet::all() const {
  std::vector<std::shared_ptr<Collector>> out;
  for (std::shared_ptr<Collector> c :
       {std::shared_ptr<Collector>(memcached), std::shared_ptr<Collector>(netstat),
        std::shared_ptr<Collector>(sysctl), std::shared_ptr<Collector>(sockdiag),
        std::shared_ptr<Collector>(netdev), std::shared_ptr<Collector>(cpu),
        std::shared_ptr<Collector>(softnet), std::shared_ptr<Collector>(memcached_threads)}) {
    if (c) out.push_back(std::move(c));
  }
  return out;
}

CollectorSet make_collectors(const Config& config, boost::asio::io_context& io) {
  CollectorSet set;
  if (config.netstat.enabled) set.netstat = std::make_shared<NetstatCollector>(config.paths.procfs);
  if (config.sysctl.enabled) set.sysctl = std::make_shared<SysctlCollector>(config.paths.procfs);
  if (!config.targets.empty()) {
    set.memcached = std::make_shared<MemcachedCollector>(
        io, config.targets, MemcachedTiming::for_interval(config.interval));
  }
  if (config.sockdiag.enabled) {
    set.sockdiag = std::make_shared<SockdiagCollector>(io, config.sockdiag, config.watched_ports(),
                                                       config.interval);
  }
  if (config.netdev.enabled) {
    set.netdev =
        std::make_shared<NetdevCollector>(config.netdev, config.paths.procfs, config.paths.sysfs);
  }
  if (config.cpu.enabled) set.cpu = std::make_shared<CpuCollector>(config.paths.procfs);
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
  }
  return set;
}

}  // namespace mcb
