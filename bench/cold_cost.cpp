// What the daemon's per-second reads cost when done once a second, as the daemon does them, against
// the same reads done back to back, as a micro-benchmark does them: CPU time of this thread
// (CLOCK_THREAD_CPUTIME_ID) per round of (1) one pread of each /proc file a sample reads
// (/proc/net/netstat, /proc/net/snmp, /proc/stat, /proc/net/dev, /proc/net/softnet_stat) and (2)
// a `stats` round trip to memcached over TCP. A round done once a second finds caches, TLB and
// branch predictors cold; in a loop, warm. The ratio is how far a micro-benchmark understates a
// once-a-second cycle (docs/benchmarks.md).
//
// Run: build/bench/cold_cost [--smoke] [memcached host:port, default 127.0.0.1:11211]
// Without a memcached there, only the files are measured. --smoke: a few rounds, no sleeping
// (what ctest runs; figures meaningless).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace {

double thread_cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

std::array<char, 16384> buffer;

// A connected TCP socket to host:port (an IPv4 address), or -1.
int connect_to(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return -1;
  std::uint16_t port = 0;
  const char* end = address.data() + address.size();
  if (std::from_chars(address.data() + colon + 1, end, port).ptr != end) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &a.sin_addr) != 1) return -1;
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    close(s);
    return -1;
  }
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

}  // namespace

int main(int argc, char** argv) {
  bool smoke = false;
  std::string memcached = "127.0.0.1:11211";
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--smoke") {
      smoke = true;
    } else {
      memcached = argv[i];
    }
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
  bool failed = false;
  const auto read_files = [&] {
    for (const int fd : files) failed |= pread(fd, buffer.data(), buffer.size(), 0) < 0;
  };
  print("five /proc files, one pread each", measure(read_files, smoke));
  if (failed) {
    std::perror("cold_cost: pread");
    return 1;
  }
  const int s = connect_to(memcached);
  if (s < 0) {
    std::printf("no memcached at %s: the stats round trip is not measured\n", memcached.c_str());
    return 0;
  }
  print("a stats round trip to memcached", measure([&] { failed |= !stats_round_trip(s); }, smoke));
  close(s);
  if (failed) {
    std::fprintf(stderr, "cold_cost: memcached at %s stopped answering\n", memcached.c_str());
    return 1;
  }
  return 0;
}
