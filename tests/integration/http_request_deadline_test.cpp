// Every request on a connection has the request deadline, not only the first: a client that
// completes a request on a kept-alive connection and then sends the next one a byte a second is
// closed at the request deadline (10 s) counted from that request's first byte, not at the idle
// timeout (60 s), so connections held that way cannot keep a scraper from another address out for
// a minute. Runs in its own network namespace, where 127.0.0.2 to 127.0.0.5 are other client
// addresses on the loopback. The bounds below are wide: they tell the request deadline from the
// idle timeout, and are no speed assertions.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <thread>

#include "tests/support/daemon.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// A connection from 127.0.0.`host` that has sent GET /-/healthy and read the whole answer, kept
// alive; -1 on failure.
int kept_alive(std::uint8_t host, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval t{10, 0};  // bounds a daemon that does not answer
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_addr.s_addr = htonl(0x7f000000U | host);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const std::string request = "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n";
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 ||
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return -1;
  }
  std::string answer;
  std::optional<std::size_t> whole;  // header and body
  char buf[4096];
  while (!whole || answer.size() < *whole) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      ::close(fd);
      return -1;
    }
    answer.append(buf, static_cast<std::size_t>(n));
    const auto end = answer.find("\r\n\r\n");
    const auto length = answer.find("Content-Length: ");
    if (!whole && end != std::string::npos && length != std::string::npos && length < end) {
      whole = end + 4 + std::stoul(answer.substr(length + 16));
    }
  }
  if (answer.rfind("HTTP/1.1 200", 0) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// One kept-alive connection sending its second request a byte at a time.
struct Trickler {
  int fd = -1;
  std::size_t sent = 0;
  Clock::time_point began;  // its first byte
  Clock::time_point last_sent;
  std::optional<Clock::duration> closed_after;  // since `began`, when the daemon closed it
  bool answered = false;                        // the daemon sent something after the first answer
};

// Sends the next byte of `request`; false when the send failed.
bool send_next(Trickler& t, const std::string& request, Clock::time_point now) {
  const char c = request.at(t.sent);
  t.last_sent = now;
  if (::send(t.fd, &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) return false;
  ++t.sent;
  return true;
}

}  // namespace

TEST_CASE(
    "http request deadline: a kept-alive connection that sends its second request a byte a "
    "second is closed at the deadline, and a scrape from another address is served",
    "[integration][http][abuse]") {
  test::enter_private_netns();
  test::Daemon d("interval: 100ms\ntargets: []\n");
  d.metrics();

  // Four addresses, their share of 16 sessions each: every one of the daemon's 64 sessions. A
  // header that would take minutes at a byte a second.
  const std::string second = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(400, 'a');
  std::vector<Trickler> tricklers;
  for (std::uint8_t host = 2; host <= 5; ++host) {
    for (int i = 0; i < 16; ++i) {
      Trickler t;
      t.fd = kept_alive(host, d.port());
      REQUIRE(t.fd >= 0);
      t.began = Clock::now();
      REQUIRE(send_next(t, second, t.began));
      tricklers.push_back(t);
    }
  }
  const auto start = Clock::now();
  std::thread trickle([&] {
    std::size_t open = tricklers.size();
    while (open > 0 && Clock::now() - start < 50s) {
      const auto now = Clock::now();
      for (Trickler& t : tricklers) {
        if (t.closed_after) continue;
        bool gone = false;
        pollfd p{t.fd, POLLIN | POLLRDHUP, 0};
        if (::poll(&p, 1, 0) > 0) {
          char c = 0;
          const ssize_t n = ::recv(t.fd, &c, 1, MSG_DONTWAIT);
          t.answered = t.answered || n > 0;
          gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
        }
        if (!gone && now - t.last_sent >= 1s) gone = !send_next(t, second, now);
        if (gone) {
          t.closed_after = now - t.began;
          --open;
        }
      }
      std::this_thread::sleep_for(100ms);
    }
  });

  // The daemon has read each connection's first byte (it reads them as they come; a second is
  // ample), so none of the 64 is idle and none can be evicted: the scrape waits in the kernel's
  // accept queue until a session ends. Before the deadline applied to later requests, that was
  // the idle timeout, a minute; 30 s bounds a broken build.
  std::this_thread::sleep_for(1s);
  auto scrape = test::http_get("127.0.0.1", d.port(), "/metrics", {}, 30s);
  trickle.join();

  REQUIRE(scrape.ok());
  CHECK(scrape->status == 200);
  CHECK(scrape->body.find("mcbacklog_build_info") != std::string::npos);
  std::printf("scrape while 64 kept-alive connections trickle a second request: %.1f s\n",
              scrape->seconds);

  // Closed by the request deadline, 10 s from the first byte: not before it (no error, no
  // eviction), and well before the idle timeout of 60 s. Unanswered.
  std::optional<Clock::duration> first;
  std::optional<Clock::duration> last;
  for (const Trickler& t : tricklers) {
    INFO("connection closed after "
         << (t.closed_after ? std::chrono::duration<double>(*t.closed_after).count() : -1.0)
         << " s (-1: still open after 50 s), " << t.sent << " bytes sent");
    REQUIRE(t.closed_after.has_value());
    CHECK(*t.closed_after >= 8s);
    CHECK(*t.closed_after <= 40s);
    CHECK_FALSE(t.answered);
    first = first ? std::min(*first, *t.closed_after) : *t.closed_after;
    last = last ? std::max(*last, *t.closed_after) : *t.closed_after;
    ::close(t.fd);
  }
  std::printf("trickled connections closed after %.1f to %.1f s\n",
              std::chrono::duration<double>(*first).count(),
              std::chrono::duration<double>(*last).count());
  CHECK(d.process().running());
}
