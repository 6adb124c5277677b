// What the daemon's per-second reads cost when done once a second, as the daemon does them, against
// the same reads done back to back, as a micro-benchmark does them: CPU time of this thread
// (CLOCK_THREAD_CPUTIME_ID) per round of (1) one pread of each /proc file a sample reads
// (/proc/net/netstat, /proc/net/snmp, /proc/stat, /proc/net/dev, /proc/net/softnet_stat) and (2)
// a `stats` round trip to memcached over TCP. A round done once a second finds caches, TLB and
// branch predictors cold; in a loop, warm. The ratio is how far a micro-benchmark understates a
// once-a-second cycle (docs/benchmarks.md).
//
// Run: build/bench/cold_cost [--smoke] [memcached address, default 127.0.0.1:11211]
// Without a memcached there (nothing listening), only the files are measured; an address that
// does not parse, or a memcached that stops answering, is an error (exit 2, 1). --smoke: a few
// rounds, no sleeping (what ctest runs; figures meaningless).

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/address.hpp"

namespace {

double thread_cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

std::array<char, 16384> buffer;

// A connected stream socket to `to` (TCP by name or address, or a unix socket), or -1 with `why`
// set.
int connect_to(const mcb::Endpoint& to, std::string& why) {
  if (to.is_unix()) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    to.path.copy(a.sun_path, sizeof a.sun_path - 1);
    const int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s >= 0 && connect(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) return s;
    why = std::strerror(errno);
    if (s >= 0) close(s);
    return -1;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int e = getaddrinfo(to.host.c_str(), std::to_string(to.port).c_str(), &hints, &found);
      e != 0) {
    why = gai_strerror(e);
    return -1;
  }
  int s = -1;
  for (const addrinfo* a = found; a != nullptr && s < 0; a = a->ai_next) {
    s = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (s >= 0 && connect(s, a->ai_addr, a->ai_addrlen) != 0) {
      why = std::strerror(errno);
      close(s);
      s = -1;
    }
  }
  freeaddrinfo(found);
  return s;
}

// Sends `stats` and reads to END; false on any error.
bool stats_round_trip(int s) {
  if (send(s, "stats\r\n", 7, MSG_NOSIGNAL) != 7) return false;
  std::string reply;
  while (!std::string_view(reply).ends_with("END\r\n")) {
    const ssize_t n = recv(s, buffer.data(), buffer.size(), 0);
    if (n <= 0) return false;
    reply.append(buffer.data(), static_cast<std::size_t>(n));
  }
  return true;
}

// Microseconds of CPU per round: {hot, cold}.
std::pair<double, double> measure(const std::function<void()>& round, bool smoke) {
  const int hot_rounds = smoke ? 10 : 1000;
  const int cold_rounds = smoke ? 2 : 15;
  for (int i = 0; i < hot_rounds / 10; ++i) round();  // warm-up
  double start = thread_cpu_us();
  for (int i = 0; i < hot_rounds; ++i) round();
  const double hot = (thread_cpu_us() - start) / hot_rounds;
  double cold = 0;
  for (int i = 0; i < cold_rounds; ++i) {
    if (!smoke) sleep(1);
    start = thread_cpu_us();
    round();
    cold += thread_cpu_us() - start;
  }
  return {hot, cold / cold_rounds};
}

void print(const char* what, std::pair<double, double> r) {
  std::printf("%-40s hot %7.1f us   once a second %7.1f us   ratio %.1f\n", what, r.first, r.second,
              r.second / r.first);
}

constexpr const char* kUsage =
    "usage: cold_cost [--smoke] [memcached address, default 127.0.0.1:11211]\n"
    "  address: host:port, [v6]:port or unix:/path. Measures the CPU of the daemon's per-second\n"
    "  reads back to back and once a second (about 35 s; --smoke: under a second, figures\n"
    "  meaningless). Without a memcached at the address only the files are measured.\n";

}  // namespace

int main(int argc, char** argv) {
  bool smoke = false;
  std::string address = "127.0.0.1:11211";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--smoke") {
      smoke = true;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg.starts_with("-")) {
      std::fprintf(stderr, "cold_cost: unknown option %s\n%s", argv[i], kUsage);
      return 2;
    } else {
      address = arg;
    }
  }
  const auto memcached = mcb::parse_target_address(address);
  if (!memcached) {
    std::fprintf(stderr, "cold_cost: %s\n%s", memcached.error().message.c_str(), kUsage);
    return 2;
  }
  std::vector<int> files;
  for (const char* path : {"/proc/net/netstat", "/proc/net/snmp", "/proc/stat", "/proc/net/dev",
                           "/proc/net/softnet_stat"}) {
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::perror(path);
      return 1;
    }
    files.push_back(fd);
  }
  if (!smoke) std::fprintf(stderr, "cold_cost: the files, about 15 s\n");
  bool failed = false;
  const auto read_files = [&] {
    for (const int fd : files) failed |= pread(fd, buffer.data(), buffer.size(), 0) < 0;
  };
  const auto file_costs = measure(read_files, smoke);
  if (failed) {
    std::perror("cold_cost: pread");
    return 1;
  }
  print("five /proc files, one pread each", file_costs);
  const std::string name = memcached->to_string();
  std::string why;
  const int s = connect_to(*memcached, why);
  if (s < 0) {
    std::printf("no memcached at %s (%s): the stats round trip is not measured\n", name.c_str(),
                why.c_str());
    return 0;
  }
  if (!smoke)
    std::fprintf(stderr, "cold_cost: the stats round trip to %s, about 16 s\n", name.c_str());
  const auto stats_costs = measure([&] { failed = failed || !stats_round_trip(s); }, smoke);
  close(s);
  if (failed) {
    std::fprintf(stderr, "cold_cost: memcached at %s stopped answering `stats`; no figures\n",
                 name.c_str());
    return 1;
  }
  print("a stats round trip to memcached", stats_costs);
  return 0;
}
