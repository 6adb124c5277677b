// The built daemon under HTTP abuse: many idle connections and a huge header at once, while a
// normal scrape still answers and sampling goes on. The client timeouts below bound how long a
// broken build takes to fail; they are not speed assertions. Runs in its own network namespace.

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <future>

#include "tests/support/daemon.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;

namespace {

// True once the peer has closed (EOF or reset); false while it stays open.
bool closed_by_peer(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  char c = 0;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

// Sends a request whose header is `size` bytes and reads what comes back. Returns the reply's
// first line, or what ended the exchange ("reset", "closed").
std::string send_huge_header(std::uint16_t port, std::size_t size) {
  const int fd = test::connect_loopback(port);
  if (fd < 0) return "connect failed";
  timeval t{10, 0};  // bounds a server that neither reads nor closes
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
  const std::string head = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Filler: ";
  ::send(fd, head.data(), head.size(), MSG_NOSIGNAL);
  const std::string chunk(std::size_t{64} * 1024, 'a');
  for (std::size_t sent = 0; sent < size; sent += chunk.size()) {
    if (::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) <= 0) break;  // the server closed
  }
  char buf[256];
  const ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
  ::close(fd);
  if (n < 0) return "reset";
  if (n == 0) return "closed";
  const std::string reply(buf, static_cast<std::size_t>(n));
  return reply.substr(0, reply.find("\r\n"));
}

}  // namespace

TEST_CASE(
    "daemon: 200 idle connections and a 10 MB header at once, and a scrape still answers while "
    "sampling goes on",
    "[integration][http][abuse]") {
  test::enter_private_netns();
  // The namespace's own /proc, read every sample (no listener is watched that would ask for it).
  test::Daemon d("interval: 100ms\ntargets: []\ncollectors: { netstat: { interval: 0 } }\n");
  const std::string first = d.metrics();
  const double opens_before =
      test::metric_value(first, "mcbacklog_tcp_passive_opens_total").value();

  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) {
    const int fd = test::connect_loopback(d.port());
    REQUIRE(fd >= 0);
    idle.push_back(fd);
  }
  auto huge = std::async(std::launch::async, [&] { return send_huge_header(d.port(), 10 << 20); });

  // A normal scrape while both are going on. 5 s bounds a broken build; it is not a speed target.
  auto scrape = test::http_get(d.host(), d.port(), "/metrics", {}, 5s);
  REQUIRE(scrape.ok());
  CHECK(scrape->status == 200);
  std::printf("scrape during 200 idle connections and a 10 MB header: %.1f ms\n",
              scrape->seconds * 1000);
  CHECK(test::metric_value(scrape->body, R"(mcbacklog_collector_success{collector="netstat"})") ==
        1);
  CHECK(test::metric_value(scrape->body, R"(mcbacklog_collector_success{collector="sysctl"})") ==
        1);

  const std::string huge_reply = huge.get();
  INFO("reply to the huge header: " << huge_reply);
  CHECK((huge_reply == "HTTP/1.1 431 Request Header Fields Too Large" || huge_reply == "reset" ||
         huge_reply == "closed"));

  // Sampling went on: the kernel counted every connection above, and a later sample shows them.
  auto later = d.wait_for_metrics([&](const std::string& m) {
    return test::metric_value(m, "mcbacklog_tcp_passive_opens_total").value_or(0) >=
           opens_before + 202;
  });
  REQUIRE(later.has_value());
  CHECK(test::metric_value(*later, R"(mcbacklog_collector_success{collector="netstat"})") == 1);

  // One address holds at most its share of 16 sessions: its oldest idle connections were closed
  // to make room for its newer ones, the newest kept.
  CHECK(test::eventually([&] { return closed_by_peer(idle.front()); }));
  CHECK_FALSE(closed_by_peer(idle.back()));
  std::size_t still_open = 0;
  for (int fd : idle) still_open += closed_by_peer(fd) ? 0 : 1;
  CHECK(still_open <= 16);
  CHECK(still_open >= 10);
  for (int fd : idle) ::close(fd);
  CHECK(d.process().running());
}
