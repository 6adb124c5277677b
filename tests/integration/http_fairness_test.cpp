// HTTP sessions are shared fairly: one client address that holds sessions by reading its answers
// one byte a second (a tiny receive window, requests pipelined so the daemon always has more to
// write), and asks for more than the daemon has, cannot lock out a scraper from another address.
// Runs in its own network namespace, where 127.0.0.2 is a second client address on the loopback.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/daemon.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;

namespace {

// A connection from 127.0.0.2 with the smallest receive buffer the kernel allows, which has sent
// `pipelined` requests for /metrics at once; -1 on failure.
int slow_reader(std::uint16_t port, int pipelined) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int tiny = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_addr.s_addr = htonl(0x7f000002);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return -1;
  }
  std::string requests;
  for (int i = 0; i < pipelined; ++i) requests += "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  (void)::send(fd, requests.data(), requests.size(), MSG_NOSIGNAL);
  return fd;
}

// Connections of the daemon `pid` (local port `port`) to 127.0.0.2 with unsent bytes queued:
// the sessions the slow readers hold while the daemon waits to write. /proc/net/tcp is not read
// at one instant, so a connection the daemon closed during the read may show beside the one
// that replaced it: only sockets still open in the daemon afterwards count.
int held_sessions(pid_t pid, std::uint16_t port) {
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  char local_port[8];
  std::snprintf(local_port, sizeof local_port, "%04X", port);
  std::set<std::string> unsent_to_slow;
  while (std::getline(tcp, line)) {
    std::istringstream in(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    in >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >>
        inode;
    const bool ours = local.substr(local.find(':') + 1) == local_port;
    const bool from_slow = remote.rfind("0200007F:", 0) == 0;  // 127.0.0.2, little-endian
    const bool unsent = queues.substr(0, queues.find(':')) != "00000000";
    if (ours && from_slow && state == "01" && unsent) unsent_to_slow.insert(inode);
  }
  int held = 0;
  const std::string fds = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& fd : std::filesystem::directory_iterator(
           fds, std::filesystem::directory_options::skip_permission_denied)) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(fd.path(), ec).string();
    if (ec || target.rfind("socket:[", 0) != 0) continue;
    held += unsent_to_slow.count(target.substr(8, target.size() - 9)) != 0 ? 1 : 0;
  }
  return held;
}

}  // namespace

TEST_CASE(
    "http fairness: a scraper gets at least 9 of 10 scrapes through while another address holds "
    "sessions reading one byte a second",
    "[integration][http][abuse]") {
  test::enter_private_netns();
  test::Daemon d("interval: 100ms\ntargets: []\n");
  d.metrics();

  // 80 slow readers, more than the daemon has sessions, each reading a byte a second; one that
  // the daemon closes or refuses is opened again at once, so the slow address always asks for
  // more sessions than there are.
  std::atomic<bool> done{false};
  std::thread attacker([&] {
    struct Reader {
      int fd = -1;
      std::chrono::steady_clock::time_point last_read;
    };
    std::vector<Reader> readers(80);
    while (!done) {
      const auto now = std::chrono::steady_clock::now();
      for (Reader& r : readers) {
        if (r.fd < 0) {
          r.fd = slow_reader(d.port(), 200);
          r.last_read = now;
          continue;
        }
        pollfd p{r.fd, POLLRDHUP, 0};
        const bool gone = ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLERR | POLLHUP));
        char c = 0;
        if (!gone && now - r.last_read < 1s) continue;
        const ssize_t n = gone ? 0 : ::recv(r.fd, &c, 1, MSG_DONTWAIT);
        r.last_read = now;
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
          ::close(r.fd);
          r.fd = -1;
        }
      }
      std::this_thread::sleep_for(20ms);
    }
    for (const Reader& r : readers) {
      if (r.fd >= 0) ::close(r.fd);
    }
  });

  // The slow readers do hold sessions: the daemon has answers queued to them.
  const bool holding =
      test::eventually([&] { return held_sessions(d.process().pid(), d.port()) >= 8; }, 15s);
  int through = 0;
  int most_held = 0;
  for (int i = 0; i < 10; ++i) {
    auto r = test::http_get("127.0.0.1", d.port(), "/metrics", {}, 5s);
    if (r.ok() && r->status == 200 && r->body.find("mcbacklog_build_info") != std::string::npos) {
      ++through;
    }
    most_held = std::max(most_held, held_sessions(d.process().pid(), d.port()));
    std::this_thread::sleep_for(200ms);
  }
  done = true;
  attacker.join();
  CHECK(holding);
  CHECK(through >= 9);
  // The slow address never held more than its share of the 64 sessions.
  CHECK(most_held <= 16);
  CHECK(d.process().running());
}
