#pragma once
// The table of collectors: which exist, and how each is built from its `collectors.<name>` config
// section. The app asks for the enabled set once at start and on every reload. Loop thread only.

#include <memory>
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

// The enabled collectors, with typed handles for the evaluator; a disabled one is null.
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

  // Every enabled collector, in a stable order: memcached first, so that its requests are on the
  // wire while the others read their files.
  std::vector<std::shared_ptr<Collector>> all() const;
};

CollectorSet make_collectors(const Config& config, boost::asio::io_context& io);

}  // namespace mcb
