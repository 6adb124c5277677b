// What one wake-up of a periodic timer costs on this machine, the floor under the accept-queue
// sampler's ten ticks a second: CPU time per tick of (1) an Asio io_context with one
// steady_timer re-armed drift-free, as PeriodicTimer does, and (2) a plain thread sleeping with
// clock_nanosleep(TIMER_ABSTIME). Nothing else runs in either. (Asio built with
// BOOST_ASIO_DISABLE_TIMERFD, waiting in epoll_wait's timeout rather than on a timerfd, measured
// the same within noise: that needs the whole program built so, and is not done here.)
//
// Run: build/bench/tick_cost [seconds, default 15] [interval in ms, default 100]

#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace {

double cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

double asio_ticks(int ticks, std::chrono::milliseconds interval) {
  boost::asio::io_context io;
  boost::asio::steady_timer timer(io);
  auto next = std::chrono::steady_clock::now();
  int done = 0;
  std::function<void()> arm = [&] {
    next += interval;
    timer.expires_at(next);
    timer.async_wait([&](const boost::system::error_code&) {
      if (++done < ticks) arm();
    });
  };
  const double start = cpu_us();
  arm();
  io.run();
  return (cpu_us() - start) / ticks;
}

double nanosleep_ticks(int ticks, std::chrono::milliseconds interval) {
  timespec next{};
  clock_gettime(CLOCK_MONOTONIC, &next);
  const long step = static_cast<long>(interval.count()) * 1000000L;
  const double start = cpu_us();
  for (int i = 0; i < ticks; ++i) {
    next.tv_nsec += step;
    while (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      ++next.tv_sec;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
  }
  return (cpu_us() - start) / ticks;
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 15;
  const std::chrono::milliseconds interval(argc > 2 ? std::atoi(argv[2]) : 100);
  if (seconds <= 0 || interval.count() <= 0) {
    std::fprintf(stderr, "usage: tick_cost [seconds > 0] [interval ms > 0]\n");
    return 2;
  }
  const int ticks = static_cast<int>(seconds * 1000 / interval.count());
  std::printf("%d ticks every %lld ms each way\n", ticks, static_cast<long long>(interval.count()));
  std::printf("Asio steady_timer:          %.1f us of CPU a tick\n", asio_ticks(ticks, interval));
  std::printf("clock_nanosleep(ABSTIME):   %.1f us of CPU a tick\n",
              nanosleep_ticks(ticks, interval));
  return 0;
}
