// Micro-benchmarks (Google Benchmark) of what one sampling cycle and one scrape cost in user space:
// the parsers of memcached's replies (`stats`, `stats settings`, and `stats items` with
// `stats slabs` at 63 slab classes) and the families of one memcached with and without those,
// /proc/net/netstat + snmp, /proc/net/dev, /proc/stat, softnet_stat, a thread's schedstat and the
// ethtool replies over the real captures in tests/fixtures; the sock_diag reply parser and the
// aggregation of a dump into the per-client sample at 1k to 18k connections; and the rendering of
// a whole /metrics body, with and without the slab classes. Two measure the system calls too, as a
// run makes them: the worker threads' CPU (one schedstat read per thread, on this process's own
// threads named mc-worker) and a NIC's driver counters (two ioctls).
//
// Run: build/bench/micro_bench (add --benchmark_min_time=0.01 for a quick pass).

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "collectors/cpu.hpp"
#include "collectors/discovery.hpp"
#include "collectors/ethtool.hpp"
#include "collectors/inet_diag.hpp"
#include "collectors/memcached.hpp"
#include "collectors/memcached_protocol.hpp"
#include "collectors/memcached_threads.hpp"
#include "collectors/netdev.hpp"
#include "collectors/netstat.hpp"
#include "collectors/proc_stat.hpp"
#include "collectors/procfs.hpp"
#include "collectors/sockdiag.hpp"
#include "collectors/softnet.hpp"
#include "common/families.hpp"
#include "daemon/http/gzip.hpp"

namespace {

using namespace std::chrono_literals;

std::string fixture(const std::string& relative) {
  std::ifstream in(std::string(MCBACKLOGD_SOURCE_DIR) + "/tests/fixtures/" + relative,
                   std::ios::binary);
  if (!in) throw std::runtime_error("cannot read fixture " + relative);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A parse that fails on its own fixture is a broken benchmark: it ends the run with the reason.
void must(const mcb::Status& status) {
  if (!status) throw std::runtime_error(status.error().message);
}

template <class T>
T must(mcb::Result<T> result) {
  if (!result) throw std::runtime_error(result.error().message);
  return std::move(result).value();
}

void BM_MemcachedStats(benchmark::State& state) {
  const std::string reply = fixture("memcached/stats.txt");
  for (auto _ : state) {
    std::vector<mcb::UnreadableStat> unreadable;
    auto stats = mcb::memcached_stats(must(mcb::parse_stats(reply)), unreadable);
    benchmark::DoNotOptimize(stats);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * reply.size()));
}
BENCHMARK(BM_MemcachedStats);

void BM_MemcachedSettings(benchmark::State& state) {
  const std::string reply = fixture("memcached/settings.txt");
  for (auto _ : state) {
    std::vector<mcb::UnreadableStat> unreadable;
    auto settings = mcb::memcached_settings(must(mcb::parse_stats(reply)), unreadable);
    benchmark::DoNotOptimize(settings);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * reply.size()));
}
BENCHMARK(BM_MemcachedSettings);

// `stats items` and `stats slabs` of a memcached with items in all 63 slab classes.
void BM_MemcachedSlabs(benchmark::State& state) {
  const std::string items = fixture("memcached/items-slabs.txt");
  const std::string slabs = fixture("memcached/slabs-slabs.txt");
  for (auto _ : state) {
    std::vector<mcb::UnreadableStat> unreadable;
    mcb::SlabStats typed;
    must(mcb::parse_stats_items(items, typed, unreadable));
    must(mcb::parse_stats_slabs(slabs, typed, unreadable));
    benchmark::DoNotOptimize(typed);
  }
  state.SetBytesProcessed(
      static_cast<std::int64_t>(state.iterations() * (items.size() + slabs.size())));
}
BENCHMARK(BM_MemcachedSlabs)->Unit(benchmark::kMicrosecond);

// One target's sample as the collector makes it from the replies of the 63-class capture, with or
// without the slab stats.
mcb::MemcachedSample memcached_sample(bool with_slabs) {
  mcb::MemcachedSample s;
  s.target = s.address = "127.0.0.1:11211";
  s.up = true;
  s.stats = mcb::memcached_stats(must(mcb::parse_stats(fixture("memcached/stats-slabs.txt"))),
                                 s.unreadable);
  s.settings = mcb::memcached_settings(
      must(mcb::parse_stats(fixture("memcached/settings-slabs.txt"))), s.unreadable);
  if (with_slabs) {
    auto slabs = std::make_shared<mcb::SlabStats>();
    must(mcb::parse_stats_items(fixture("memcached/items-slabs.txt"), *slabs, s.unreadable));
    must(mcb::parse_stats_slabs(fixture("memcached/slabs-slabs.txt"), *slabs, s.unreadable));
    s.slabs = std::move(slabs);
  }
  return s;
}

// The families of one target, with all 63 slab classes (1) or without slab stats (0); the
// collector builds the slab families again only when the slab stats were asked.
void BM_MemcachedFamilies(benchmark::State& state) {
  const std::vector<mcb::MemcachedSample> samples{memcached_sample(state.range(0) != 0)};
  std::size_t series = 0;
  for (auto _ : state) {
    auto families = mcb::memcached_families(samples);
    series = 0;
    for (const auto& f : families) series += f.metric.size();
    benchmark::DoNotOptimize(families);
  }
  state.counters["series"] = static_cast<double>(series);
}
BENCHMARK(BM_MemcachedFamilies)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

void BM_Netstat(benchmark::State& state) {
  const std::string netstat = fixture("proc/net/netstat");
  const std::string snmp = fixture("proc/net/snmp");
  for (auto _ : state) {
    mcb::NetstatSample sample;
    must(mcb::parse_netstat(netstat, sample));
    must(mcb::parse_netstat(snmp, sample));
    benchmark::DoNotOptimize(sample);
  }
}
BENCHMARK(BM_Netstat);

void BM_NetstatFamilies(benchmark::State& state) {
  mcb::NetstatSample sample;
  must(mcb::parse_netstat(fixture("proc/net/netstat"), sample));
  must(mcb::parse_netstat(fixture("proc/net/snmp"), sample));
  for (auto _ : state) {
    auto families = mcb::netstat_families(sample);
    benchmark::DoNotOptimize(families);
  }
}
BENCHMARK(BM_NetstatFamilies);

// One run of the netstat collector on this machine's kernel: both files read through the
// descriptors it keeps open, parsed, and the families published.
void BM_NetstatCollector(benchmark::State& state) {
  mcb::NetstatCollector collector("/proc");
  for (auto _ : state) {
    mcb::Status result = mcb::fail("not called");
    collector.collect([&](mcb::Status s) { result = std::move(s); });
    if (!result) throw std::runtime_error(result.error().message);
  }
}
BENCHMARK(BM_NetstatCollector)->Unit(benchmark::kMicrosecond);

void BM_NetDev(benchmark::State& state) {
  const std::string dev = fixture("proc/net/dev");
  for (auto _ : state) {
    auto devices = must(mcb::parse_net_dev(dev));
    benchmark::DoNotOptimize(devices);
  }
}
BENCHMARK(BM_NetDev);

void BM_CpuStat(benchmark::State& state) {
  const std::string stat = fixture("proc/stat");
  for (auto _ : state) {
    auto cpu = must(mcb::parse_cpu_stat(stat));
    benchmark::DoNotOptimize(cpu);
  }
}
BENCHMARK(BM_CpuStat);

void BM_SoftnetStat(benchmark::State& state) {
  const std::string text = fixture("proc/net/softnet_stat");
  for (auto _ : state) {
    auto cpus = must(mcb::parse_softnet_stat(text));
    benchmark::DoNotOptimize(cpus);
  }
}
BENCHMARK(BM_SoftnetStat);

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// The steady reading of a driver's counters in user space: its values, mapped to the kept set.
void BM_EthtoolStats(benchmark::State& state) {
  const auto names =
      must(mcb::parse_gstrings(bytes_of(fixture("ethtool/virtio_net-eth0.strings"))));
  const auto stats = bytes_of(fixture("ethtool/virtio_net-eth0.stats"));
  const mcb::DriverCounterMap map(names);
  for (auto _ : state) {
    auto counters = map.apply(must(mcb::parse_gstats(stats)));
    benchmark::DoNotOptimize(counters);
  }
}
BENCHMARK(BM_EthtoolStats);

// A steady read of one NIC's driver counters, system calls included: the first device of this
// network namespace whose driver has statistics.
void BM_EthtoolRead(benchmark::State& state) {
  mcb::EthtoolReader reader;
  std::string device;
  for (const auto& entry : std::filesystem::directory_iterator("/sys/class/net")) {
    const std::string name = entry.path().filename();
    auto read = reader.read(name);
    if (read && read->has_value()) {
      device = name;
      break;
    }
  }
  if (device.empty()) throw std::runtime_error("no device here has driver statistics");
  for (auto _ : state) {
    auto counters = must(reader.read(device));
    benchmark::DoNotOptimize(counters);
  }
  state.SetLabel(device);
}
BENCHMARK(BM_EthtoolRead)->Unit(benchmark::kMicrosecond);

void BM_ThreadSchedstat(benchmark::State& state) {
  const std::string text = fixture("process/task_schedstat");
  for (auto _ : state) {
    auto ns = must(mcb::parse_schedstat(text));
    benchmark::DoNotOptimize(ns);
  }
}
BENCHMARK(BM_ThreadSchedstat);

// A steady run of the memcached_threads collector on this process, with `range(0)` threads named
// mc-worker (memcached's -t): one schedstat read per worker thread.
void BM_WorkerThreadsRun(benchmark::State& state) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int i = 0; i < state.range(0); ++i) {
    workers.emplace_back([&stop] {
      ::prctl(PR_SET_NAME, "mc-worker");
      while (!stop) std::this_thread::sleep_for(1ms);
    });
  }
  std::this_thread::sleep_for(50ms);  // every thread has named itself
  const auto stat = must(mcb::parse_proc_stat(must(mcb::read_file("/proc/self/stat"))));
  const double boot = must(mcb::parse_boot_time(must(mcb::read_file("/proc/stat"))));
  const double started = boot + stat.start_ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::vector<mcb::MemcachedSample> samples(1);
  mcb::MemcachedSample& m = samples[0];
  m.target = "bench";
  m.up = true;
  m.time = std::chrono::steady_clock::now();
  m.stats.pid = ::getpid();
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  m.stats.uptime = static_cast<std::int64_t>(now - started) + 62;
  mcb::MemcachedThreadsCollector collector(
      [&] { return std::span<const mcb::MemcachedSample>(samples); }, "/proc");
  auto run = [&] {
    std::optional<mcb::Status> result;
    collector.collect([&](mcb::Status s) { result = std::move(s); });
    if (!result || !*result) throw std::runtime_error("the memcached_threads run failed");
  };
  run();  // the process check and the thread list
  if (collector.last()->targets.at(0).view != mcb::ThreadView::kPerThread ||
      collector.last()->targets.at(0).workers != static_cast<std::size_t>(state.range(0))) {
    throw std::runtime_error("the benchmark's threads were not found: " +
                             collector.last()->targets.at(0).reason);
  }
  const auto reads = collector.thread_reads();
  for (auto _ : state) run();
  state.counters["reads_per_run"] = static_cast<double>(collector.thread_reads() - reads) /
                                    static_cast<double>(state.iterations());
  stop = true;
  for (auto& t : workers) t.join();
}
BENCHMARK(BM_WorkerThreadsRun)->Arg(4)->Arg(16)->Arg(64)->Unit(benchmark::kMicrosecond);

// One discovery scan of this host's /proc (`discover:`) with a memcached of the benchmark's own
// listening: every process's comm, the memcached's namespace, its listeners from one LISTEN dump,
// and (at the first scan only; later ones reuse what they found while it still listens) its
// descriptors. Its standing cost is this per `discover.interval` (30 s by default).
void BM_DiscoveryScan(benchmark::State& state) {
  const std::string port = "21987";
  std::vector<std::string> args{"/usr/bin/memcached", "-U", "0", "-l", "127.0.0.1", "-p", port};
  if (::geteuid() == 0) args.insert(args.end(), {"-u", "root"});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
    throw std::runtime_error("cannot start /usr/bin/memcached");
  }
  mcb::DiscoverConfig config;
  config.enabled = true;
  mcb::Discoverer discoverer(config, "/proc");
  std::size_t found = 0;
  for (int i = 0; i < 100 && found == 0; ++i) {  // until it listens
    std::this_thread::sleep_for(20ms);
    const auto scan = discoverer.scan();
    found = static_cast<std::size_t>(std::count_if(
        scan.found.begin(), scan.found.end(),
        [pid](const mcb::FoundMemcached& f) { return f.pid == pid && !f.listeners.empty(); }));
  }
  std::size_t processes = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    processes += std::isdigit(static_cast<unsigned char>(e.path().filename().string()[0])) ? 1 : 0;
  }
  if (found == 0) {
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
    throw std::runtime_error("the benchmark's memcached was not discovered");
  }
  for (auto _ : state) benchmark::DoNotOptimize(discoverer.scan());
  state.counters["processes"] = static_cast<double>(processes);
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
}
BENCHMARK(BM_DiscoveryScan)->Unit(benchmark::kMicrosecond);

// `count` established IPv4 connections to port 11211 from `clients` distinct addresses
// (10.0.x.y), as parsed DiagSockets, after one listener.
std::vector<mcb::DiagSocket> connections(int count, int clients) {
  std::vector<mcb::DiagSocket> sockets;
  mcb::DiagSocket listener;
  listener.state = TCP_LISTEN;
  listener.local.family = AF_INET;
  listener.local_port = 11211;
  listener.wqueue = 1024;
  sockets.push_back(listener);
  for (int i = 0; i < count; ++i) {
    mcb::DiagSocket s;
    s.state = TCP_ESTABLISHED;
    s.local.family = s.remote.family = AF_INET;
    s.local.bytes = {127, 0, 0, 1};
    const int client = i % clients;
    s.remote.bytes = {10, 0, static_cast<std::uint8_t>(client >> 8),
                      static_cast<std::uint8_t>(client & 0xff)};
    s.local_port = 11211;
    s.remote_port = static_cast<std::uint16_t>(20000 + i % 40000);
    sockets.push_back(s);
  }
  return sockets;
}

// A dump of those connections as the kernel sends it: datagrams of up to 32 KiB of
// inet_diag_msg messages, the last followed by NLMSG_DONE.
std::vector<std::vector<std::byte>> dump_datagrams(const std::vector<mcb::DiagSocket>& sockets,
                                                   std::uint32_t seq) {
  constexpr std::size_t kDatagram = 32768;
  constexpr std::size_t kMessage = NLMSG_ALIGN(NLMSG_LENGTH(sizeof(inet_diag_msg)));
  std::vector<std::vector<std::byte>> datagrams(1);
  for (const auto& s : sockets) {
    if (datagrams.back().size() + kMessage > kDatagram) datagrams.emplace_back();
    auto& out = datagrams.back();
    const std::size_t at = out.size();
    out.resize(at + kMessage);
    nlmsghdr header{};
    header.nlmsg_len = NLMSG_LENGTH(sizeof(inet_diag_msg));
    header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    header.nlmsg_flags = NLM_F_MULTI;
    header.nlmsg_seq = seq;
    inet_diag_msg msg{};
    msg.idiag_family = AF_INET;
    msg.idiag_state = s.state;
    msg.id.idiag_sport = htons(s.local_port);
    msg.id.idiag_dport = htons(s.remote_port);
    std::memcpy(msg.id.idiag_src, s.local.bytes.data(), 4);
    std::memcpy(msg.id.idiag_dst, s.remote.bytes.data(), 4);
    msg.idiag_rqueue = s.rqueue;
    msg.idiag_wqueue = s.wqueue;
    std::memcpy(out.data() + at, &header, sizeof header);
    std::memcpy(out.data() + at + NLMSG_HDRLEN, &msg, sizeof msg);
  }
  nlmsghdr done{};
  done.nlmsg_len = NLMSG_LENGTH(sizeof(int));
  done.nlmsg_type = NLMSG_DONE;
  done.nlmsg_flags = NLM_F_MULTI;
  done.nlmsg_seq = seq;
  auto& last = datagrams.back();
  const std::size_t at = last.size();
  last.resize(at + NLMSG_ALIGN(done.nlmsg_len));
  std::memcpy(last.data() + at, &done, sizeof done);
  return datagrams;
}

void BM_InetDiagParse(benchmark::State& state) {
  const auto datagrams = dump_datagrams(connections(static_cast<int>(state.range(0)), 100), 7);
  std::vector<mcb::DiagSocket> out;
  for (auto _ : state) {
    out.clear();
    for (const auto& datagram : datagrams) {
      must(mcb::parse_inet_diag(datagram, 7, out));
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_InetDiagParse)->Arg(1000)->Arg(10000)->Arg(18000)->Unit(benchmark::kMicrosecond);

mcb::SockdiagOptions watched_11211() {
  mcb::SockdiagOptions options;
  options.ports = {11211};
  return options;
}

// Aggregation into the per-port sample: states, top clients, send queues.
void BM_SockdiagSample(benchmark::State& state) {
  const auto sockets =
      connections(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  const auto options = watched_11211();
  for (auto _ : state) {
    auto sample = mcb::sockdiag_sample(sockets, options);
    benchmark::DoNotOptimize(sample);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_SockdiagSample)
    ->ArgNames({"connections", "clients"})
    ->Args({1000, 100})
    ->Args({10000, 1000})
    ->Args({18000, 18000})
    ->Unit(benchmark::kMicrosecond);

// The families of one sample of every collector, as the exposition renders them per sample; the
// memcached one with or without its 63 slab classes.
mcb::Families all_families(bool with_slabs) {
  mcb::Families families;
  auto append = [&](mcb::Families more) {
    for (auto& f : more) families.push_back(std::move(f));
  };
  mcb::NetstatSample netstat;
  must(mcb::parse_netstat(fixture("proc/net/netstat"), netstat));
  must(mcb::parse_netstat(fixture("proc/net/snmp"), netstat));
  append(mcb::netstat_families(netstat));

  mcb::NetdevSample netdev;
  for (auto& counters : must(mcb::parse_net_dev(fixture("proc/net/dev")))) {
    mcb::NetdevDevice device;
    device.counters = std::move(counters);
    netdev.devices.push_back(std::move(device));
  }
  append(mcb::netdev_families(netdev));
  append(mcb::cpu_families(must(mcb::parse_cpu_stat(fixture("proc/stat"))), 100));
  append(mcb::softnet_families(
      mcb::sum_softnet(must(mcb::parse_softnet_stat(fixture("proc/net/softnet_stat"))))));

  const auto sockets = connections(18000, 1000);
  append(mcb::sockdiag_families(mcb::sockdiag_sample(sockets, watched_11211()), 100ms, 15s));

  append(mcb::memcached_families({memcached_sample(with_slabs)}));
  return families;
}

// The whole body, with one memcached whose 63 slab classes are reported (1) or not (0).
void BM_RenderMetrics(benchmark::State& state) {
  const auto families = all_families(state.range(0) != 0);
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto text = mcb::render_families(families);
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  state.counters["body_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_RenderMetrics)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// gzip of that body, as a scrape asking for it (Prometheus does) pays once per sample.
void BM_Gzip(benchmark::State& state) {
  const auto text = mcb::render_families(all_families(state.range(0) != 0));
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto zipped = mcb::gzip_compress(text);
    bytes = zipped.size();
    benchmark::DoNotOptimize(zipped);
  }
  state.counters["body_bytes"] = static_cast<double>(text.size());
  state.counters["gzip_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Gzip)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
