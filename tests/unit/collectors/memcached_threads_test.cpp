// The memcached_threads collector over a procfs tree built by the test: which process is
// memcached's, its worker threads, their CPU rates, and what it says when it cannot tell.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <pthread.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "collectors/memcached_threads.hpp"
#include "collectors/proc_stat.hpp"
#include "collectors/procfs.hpp"
#include "common/families.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

constexpr double kBoot = 1'800'000'000;  // btime of the fake /proc/stat

// A procfs with one process `pid` started `started_after_boot` seconds after boot, whose threads
// are `threads` (tid, name, CPU nanoseconds).
class FakeProc {
 public:
  FakeProc(std::int64_t pid, double started_after_boot) : pid_(pid) {
    dir_.write("stat",
               "cpu  1 2 3 4 5 6 7 8 0 0\nbtime " + std::to_string(std::int64_t(kBoot)) + "\n");
    const auto ticks =
        static_cast<std::int64_t>(started_after_boot * static_cast<double>(::sysconf(_SC_CLK_TCK)));
    dir_.write(std::to_string(pid) + "/stat", stat_line(pid, "memcached", ticks));
    start_ticks_ = ticks;
  }

  void thread(std::int64_t tid, const std::string& name, std::uint64_t cpu_ns) {
    const std::string t = std::to_string(pid_) + "/task/" + std::to_string(tid);
    dir_.write(t + "/comm", name + "\n");
    dir_.write(t + "/schedstat", std::to_string(cpu_ns) + " 1000 5\n");
    dir_.write(t + "/stat", stat_line(tid, name, start_ticks_));
  }
  void remove_thread(std::int64_t tid) {
    std::filesystem::remove_all(dir_.path() + "/" + std::to_string(pid_) + "/task/" +
                                std::to_string(tid));
  }
  const std::string& path() const { return dir_.path(); }

 private:
  static std::string stat_line(std::int64_t id, const std::string& name, std::int64_t start) {
    return std::to_string(id) + " (" + name + ") S 1 1 1 0 -1 4194368 0 0 0 0 0 0 0 0 20 0 4 0 " +
           std::to_string(start) +
           " 1000000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
  }

  test::TempDir dir_;
  std::int64_t pid_;
  std::int64_t start_ticks_ = 0;
};

struct Clocks {
  std::chrono::steady_clock::time_point steady{std::chrono::hours(100)};
  std::chrono::system_clock::time_point wall{std::chrono::seconds(std::int64_t(kBoot) + 3600)};
  void advance(std::chrono::milliseconds d) {
    steady += d;
    wall += d;
  }
};

MemcachedSample memcached_at(std::int64_t pid, std::int64_t uptime,
                             std::chrono::steady_clock::time_point at) {
  MemcachedSample m;
  m.target = "main";
  m.up = true;
  m.time = at;
  m.stats.pid = pid;
  m.stats.uptime = uptime;
  m.stats.threads = 4;
  return m;
}

Status run(MemcachedThreadsCollector& c) {
  std::optional<Status> result;
  c.collect([&](Status s) { result = std::move(s); });
  REQUIRE(result.has_value());
  return *result;
}

}  // namespace

TEST_CASE("memcached threads: the process is memcached's when its start matches the uptime",
          "[collectors][memcached_threads]") {
  // memcached reports about 62 s more uptime than its process has run.
  CHECK(same_process(1000, 2000, 1062));
  CHECK(same_process(1000, 2000, 1000));        // a clock stepped by a minute
  CHECK(same_process(1000, 2000, 1140));        // or the other way
  CHECK_FALSE(same_process(1000, 2000, 500));   // a process that started 8 min later
  CHECK_FALSE(same_process(1000, 2000, 1300));  // or 4 min earlier
}

TEST_CASE("memcached threads: the busiest worker thread and the average over the workers",
          "[collectors][memcached_threads]") {
  FakeProc proc(4242, 600);  // started 10 min after boot; the wall clock is at boot + 1 h
  proc.thread(4242, "memcached", 5'000'000'000);
  proc.thread(4243, "mc-worker", 1'000'000'000);
  proc.thread(4244, "mc-worker", 1'000'000'000);
  proc.thread(4245, "mc-worker", 1'000'000'000);
  proc.thread(4246, "mc-worker", 1'000'000'000);
  proc.thread(4247, "mc-lrumaint", 9'000'000'000);
  Clocks clocks;
  // Up for 50 min (plus memcached's 62 s).
  std::vector<MemcachedSample> samples{memcached_at(4242, 3000 + 62, clocks.steady)};
  MemcachedThreadsCollector c([&] { return std::span<const MemcachedSample>(samples); },
                              proc.path(), [&] { return clocks.steady; },
                              [&] { return clocks.wall; });
  REQUIRE(run(c).ok());
  REQUIRE(c.last()->targets.size() == 1);
  const MemcachedThreads& first = c.last()->targets[0];
  CHECK(first.view == ThreadView::kPerThread);
  CHECK(first.workers == 4);
  CHECK_FALSE(first.busiest.has_value());  // a rate needs two runs
  const auto reads_after_first = c.thread_reads();

  // One second later one worker ran 0.9 s, the others 0.1 s each; the LRU thread is not a worker.
  clocks.advance(1000ms);
  samples[0].time = clocks.steady;
  proc.thread(4244, "mc-worker", 1'900'000'000);
  for (std::int64_t tid : {4243, 4245, 4246}) proc.thread(tid, "mc-worker", 1'100'000'000);
  proc.thread(4247, "mc-lrumaint", 10'000'000'000);
  REQUIRE(run(c).ok());
  const MemcachedThreads& t = c.last()->targets[0];
  REQUIRE(t.busiest.has_value());
  CHECK(*t.busiest == Approx(0.9));
  CHECK(t.busiest_tid == 4244);
  CHECK(*t.average == Approx(0.3));
  // A steady run reads one file per worker thread.
  CHECK(c.thread_reads() - reads_after_first == 4);
  const std::string text = render_families(c.Collect());
  CHECK_THAT(text,
             Contains("mcbacklog_memcached_busiest_thread_cpu_utilization_ratio{target=\"main\"} "
                      "0.9"));

  // A worker that goes away is dropped when the threads are listed again, a minute on. (On
  // procfs its open schedstat fails at once, with ESRCH: the next test.)
  proc.remove_thread(4246);
  clocks.advance(61s);
  samples[0].time = clocks.steady;
  REQUIRE(run(c).ok());
  CHECK(c.last()->targets[0].workers == 3);
  clocks.advance(1000ms);
  samples[0].time = clocks.steady;
  REQUIRE(run(c).ok());
  CHECK(c.last()->targets[0].view == ThreadView::kPerThread);
  CHECK(c.last()->targets[0].workers == 3);
}

TEST_CASE(
    "memcached threads: a worker thread that ends is dropped at the next run (this "
    "process's own threads on the real /proc)",
    "[collectors][memcached_threads]") {
  const auto read = [](const std::string& path) {
    auto text = read_file(path);
    REQUIRE(text);
    return *text;
  };
  // This process stands in for memcached: its start from /proc, its uptime as memcached would
  // report it (62 s early).
  const double boot = *parse_boot_time(read("/proc/stat"));
  const double started =
      boot + static_cast<double>(parse_proc_stat(read("/proc/self/stat"))->start_ticks) /
                 static_cast<double>(::sysconf(_SC_CLK_TCK));
  const auto wall = std::chrono::system_clock::now();
  const double now = std::chrono::duration<double>(wall.time_since_epoch()).count();
  std::vector<MemcachedSample> samples{memcached_at(
      ::getpid(), static_cast<std::int64_t>(now - started) + 62, std::chrono::steady_clock::now())};

  std::mutex mutex;
  std::condition_variable cv;
  int stop = 0;  // how many workers may end
  std::vector<std::thread> workers;
  std::atomic<int> named{0};
  std::array<std::atomic<pid_t>, 3> tids{};
  for (int i = 0; i < 3; ++i) {
    workers.emplace_back([&, i] {
      tids[static_cast<std::size_t>(i)] = ::gettid();
      ::pthread_setname_np(::pthread_self(), "mc-worker");
      ++named;
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return stop > i; });
    });
  }
  while (named < 3) std::this_thread::yield();

  MemcachedThreadsCollector c([&] { return std::span<const MemcachedSample>(samples); }, "/proc");
  REQUIRE(run(c).ok());
  REQUIRE(c.last()->targets.at(0).view == ThreadView::kPerThread);
  CHECK(c.last()->targets[0].workers == 3);
  REQUIRE(run(c).ok());
  CHECK(c.last()->targets[0].workers == 3);
  const auto reads = c.thread_reads();

  {
    std::lock_guard lock(mutex);
    stop = 1;
  }
  cv.notify_all();
  workers[0].join();
  // A joined thread may still be leaving the kernel's task list: wait until /proc has let it go.
  const std::string task = "/proc/self/task/" + std::to_string(tids[0].load());
  for (int i = 0; i < 3000 && std::filesystem::exists(task); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE_FALSE(std::filesystem::exists(task));
  REQUIRE(run(c).ok());  // its open schedstat says ESRCH: gone, and listed again next run
  CHECK(c.last()->targets[0].workers == 2);
  CHECK(c.thread_reads() - reads == 3);
  REQUIRE(run(c).ok());
  CHECK(c.last()->targets[0].view == ThreadView::kPerThread);
  CHECK(c.last()->targets[0].workers == 2);

  {
    std::lock_guard lock(mutex);
    stop = 3;
  }
  cv.notify_all();
  for (std::size_t i = 1; i < workers.size(); ++i) workers[i].join();
}

TEST_CASE("memcached threads: a pid that is another process, or none, keeps the average",
          "[collectors][memcached_threads]") {
  FakeProc proc(77, 600);
  proc.thread(77, "mc-worker", 1);
  Clocks clocks;
  // memcached says it has been up 5 min: process 77 here started 50 min ago, so it is not
  // memcached (a memcached in a container whose pid 77 is another process here).
  std::vector<MemcachedSample> samples{memcached_at(77, 300, clocks.steady),
                                       memcached_at(99, 3062, clocks.steady)};
  samples[1].target = "gone";
  MemcachedThreadsCollector c([&] { return std::span<const MemcachedSample>(samples); },
                              proc.path(), [&] { return clocks.steady; },
                              [&] { return clocks.wall; });
  REQUIRE(run(c).ok());
  const auto& targets = c.last()->targets;
  REQUIRE(targets.size() == 2);
  CHECK(targets[0].view == ThreadView::kElsewhere);
  CHECK_THAT(targets[0].reason, Contains("another pid namespace"));
  CHECK_THAT(targets[0].reason, Contains("rusage average"));
  CHECK(targets[1].view == ThreadView::kElsewhere);
  CHECK_THAT(targets[1].reason, Contains("no process 99 here"));
  CHECK(c.thread_reads() == 0);
  CHECK(c.Collect().empty());
}

TEST_CASE("memcached threads: a memcached that names no thread mc-worker says so",
          "[collectors][memcached_threads]") {
  FakeProc proc(5, 600);
  proc.thread(5, "memcached", 1);
  proc.thread(6, "memcached", 1);
  Clocks clocks;
  std::vector<MemcachedSample> samples{memcached_at(5, 3062, clocks.steady)};
  MemcachedThreadsCollector c([&] { return std::span<const MemcachedSample>(samples); },
                              proc.path(), [&] { return clocks.steady; },
                              [&] { return clocks.wall; });
  REQUIRE(run(c).ok());
  CHECK(c.last()->targets[0].view == ThreadView::kUnnamed);
  CHECK_THAT(c.last()->targets[0].reason, Contains("names no thread mc-worker"));

  // Down: no pid to look for.
  samples[0].up = false;
  REQUIRE(run(c).ok());
  CHECK(c.last()->targets[0].view == ThreadView::kNoData);
}

TEST_CASE("memcached threads: a restart with a new pid is checked again",
          "[collectors][memcached_threads]") {
  FakeProc proc(10, 600);
  proc.thread(11, "mc-worker", 1'000'000'000);
  Clocks clocks;
  std::vector<MemcachedSample> samples{memcached_at(10, 3062, clocks.steady)};
  MemcachedThreadsCollector c([&] { return std::span<const MemcachedSample>(samples); },
                              proc.path(), [&] { return clocks.steady; },
                              [&] { return clocks.wall; });
  REQUIRE(run(c).ok());
  CHECK(c.last()->targets[0].view == ThreadView::kPerThread);
  // memcached restarted elsewhere (its new pid 12 is not here).
  clocks.advance(1000ms);
  samples[0] = memcached_at(12, 1, clocks.steady);
  REQUIRE(run(c).ok());
  CHECK(c.last()->targets[0].view == ThreadView::kElsewhere);
  CHECK_FALSE(c.last()->targets[0].busiest.has_value());
}

TEST_CASE("memcached threads: without /proc/stat's boot time the run fails naming the file",
          "[collectors][memcached_threads]") {
  test::TempDir empty;
  std::vector<MemcachedSample> samples;
  MemcachedThreadsCollector c([&] { return std::span<const MemcachedSample>(samples); },
                              empty.path());
  CHECK_THAT(run(c).error().message, Contains("/stat: no such file"));
}

TEST_CASE(
    "memcached threads: a worker's file of 1 GiB is refused before a byte is read, logged, and "
    "the target is judged on the average until it reads again",
    "[collectors][memcached_threads]") {
  FakeProc proc(4242, 600);
  proc.thread(4243, "mc-worker", 1'000'000'000);
  proc.thread(4244, "mc-worker", 1'000'000'000);
  Clocks clocks;
  std::vector<MemcachedSample> samples{memcached_at(4242, 3000 + 62, clocks.steady)};
  MemcachedThreadsCollector c([&] { return std::span<const MemcachedSample>(samples); },
                              proc.path(), [&] { return clocks.steady; },
                              [&] { return clocks.wall; });
  REQUIRE(run(c).ok());
  REQUIRE(c.last()->targets.at(0).view == ThreadView::kPerThread);

  // A sparse file: 1 GiB by its size, nothing on disk. Read whole, it held the loop each run.
  const std::string schedstat = proc.path() + "/4242/task/4244/schedstat";
  std::filesystem::resize_file(schedstat, std::uintmax_t{1} << 30);
  clocks.advance(1000ms);
  samples[0].time = clocks.steady;
  REQUIRE(run(c).ok());  // one target's file: that target's problem, not the collector's
  const MemcachedThreads& refused = c.last()->targets.at(0);
  CHECK(refused.view == ThreadView::kUnreadable);
  CHECK(refused.reason ==
        schedstat + ": 16 MiB or more, more than is read of a file under /proc or /sys");
  CHECK_FALSE(refused.busiest.has_value());

  proc.thread(4244, "mc-worker", 1'500'000'000);  // a schedstat of the usual size again
  for (int i = 0; i < 2; ++i) {
    clocks.advance(1000ms);
    samples[0].time = clocks.steady;
    REQUIRE(run(c).ok());
  }
  CHECK(c.last()->targets.at(0).view == ThreadView::kPerThread);
  CHECK(c.last()->targets.at(0).busiest.has_value());
}
