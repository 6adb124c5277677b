#include "collectors/memcached_threads.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "collectors/proc_stat.hpp"
#include "collectors/procfs.hpp"
#include "common/families.hpp"

namespace mcb {
namespace {

// How far ahead of its process memcached's uptime runs (ITEM_UPDATE_INTERVAL + 2 in memcached.c)
// and the slack allowed around it.
constexpr double kUptimeLead = 62;
constexpr double kStartSlack = 90;
// Thread lists are read again this often (memcached starts its workers once).
constexpr auto kRelist = std::chrono::minutes(1);

double seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::string elsewhere_reason(std::int64_t pid, std::string_view detail) {
  return fmt::format(
      "memcached's pid {} is not a memcached process this daemon can see ({}): a remote "
      "memcached, or one in another pid namespace; judged on the rusage average over its worker "
      "threads",
      pid, detail);
}

}  // namespace

bool same_process(double process_start, double now, double uptime) {
  const double memcached_start = now - uptime;
  return std::fabs(process_start - memcached_start - kUptimeLead) <= kStartSlack;
}

Families memcached_threads_families(const MemcachedThreadsSample& s) {
  auto busiest = gauge("mcbacklog_memcached_busiest_thread_cpu_utilization_ratio",
                       "CPU seconds per second of memcached's busiest worker thread (mc-worker) "
                       "over the last interval: near 1 means that thread is saturated, whatever "
                       "the average. Only for a memcached whose process this daemon sees.");
  for (const MemcachedThreads& t : s.targets) {
    if (t.busiest) busiest.add(*t.busiest, {{"target", t.target}});
  }
  Families out;
  std::move(busiest).into(out);
  return out;
}

MemcachedThreadsCollector::MemcachedThreadsCollector(
    Samples samples, std::string procfs, std::function<Clock::time_point()> now,
    std::function<std::chrono::system_clock::time_point()> wall)
    : samples_(std::move(samples)),
      procfs_(std::move(procfs)),
      now_(std::move(now)),
      wall_(std::move(wall)),
      ticks_per_second_(static_cast<double>(::sysconf(_SC_CLK_TCK))) {}

Result<MemcachedThreadsSample> MemcachedThreadsCollector::read() {
  if (!boot_time_) {
    const std::string path = procfs_ + "/stat";
    auto text = read_file(path);
    if (!text) return text.error();
    auto boot = parse_boot_time(*text);
    if (!boot) return fail(path + ": " + boot.error().message);
    boot_time_ = *boot;
  }
  const auto now = now_();
  const double wall_now = seconds(wall_());
  MemcachedThreadsSample out;
  const auto all = samples_();
  for (const MemcachedSample& m : all) {
    Tracked& t = tracked_[m.target];
    const MemcachedThreads& s = out.targets.emplace_back(sample_of(m, t, now, wall_now));
    // A target's unreadable file is its own failure, not the collector's: the other targets keep
    // their series, and this one is judged on memcached's rusage average meanwhile.
    if (s.view == ThreadView::kUnreadable) {
      if (t.unreadable_log.failed(s.reason, now)) {
        spdlog::warn(
            "memcached target {}: its threads cannot be read, MemcachedCpuSaturated is judged on "
            "the rusage average: {}{}",
            s.target, s.reason, t.unreadable_log.note());
      }
    } else if (t.unreadable_log.succeeded(now)) {
      spdlog::info("memcached target {}: its threads are read again{}", s.target,
                   t.unreadable_log.note());
    }
  }
  std::erase_if(tracked_, [&](const auto& kv) {
    return std::none_of(all.begin(), all.end(),
                        [&](const MemcachedSample& m) { return m.target == kv.first; });
  });
  return out;
}

void MemcachedThreadsCollector::check_process(Tracked& t, double wall_now, double uptime) {
  t.checked = true;
  t.workers.clear();
  t.schedstat.clear();
  t.listed.reset();
  t.cpu_ns.clear();
  t.read_at.reset();
  const std::string path = procfs_ + "/" + std::to_string(t.pid) + "/stat";
  auto text = read_optional_file(path, {ESRCH, EACCES, EPERM});
  if (!text) {
    t.view = ThreadView::kUnreadable;
    t.reason = text.error().message;
    return;
  }
  if (!text->has_value()) {
    t.view = ThreadView::kElsewhere;
    t.reason = elsewhere_reason(t.pid, "no process " + std::to_string(t.pid) + " here");
    return;
  }
  auto stat = parse_proc_stat(**text);
  if (!stat) {
    t.view = ThreadView::kUnreadable;
    t.reason = path + ": " + stat.error().message;
    return;
  }
  const double started = *boot_time_ + stat->start_ticks / ticks_per_second_;
  if (!same_process(started, wall_now, uptime)) {
    t.view = ThreadView::kElsewhere;
    t.reason = elsewhere_reason(
        t.pid, fmt::format("process {} here started {:.0f} s after memcached says it did, not "
                           "about {:.0f} s",
                           t.pid, started - (wall_now - uptime), kUptimeLead));
    return;
  }
  t.view = ThreadView::kPerThread;
  t.reason.clear();
}

Status MemcachedThreadsCollector::list_workers(Tracked& t, Clock::time_point now) {
  const std::string dir = procfs_ + "/" + std::to_string(t.pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return fail(dir + ": " + std::strerror(errno));
  std::vector<std::int64_t> tids;
  while (const dirent* e = ::readdir(d)) {
    std::int64_t tid = 0;
    const std::string_view name = e->d_name;
    auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), tid);
    if (ec == std::errc() && ptr == name.data() + name.size()) tids.push_back(tid);
  }
  ::closedir(d);
  std::sort(tids.begin(), tids.end());
  t.workers.clear();
  t.schedstat.clear();
  for (std::int64_t tid : tids) {
    ++thread_reads_;
    auto comm = read_optional_file(dir + "/" + std::to_string(tid) + "/comm", {ESRCH});
    if (!comm) return comm.error();
    if (!comm->has_value()) continue;  // it ended meanwhile
    std::string_view name = **comm;
    if (!name.empty() && name.back() == '\n') name.remove_suffix(1);
    if (name == kWorkerThreadName) t.workers.push_back(tid);
  }
  t.listed = now;
  return ok_status();
}

Result<std::optional<std::uint64_t>> MemcachedThreadsCollector::thread_cpu(Tracked& t,
                                                                           std::int64_t tid) {
  const std::string dir = procfs_ + "/" + std::to_string(t.pid) + "/task/" + std::to_string(tid);
  ++thread_reads_;
  ProcFile& file = t.schedstat.try_emplace(tid, dir + "/schedstat", std::size_t{128}).first->second;
  auto sched = file.read();
  if (sched) {
    auto ns = parse_schedstat(*sched);
    if (!ns) return fail(dir + "/schedstat: " + ns.error().message);
    return std::optional<std::uint64_t>{*ns};
  }
  if (file.error_number() == ESRCH) return std::optional<std::uint64_t>{};  // the thread ended
  if (file.error_number() != ENOENT) return sched.error();
  // No schedstat: a kernel without CONFIG_SCHED_INFO, or the thread ended.
  auto text = read_optional_file(dir + "/stat", {ESRCH});
  if (!text) return text.error();
  if (!text->has_value()) return std::optional<std::uint64_t>{};
  auto stat = parse_proc_stat(**text);
  if (!stat) return fail(dir + "/stat: " + stat.error().message);
  return std::optional<std::uint64_t>{static_cast<std::uint64_t>(
      (stat->utime_ticks + stat->stime_ticks) / ticks_per_second_ * 1e9)};
}

MemcachedThreads MemcachedThreadsCollector::sample_of(const MemcachedSample& m, Tracked& t,
                                                      Clock::time_point now, double wall_now) {
  MemcachedThreads out;
  out.target = m.target;
  if (!m.up || !m.stats.pid || !m.stats.uptime) {
    out.reason = m.up ? "memcached reports no pid or uptime" : "memcached is not answering";
    t.checked = false;
    return out;
  }
  const auto host_pid = host_pids_.find(m.target);
  out.pid = host_pid != host_pids_.end() ? host_pid->second : *m.stats.pid;
  // The uptime as of now, from the sample's age.
  const double uptime = static_cast<double>(*m.stats.uptime) +
                        std::max(0.0, std::chrono::duration<double>(now - m.time).count());
  const double started = wall_now - uptime;
  if (!t.checked || t.pid != *out.pid || std::fabs(started - t.started) > 10) {
    t.pid = *out.pid;
    t.started = started;
    check_process(t, wall_now, uptime);
  }
  out.view = t.view;
  out.reason = t.reason;
  if (t.view != ThreadView::kPerThread && t.view != ThreadView::kUnnamed) return out;

  if (!t.listed || now >= *t.listed + kRelist) {
    if (auto listed = list_workers(t, now); !listed) {
      t.view = out.view = ThreadView::kUnreadable;
      t.reason = out.reason = listed.error().message;
      t.checked = false;  // check the process again next run
      return out;
    }
    t.view = out.view = t.workers.empty() ? ThreadView::kUnnamed : ThreadView::kPerThread;
    t.reason = out.reason = t.workers.empty()
                                ? fmt::format(
                                      "memcached names no thread {} (an older memcached); "
                                      "judged on the rusage average over its worker threads",
                                      kWorkerThreadName)
                                : "";
  }
  if (t.view != ThreadView::kPerThread) return out;

  std::map<std::int64_t, std::uint64_t> cpu;
  bool gone = false;
  for (std::int64_t tid : t.workers) {
    auto ns = thread_cpu(t, tid);
    if (!ns) {
      out.view = ThreadView::kUnreadable;
      out.reason = ns.error().message;
      t.listed.reset();
      return out;
    }
    if (!*ns) {
      gone = true;
      continue;
    }
    cpu[tid] = **ns;
  }
  if (gone) t.listed.reset();  // a worker went away: list them again next run
  out.workers = cpu.size();
  if (t.read_at && now > *t.read_at) {
    const double span = std::chrono::duration<double>(now - *t.read_at).count();
    double sum = 0;
    std::size_t rated = 0;
    for (const auto& [tid, ns] : cpu) {
      const auto before = t.cpu_ns.find(tid);
      if (before == t.cpu_ns.end() || ns < before->second) continue;
      const double rate = static_cast<double>(ns - before->second) / 1e9 / span;
      sum += rate;
      ++rated;
      if (!out.busiest || rate > *out.busiest) {
        out.busiest = rate;
        out.busiest_tid = tid;
      }
    }
    if (rated > 0) out.average = sum / static_cast<double>(rated);
  }
  t.cpu_ns = std::move(cpu);
  t.read_at = now;
  return out;
}

}  // namespace mcb
