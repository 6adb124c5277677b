#pragma once
// The memcached_threads collector: the CPU of each memcached worker thread, for the targets whose
// process this daemon can see. memcached serves each connection on one worker thread, so one
// heavy client saturates one thread while the average over all of them (rusage, the memcached
// collector's mcbacklog_memcached_cpu_utilization_ratio) still reads low; this collector finds
// the busiest worker thread for MemcachedCpuSaturated.
//
// A target's process: the `pid` of its last `stats` (or the host pid set_host_pids() gives), when
// <procfs>/<pid> exists and started when memcached's `uptime` says it did (memcached counts its
// uptime from about 62 s before it started, by design; same_process() allows for that). A remote
// memcached, or one in another pid namespace (a container), fails that check and keeps the rusage
// average; the sample says why. Its worker threads: the tasks memcached names "mc-worker". Their
// CPU: the nanoseconds of <procfs>/<pid>/task/<tid>/schedstat (stat's utime + stime where the
// kernel has no schedstat), as a rate between two runs.
//
// Cost per target and run: one pread per worker thread, of a schedstat file kept open until the
// task list is read again. The process check runs again only when the pid or memcached's start
// time changes, the task list once a minute or when a thread went away. It reads the memcached
// collector's samples of its last completed run (pid and uptime change only at a restart). Loop
// thread only.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "collectors/failure_log.hpp"
#include "collectors/file_collector.hpp"
#include "collectors/memcached.hpp"
#include "collectors/procfs.hpp"

namespace mcb {

// memcached's worker threads' name (thread_setname, memcached 1.6).
inline constexpr std::string_view kWorkerThreadName = "mc-worker";

// Pure: whether a process that started at `process_start` is the memcached that reported
// `uptime` seconds at `now` (both in seconds since the epoch). memcached sets its start 62 s in
// the past (ITEM_UPDATE_INTERVAL + 2), so it reports about 62 s more than it ran; clocks that
// were stepped since boot move the process's start seen from /proc. Accepted: 62 s ± 90 s.
bool same_process(double process_start, double now, double uptime);

// How a target's CPU is judged.
enum class ThreadView {
  kPerThread,   // each worker thread's CPU is read
  kElsewhere,   // no such process here: a remote memcached or another pid namespace
  kUnnamed,     // the process is here but names no thread mc-worker (an older memcached)
  kUnreadable,  // the process is here but its threads could not be read
  kNoData,      // memcached is not answering, or reports no pid or uptime
};

struct MemcachedThreads {
  std::string target;
  ThreadView view = ThreadView::kNoData;
  std::string reason;  // why not kPerThread, in words
  std::optional<std::int64_t> pid;
  std::size_t workers = 0;  // worker threads read this run
  // CPU seconds per second over the last interval; absent on the first run after a (re)start.
  std::optional<double> busiest;
  std::int64_t busiest_tid = 0;
  std::optional<double> average;  // over the worker threads
};

struct MemcachedThreadsSample {
  std::vector<MemcachedThreads> targets;  // in the memcached collector's order
};

Families memcached_threads_families(const MemcachedThreadsSample& sample);

class MemcachedThreadsCollector final : public FileCollector<MemcachedThreadsSample> {
 public:
  using Clock = std::chrono::steady_clock;
  using Samples = std::function<std::span<const MemcachedSample>()>;

  // `samples` gives the memcached collector's last samples; `now` is the clock rates are
  // measured with and `wall` the one memcached's uptime is compared with (tests inject both).
  MemcachedThreadsCollector(
      Samples samples, std::string procfs, std::function<Clock::time_point()> now = Clock::now,
      std::function<std::chrono::system_clock::time_point()> wall = std::chrono::system_clock::now);

  std::string_view name() const override { return "memcached_threads"; }

  // The pid of a target's process as this daemon sees it, by target name, where memcached's own
  // `pid` is of another pid namespace (a container): discovery's, or a `netns_pid` that is
  // memcached itself. Other targets use the `pid` memcached reports. Set before the first run.
  void set_host_pids(std::map<std::string, std::int64_t, std::less<>> by_target) {
    host_pids_ = std::move(by_target);
  }

  // Reads of thread files since construction (tests and benchmarks hold the cost to this).
  std::uint64_t thread_reads() const { return thread_reads_; }

 private:
  struct Tracked {
    std::int64_t pid = 0;
    double started = 0;  // memcached's start as its uptime says, seconds since the epoch
    bool checked = false;
    ThreadView view = ThreadView::kNoData;
    std::string reason;
    std::vector<std::int64_t> workers;
    std::optional<Clock::time_point> listed;
    std::map<std::int64_t, std::uint64_t> cpu_ns;  // of the last run
    // Each worker's schedstat, kept open between listings: no open or close each run.
    std::map<std::int64_t, ProcFile> schedstat;
    std::optional<Clock::time_point> read_at;
    // When its threads are unreadable: logged when that starts, when the reason changes, then
    // once a minute, and once when they are read again.
    FailureLog unreadable_log;
  };

  Result<MemcachedThreadsSample> read() override;
  Families families(const MemcachedThreadsSample& s) const override {
    return memcached_threads_families(s);
  }
  MemcachedThreads sample_of(const MemcachedSample& m, Tracked& t, Clock::time_point now,
                             double wall_now);
  void check_process(Tracked& t, double wall_now, double uptime);
  Status list_workers(Tracked& t, Clock::time_point now);
  // The thread's CPU time in nanoseconds; nullopt when it went away.
  Result<std::optional<std::uint64_t>> thread_cpu(Tracked& t, std::int64_t tid);

  Samples samples_;
  std::string procfs_;
  std::function<Clock::time_point()> now_;
  std::function<std::chrono::system_clock::time_point()> wall_;
  std::optional<double> boot_time_;
  double ticks_per_second_;
  std::map<std::string, Tracked, std::less<>> tracked_;  // by target
  std::map<std::string, std::int64_t, std::less<>> host_pids_;
  std::uint64_t thread_reads_ = 0;
};

}  // namespace mcb
