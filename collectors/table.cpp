#include "collectors/table.hpp"

namespace mcb {

std::vector<std::shared_ptr<Collector>> CollectorSet::all() const {
  std::vector<std::shared_ptr<Collector>> out;
  for (std::shared_ptr<Collector> c :
       {std::shared_ptr<Collector>(netstat), std::shared_ptr<Collector>(sysctl),
        std::shared_ptr<Collector>(memcached)}) {
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
  return set;
}

}  // namespace mcb
