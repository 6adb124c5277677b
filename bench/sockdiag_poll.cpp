// Benchmark: the cost of one sockdiag poll against the number of TCP connections on the machine.
//
// For 1k, 10k and 18k connections, in two layouts (all of them on the watched port, as under
// connection sprawl; or all on another port with 100 on the watched one, as on a host that also
// runs other services) it times one poll done five ways:
//   - what a collector run does (dump_watched: the port filter compiled to kernel bytecode, and
//     the connection table walked only for the families that have a listener: IPv4 here),
//   - the same filter over both families,
//   - sock_diag without a filter, filtering in user space (what a filterless tool does),
//   - reading and parsing /proc/net/tcp and /proc/net/tcp6 (what netstat-style tools do),
//   - the LISTEN-only dump the accept-queue sampler repeats every sample_interval.
// Each poll includes aggregation into a SockdiagSample, and the bench checks that every way
// counts the same connections. Prints a Markdown table of medians.
//
// Connections are made inside a private network namespace (so ports and the port range are the
// benchmark's own; the kernel's socket hash table is still shared with the whole machine) and
// held by child processes of at most 4500 connections (9000 descriptors) each, since a process
// may open 20000 files. Sockets close with SO_LINGER 0, so no TIME_WAIT is left behind between
// layouts. Run as root: bench/sockdiag_poll.sh [--smoke] [--runs N].

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "collectors/netlink.hpp"
#include "collectors/procfs.hpp"
#include "collectors/sockdiag.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using mcb::DiagSocket;

constexpr int kPerHolder = 4500;
constexpr int kOnWatchedPort = 100;  // the "elsewhere" layout's connections on the watched port

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "sockdiag_bench: %s\n", message.c_str());
  std::exit(1);
}

[[noreturn]] void die(const std::string& what) { fail(what + ": " + std::strerror(errno)); }

void enter_private_netns() {
  if (::unshare(CLONE_NEWNET) != 0) die("unshare(CLONE_NEWNET) (run as root)");
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) die("SIOCGIFFLAGS lo");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) die("SIOCSIFFLAGS lo");
  ::close(s);
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

struct Listener {
  int fd = -1;
  std::uint16_t port = 0;
};

Listener listen_on_free_port() {
  Listener l;
  l.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback(0);
  if (::bind(l.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind");
  if (::listen(l.fd, 4096) != 0) die("listen");
  socklen_t len = sizeof a;
  ::getsockname(l.fd, reinterpret_cast<sockaddr*>(&a), &len);
  l.port = ntohs(a.sin_port);
  return l;
}

void abortive_close_on_exit(int fd) {
  const linger off{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &off, sizeof off);
}

// A child process holding `count` connections to `listener`, both ends. Returns its pid once
// every connection is established and accepted.
pid_t hold_connections(const Listener& listener, int count) {
  int ready[2];
  if (::pipe(ready) != 0) die("pipe");
  const pid_t pid = ::fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    ::close(ready[0]);
    const sockaddr_in to = loopback(listener.port);
    for (int i = 0; i < count; ++i) {
      const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (c < 0) die("socket (holder)");
      if (::connect(c, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) die("connect");
      const int s = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (s < 0) die("accept");
      abortive_close_on_exit(c);
      abortive_close_on_exit(s);
    }
    (void)!::write(ready[1], "1", 1);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char c = 0;
  if (::read(ready[0], &c, 1) != 1) fail("a holder process failed");
  ::close(ready[0]);
  return pid;
}

class Holders {
 public:
  void add(const Listener& l, int connections) {
    for (int left = connections; left > 0; left -= kPerHolder) {
      pids_.push_back(hold_connections(l, std::min(left, kPerHolder)));
    }
  }
  ~Holders() {
    for (pid_t p : pids_) ::kill(p, SIGKILL);
    for (pid_t p : pids_) ::waitpid(p, nullptr, 0);
  }

 private:
  std::vector<pid_t> pids_;
};

// /proc/net/tcp and tcp6 lines as DiagSockets: "sl local rem st tx_queue:rx_queue ...", addresses
// in hex as the kernel printed its 32-bit words.
void parse_proc_net_tcp(const std::string& text, int family, std::vector<DiagSocket>& out) {
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);  // header
  const std::size_t words = family == AF_INET ? 1 : 4;
  auto parse_endpoint = [words](std::string_view s, mcb::IpAddress& a, std::uint16_t& port) {
    for (std::size_t w = 0; w < words; ++w) {
      const auto word = static_cast<std::uint32_t>(
          std::strtoul(std::string(s.substr(w * 8, 8)).c_str(), nullptr, 16));
      std::memcpy(a.bytes.data() + w * 4, &word, 4);
    }
    port = static_cast<std::uint16_t>(
        std::strtoul(std::string(s.substr(words * 8 + 1, 4)).c_str(), nullptr, 16));
  };
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string sl, local, remote, state, queues;
    if (!(fields >> sl >> local >> remote >> state >> queues)) continue;
    DiagSocket s;
    s.local.family = s.remote.family = family;
    parse_endpoint(local, s.local, s.local_port);
    parse_endpoint(remote, s.remote, s.remote_port);
    s.state = static_cast<std::uint8_t>(std::strtoul(state.c_str(), nullptr, 16));
    s.wqueue = static_cast<std::uint32_t>(std::strtoul(queues.substr(0, 8).c_str(), nullptr, 16));
    s.rqueue = static_cast<std::uint32_t>(std::strtoul(queues.substr(9, 8).c_str(), nullptr, 16));
    out.push_back(s);
  }
}

struct Poll {
  double milliseconds = 0;
  std::size_t sockets = 0;  // what the kernel copied out, or lines parsed
  std::uint64_t established = 0;
};

using Source = std::function<std::vector<DiagSocket>()>;

Poll time_poll(const Source& source, const mcb::SockdiagOptions& options, int runs) {
  std::vector<double> times;
  Poll p;
  for (int i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    const std::vector<DiagSocket> sockets = source();
    const mcb::SockdiagSample sample = mcb::sockdiag_sample(sockets, options);
    times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    p.sockets = sockets.size();
    p.established = 0;
    for (const mcb::ListenerSample& l : sample.listeners) p.established += l.established();
  }
  std::sort(times.begin(), times.end());
  p.milliseconds = times[times.size() / 2];
  return p;
}

// Fails the benchmark on a dump error: every method must succeed for the table to mean anything.
std::vector<DiagSocket> checked(const std::function<mcb::Status(std::vector<DiagSocket>&)>& dump) {
  std::vector<DiagSocket> out;
  if (auto st = dump(out); !st) fail(st.error().message);
  return out;
}

Clock::time_point deadline() { return Clock::now() + std::chrono::seconds(10); }

Source both_families(mcb::SockDiagSocket& socket, std::vector<std::byte> filter) {
  return [&socket, filter] {
    return checked([&](std::vector<DiagSocket>& out) {
      for (const int family : {AF_INET, AF_INET6}) {
        if (auto st = socket.dump({family, mcb::kAllTcpStates, filter}, deadline(), out); !st) {
          return st;
        }
      }
      return mcb::ok_status();
    });
  };
}

std::vector<DiagSocket> proc_net_tcp() {
  std::vector<DiagSocket> out;
  for (const auto& [file, family] :
       {std::pair{"/proc/net/tcp", AF_INET}, {"/proc/net/tcp6", AF_INET6}}) {
    auto text = mcb::read_optional_file(file);
    if (!text) fail(text.error().message);
    if (text->has_value()) parse_proc_net_tcp(**text, family, out);
  }
  return out;
}

std::string machine() {
  utsname u{};
  ::uname(&u);
  std::string cpu = "unknown CPU";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  std::string load;
  std::ifstream("/proc/loadavg") >> load;
  return std::string(date) + ", Linux " + u.release + ", " + cpu + ", " +
         std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs, load average " + load;
}

std::string cell(const Poll& p) {
  char out[64];
  std::snprintf(out, sizeof out, "%.2f ms (%zu)", p.milliseconds, p.sockets);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  bool smoke = false;
  int runs = 15;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--smoke") {
      smoke = true;
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--smoke] [--runs N]\n", argv[0]);
      return 2;
    }
  }
  const std::vector<int> sizes =
      smoke ? std::vector<int>{200} : std::vector<int>{1000, 10000, 18000};
  if (smoke) runs = 2;
  std::signal(SIGPIPE, SIG_IGN);
  enter_private_netns();

  std::printf("One poll, median of %d; cells: time (sockets copied out, or lines parsed). %s.\n\n",
              runs, machine().c_str());
  std::printf(
      "| connections | on the watched port | collector run | filter, both families | no filter "
      "| /proc/net/tcp{,6} | /proc ÷ collector | LISTEN-only sample |\n"
      "|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  bool consistent = true;
  mcb::SockDiagSocket socket;
  for (const int n : sizes) {
    for (const bool sprawl : {true, false}) {
      const Listener watched = listen_on_free_port();
      const Listener other = listen_on_free_port();
      const int on_watched = sprawl ? n : kOnWatchedPort;
      {
        Holders holders;
        holders.add(watched, on_watched);
        if (!sprawl) holders.add(other, n);
        mcb::SockdiagOptions options;
        options.ports = {watched.port};
        const auto filter = *mcb::compile_port_filter(options.ports);
        const Poll run = time_poll(
            [&] {
              return checked(
                  [&](auto& out) { return mcb::dump_watched(socket, filter, deadline(), out); });
            },
            options, runs);
        const Poll filtered = time_poll(both_families(socket, filter), options, runs);
        const Poll unfiltered = time_poll(both_families(socket, {}), options, runs);
        const Poll proc = time_poll(proc_net_tcp, options, runs);
        const Poll listen_only = time_poll(
            [&] {
              return checked(
                  [&](auto& out) { return mcb::dump_listeners(socket, filter, deadline(), out); });
            },
            options, runs);
        for (const Poll* p : {&run, &filtered, &unfiltered, &proc}) {
          if (p->established != static_cast<std::uint64_t>(on_watched)) consistent = false;
        }
        std::printf("| %d | %d | %s | %s | %s | %s | %.1f× | %s |\n", sprawl ? n : n + on_watched,
                    on_watched, cell(run).c_str(), cell(filtered).c_str(), cell(unfiltered).c_str(),
                    cell(proc).c_str(), proc.milliseconds / run.milliseconds,
                    cell(listen_only).c_str());
        std::fflush(stdout);
      }
      ::close(watched.fd);
      ::close(other.fd);
    }
  }
  if (!consistent) fail("the methods disagree on the established count");
  return 0;
}
