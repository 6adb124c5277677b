// The sockdiag collector against the real kernel: sockets made by the test in its own network
// namespace, compared with what ss reports, through the collector in process and through the
// built daemon's /metrics; and a real memcached that stops accepting.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>
#include <regex>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "collectors/netlink.hpp"
#include "collectors/netstat.hpp"
#include "collectors/sockdiag.hpp"
#include "common/clock.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/memcached.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

// A socket closed when the handle goes.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {
    if (fd_ < 0) {
      throw std::runtime_error(std::string("socket call failed: ") + std::strerror(errno));
    }
  }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  Fd(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family() const { return storage.ss_family; }
};

Address address(const std::string& ip, std::uint16_t port) {
  Address a;
  if (ip.find(':') == std::string::npos) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    REQUIRE(inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1);
    a.length = sizeof *v4;
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    REQUIRE(inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1);
    a.length = sizeof *v6;
  }
  return a;
}

std::uint16_t port_of(const Fd& fd) {
  sockaddr_storage s{};
  socklen_t len = sizeof s;
  REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&s), &len) == 0);
  return ntohs(s.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&s)->sin_port
                                      : reinterpret_cast<sockaddr_in6*>(&s)->sin6_port);
}

// A listener on ip, port 0 (a free one) unless given; "::" accepts IPv4 too.
Fd listen_on(const std::string& ip, int backlog, std::uint16_t port = 0) {
  const Address a = address(ip, port);
  Fd fd(::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int on = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a.storage), a.length) == 0);
  REQUIRE(::listen(fd.get(), backlog) == 0);
  return fd;
}

// Connects to ip:port, from `source` when given. `wait`: until the handshake completes (the
// kernel completes it whether or not the server accepts, while its accept queue has room);
// otherwise the connect is left in progress.
Fd connect_to(const std::string& ip, std::uint16_t port, const std::string& source = "",
              bool wait = true) {
  const Address to = address(ip, port);
  Fd fd(::socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!source.empty()) {
    const Address from = address(source, 0);
    REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&from.storage), from.length) == 0);
  }
  const int r = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to.storage), to.length);
  REQUIRE((r == 0 || errno == EINPROGRESS));
  if (wait) {
    pollfd p{fd.get(), POLLOUT, 0};
    REQUIRE(::poll(&p, 1, 5000) == 1);
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    REQUIRE(err == 0);
  }
  return fd;
}

Fd accept_from(const Fd& listener) {
  pollfd p{listener.get(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 5000) == 1);
  return Fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
}

// One run of `c`, which must succeed.
void run_ok(Collector& c) {
  Status status = fail("not run");
  c.collect([&](Status s) { status = std::move(s); });
  REQUIRE(status.ok());
}

// `n` connections made with connect_to, added to `held`.
void connect_n(std::vector<Fd>& held, int n, const std::string& ip, std::uint16_t port,
               const std::string& source = "", bool wait = true) {
  held.reserve(held.size() + static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) held.push_back(connect_to(ip, port, source, wait));
}

// `n` connections accepted from `listener`, added to `held`.
void accept_n(std::vector<Fd>& held, int n, const Fd& listener) {
  held.reserve(held.size() + static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) held.push_back(accept_from(listener));
}

// Recv-Q and Send-Q of the listener on `port` as `ss -ltn` shows them.
std::pair<double, double> ss_listen_queue(std::uint16_t port) {
  const auto r = test::run_command("ss -ltnH 'sport = :" + std::to_string(port) + "'");
  REQUIRE(r.exit_code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(r.output, m, std::regex(R"(LISTEN\s+(\d+)\s+(\d+))")));
  return {std::stod(m[1]), std::stod(m[2])};
}

std::string config_for(std::uint16_t port, const std::string& sockdiag_extra = "") {
  // The connections walked every sample: these tests are about what one walk counts.
  return "interval: 100ms\ntargets: []\ncollectors:\n  netdev: { enabled: false }\n"
         "  sockdiag: { connections_interval: 0, ports: [" +
         std::to_string(port) + "]" + sockdiag_extra + " }\n";
}

std::string listener_series(const std::string& name, const std::string& ip, std::uint16_t port) {
  return name + "{address=\"" + ip + "\",port=\"" + std::to_string(port) + "\"}";
}

// A series of the connections that came to the listener at `ip` and `port`.
std::string connection_series(const std::string& name, const std::string& ip, std::uint16_t port,
                              const std::string& extra_label = "") {
  return name + "{address=\"" + ip + "\",port=\"" + std::to_string(port) + "\"" +
         (extra_label.empty() ? "" : "," + extra_label) + "}";
}

std::vector<DiagSocket> dump(SockDiagSocket& s, int family, std::uint32_t states,
                             std::vector<std::byte> filter) {
  std::vector<DiagSocket> out;
  const auto st =
      s.dump({family, states, std::move(filter)}, SockDiagSocket::Clock::now() + 5s, out);
  INFO((st.ok() ? std::string() : st.error().message));
  REQUIRE(st.ok());
  return out;
}

Status run(Collector& c) {
  std::optional<Status> result;
  c.collect([&](Status s) { result = std::move(s); });
  REQUIRE(result.has_value());
  return *result;
}

}  // namespace

TEST_CASE("sockdiag: the kernel filter returns the watched ports' server sockets only",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  Fd watched = listen_on("127.0.0.1", 16);
  Fd other = listen_on("127.0.0.1", 16);
  Fd watched6 = listen_on("::1", 16);
  std::vector<Fd> held;
  connect_n(held, 3, "127.0.0.1", port_of(watched));
  accept_n(held, 3, watched);
  connect_n(held, 3, "127.0.0.1", port_of(other));
  connect_n(held, 1, "::1", port_of(watched6));
  const std::vector<std::uint16_t> ports{port_of(watched), port_of(watched6), 9};
  const auto filter = *compile_port_filter(ports);

  SockDiagSocket s;
  const auto v4 = dump(s, AF_INET, kAllTcpStates, filter);
  REQUIRE(v4.size() == 4);  // the listener and its three accepted connections
  for (const DiagSocket& d : v4) {
    CHECK(d.local_port == port_of(watched));
    CHECK(d.state == (d.remote_port == 0 ? TCP_LISTEN : TCP_ESTABLISHED));
  }
  const auto v6 = dump(s, AF_INET6, kAllTcpStates, filter);
  REQUIRE(v6.size() == 2);  // the listener and one connection waiting in its queue
  CHECK(to_string(v6[0].local) == "::1");

  const auto listeners = dump(s, AF_INET, tcp_state_bit(TCP_LISTEN), filter);
  REQUIRE(listeners.size() == 1);
  CHECK(listeners[0].state == TCP_LISTEN);
  CHECK(listeners[0].wqueue == 16);

  // Without the filter the kernel sends everything, client sides and the other port included.
  const auto all = dump(s, AF_INET, kAllTcpStates, {});
  CHECK(all.size() == 2 + 3 * 4);
}

TEST_CASE("sockdiag: a dump past its deadline fails, and the next one starts clean",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  Fd l = listen_on("127.0.0.1", 4096);
  std::vector<Fd> held;
  connect_n(held, 1000, "127.0.0.1", port_of(l), "", false);
  SockDiagSocket s;
  std::vector<DiagSocket> out;
  const auto late = s.dump({AF_INET, kAllTcpStates, {}}, SockDiagSocket::Clock::now(), out);
  REQUIRE_FALSE(late.ok());
  CHECK_THAT(late.error().message, Contains("dump not finished within its deadline"));
  // The socket was closed with the rest of that dump in it: this dump is whole and only its own
  // (the listener, and each connection's two ends, handshake complete or not).
  CHECK(dump(s, AF_INET, kAllTcpStates, {}).size() == 1 + 2 * 1000);
}

TEST_CASE("sockdiag: length and max of a listener that never accepts equal ss -ltn Recv-Q/Send-Q",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  Fd l = listen_on("127.0.0.1", 5);
  const std::uint16_t port = port_of(l);
  std::vector<Fd> clients;
  connect_n(clients, 30, "127.0.0.1", port, "", false);
  // The queue fills to its limit and stays there: nothing accepts.
  REQUIRE(test::eventually([&] { return ss_listen_queue(port).first > 5; }));
  const auto queue = ss_listen_queue(port);
  const double recv_q = queue.first;
  const double send_q = queue.second;
  CHECK(send_q == 5);

  test::Daemon d(config_for(port));
  const auto m = d.wait_for_metrics([&](const std::string& text) {
    return test::metric_value(
               text, listener_series("mcbacklog_accept_queue_length", "127.0.0.1", port)) == recv_q;
  });
  REQUIRE(m.has_value());
  CHECK(test::metric_value(*m, listener_series("mcbacklog_accept_queue_max", "127.0.0.1", port)) ==
        send_q);
  CHECK(test::metric_value(*m, listener_series("mcbacklog_accept_queue_peak", "127.0.0.1", port)) >=
        recv_q);
  CHECK(test::metric_value(*m, R"(mcbacklog_collector_success{collector="sockdiag"})") == 1);
  CHECK(ss_listen_queue(port) == queue);
}

TEST_CASE("sockdiag: a listener's drop counter counts its own overflows, as ss -ltnm shows",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  Fd full = listen_on("127.0.0.1", 2);
  Fd other = listen_on("127.0.0.1", 64);
  std::vector<Fd> clients;
  connect_n(clients, 20, "127.0.0.1", port_of(full), "", false);
  connect_n(clients, 5, "127.0.0.1", port_of(other));
  const std::vector<std::uint16_t> ports{port_of(full), port_of(other)};
  auto ss_drops = [](std::uint16_t port) {
    const auto r = test::run_command("ss -ltnmH 'sport = :" + std::to_string(port) + "'");
    std::smatch m;
    REQUIRE(std::regex_search(r.output, m, std::regex(R"(,d(\d+)\))")));
    return std::stoull(m[1]);
  };
  // The handshakes past the queue of 2 are dropped, and again as the clients retry.
  REQUIRE(test::eventually([&] { return ss_drops(port_of(full)) >= 10; }));

  SockDiagSocket s;
  std::vector<DiagSocket> dumped;
  REQUIRE(dump_listeners(s, *compile_port_filter(ports), SockDiagSocket::Clock::now() + 5s, dumped)
              .ok());
  SockdiagOptions options;
  options.ports = ports;
  std::sort(options.ports.begin(), options.ports.end());
  const SockdiagSample sample = sockdiag_sample(dumped, options);
  REQUIRE(sample.listeners.size() == 2);
  for (const ListenerSample& l : sample.listeners) {
    INFO(l.port);
    REQUIRE(l.drops.has_value());
    if (l.port == port_of(full)) {
      // Read after the dump: retries only add to it.
      CHECK(*l.drops >= 10);
      CHECK(*l.drops <= ss_drops(l.port));
    } else {
      CHECK(*l.drops == 0);
    }
  }
}

TEST_CASE("sockdiag: at rest only runs sample, sampling closely catches a 0.4 s burst no run sees",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  Fd l = listen_on("127.0.0.1", 128);
  const std::uint16_t port = port_of(l);
  boost::asio::io_context io;
  SockdiagConfig config;
  config.sample_interval = 100ms;
  config.peak_window = 15s;
  auto c = std::make_shared<SockdiagCollector>(io, config, std::vector<std::uint16_t>{port}, 1s);
  REQUIRE(run(*c).ok());
  REQUIRE(c->last()->listeners.size() == 1);
  CHECK(c->last()->listeners[0].queue_peak == 0);
  CHECK_FALSE(c->sampling_closely());  // every queue empty: no sampler between runs

  const auto burst = [&] {
    std::vector<Fd> clients;
    connect_n(clients, 20, "127.0.0.1", port);
    io.restart();       // it ran out of work at rest
    io.run_for(400ms);  // no run happens
    accept_n(clients, 20, l);
    REQUIRE(run(*c).ok());
    return c->last()->listeners.at(0);
  };
  const ListenerSample unseen = burst();
  CHECK(unseen.queue_length == 0);
  CHECK(unseen.queue_peak == 0);

  c->sample_closely();  // as the daemon does while connections move
  CHECK(c->sampling_closely());
  const ListenerSample seen = burst();
  CHECK(seen.queue_length == 0);
  CHECK(seen.queue_max == 128);
  CHECK(seen.queue_peak == 20);
  c->stop();
  CHECK_FALSE(c->sampling_closely());
}

TEST_CASE(
    "sockdiag: a run that sees a waiting connection starts the sampler, a peak window of "
    "empty queues stops it",
    "[integration][sockdiag]") {
  test::enter_private_netns();
  Fd l = listen_on("127.0.0.1", 128);
  const std::uint16_t port = port_of(l);
  boost::asio::io_context io;
  SockdiagConfig config;
  config.sample_interval = 50ms;
  config.peak_window = 500ms;
  auto c = std::make_shared<SockdiagCollector>(io, config, std::vector<std::uint16_t>{port}, 1s);
  REQUIRE(run(*c).ok());
  CHECK_FALSE(c->sampling_closely());

  std::vector<Fd> clients;
  connect_n(clients, 3, "127.0.0.1", port);
  REQUIRE(run(*c).ok());
  CHECK(c->last()->listeners.at(0).queue_length == 3);
  CHECK(c->sampling_closely());
  // Still waiting: the sampler keeps going past the window.
  io.run_for(1s);
  CHECK(c->sampling_closely());

  accept_n(clients, 3, l);
  // The sampler's own samples see the queue empty and it stops a window later, with no run.
  const auto deadline = std::chrono::steady_clock::now() + 30s;  // generous: a loaded machine
  while (c->sampling_closely() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(100ms);
  }
  CHECK_FALSE(c->sampling_closely());
  c->stop();
}

TEST_CASE("sockdiag: sample_at_rest keeps the sampler running with every queue empty",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  Fd l = listen_on("127.0.0.1", 128);
  const std::uint16_t port = port_of(l);
  boost::asio::io_context io;
  SockdiagConfig config;
  config.sample_interval = 50ms;
  config.peak_window = 1s;
  config.sample_at_rest = true;
  auto c = std::make_shared<SockdiagCollector>(io, config, std::vector<std::uint16_t>{port}, 1s);
  REQUIRE(run(*c).ok());
  io.run_for(1500ms);
  CHECK(c->sampling_closely());
  CHECK(c->listener_lookups() + c->listener_dumps() >= 5);  // the sampler's own reads
  c->stop();
}

TEST_CASE("sockdiag: a 0.4 s burst drained before the scrape still shows in the peak",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  Fd l = listen_on("127.0.0.1", 128);
  const std::uint16_t port = port_of(l);
  // Runs every 2 s: the burst starts right after the first and is over long before the second.
  test::Daemon d(
      "interval: 2s\ntargets: []\ncollectors:\n  netdev: { enabled: false }\n"
      "  sockdiag: { ports: [" +
      std::to_string(port) + "], sample_interval: 50ms, sample_at_rest: true }\n");
  const std::string first = d.metrics();
  const std::string length = listener_series("mcbacklog_accept_queue_length", "127.0.0.1", port);
  const std::string peak = listener_series("mcbacklog_accept_queue_peak", "127.0.0.1", port);
  REQUIRE(test::metric_value(first, peak) == 0);

  {
    std::vector<Fd> held;
    connect_n(held, 20, "127.0.0.1", port);
    ::usleep(400'000);
    accept_n(held, 20, l);
  }
  const auto m = d.wait_for_metrics(
      [&](const std::string& text) { return test::metric_value(text, peak) != 0; });
  REQUIRE(m.has_value());
  CHECK(test::metric_value(*m, length) == 0);
  CHECK(test::metric_value(*m, peak) == 20);
}

TEST_CASE("sockdiag: clients bound to 127.0.0.2 and 127.0.0.3 are counted per address",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  Fd l = listen_on("127.0.0.1", 64);
  Fd l6 = listen_on("::", 64);  // dual stack: IPv4 clients arrive IPv4-mapped
  const std::uint16_t port = port_of(l);
  const std::uint16_t port6 = port_of(l6);
  std::vector<Fd> held;
  connect_n(held, 3, "127.0.0.1", port, "127.0.0.2");
  connect_n(held, 5, "127.0.0.1", port, "127.0.0.3");
  accept_n(held, 4, l);  // accepted or still queued: both count
  connect_n(held, 2, "127.0.0.1", port6, "127.0.0.2");
  connect_n(held, 1, "::1", port6, "::1");

  test::Daemon d(
      "interval: 100ms\ntargets: []\ncollectors:\n  netdev: { enabled: false }\n"
      "  sockdiag: { connections_interval: 0, ports: [" +
      std::to_string(port) + ", " + std::to_string(port6) + "], top_clients: 1 }\n");
  const std::string clients = connection_series("mcbacklog_clients", "127.0.0.1", port);
  const auto m = d.wait_for_metrics(
      [&](const std::string& text) { return test::metric_value(text, clients) == 2; });
  REQUIRE(m.has_value());
  const std::string per_client = "mcbacklog_client_connections";
  CHECK(test::metric_value(
            *m, connection_series(per_client, "127.0.0.1", port, R"(client="127.0.0.3")")) == 5);
  CHECK(test::metric_value(
            *m, connection_series(per_client, "127.0.0.1", port, R"(client="other")")) == 3);
  CHECK_FALSE(test::metric_value(
                  *m, connection_series(per_client, "127.0.0.1", port, R"(client="127.0.0.2")"))
                  .has_value());
  CHECK(test::metric_value(*m, connection_series("mcbacklog_connections", "127.0.0.1", port,
                                                 R"(state="established")")) == 8);

  CHECK(test::metric_value(*m, connection_series("mcbacklog_clients", "::", port6)) == 2);
  CHECK(test::metric_value(
            *m, connection_series(per_client, "::", port6, R"(client="127.0.0.2")")) == 2);
  CHECK(test::metric_value(*m, connection_series(per_client, "::", port6, R"(client="other")")) ==
        1);
  CHECK(test::metric_value(*m, listener_series("mcbacklog_accept_queue_length", "::", port6)) == 3);
}

TEST_CASE("sockdiag: a client that does not read a large reply shows in send_queue_blocked",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  Fd l = listen_on("127.0.0.1", 16);
  const std::uint16_t port = port_of(l);
  Fd reader = connect_to("127.0.0.1", port);
  Fd reader_server = accept_from(l);
  Fd slow = connect_to("127.0.0.1", port);
  Fd slow_server = accept_from(l);
  // The server writes a reply far larger than the client's receive buffer; the client reads
  // none of it, so the rest stays in the server's send queue.
  const std::string reply(1 << 20, 'x');
  std::size_t sent = 0;
  for (;;) {
    const ssize_t n = ::send(slow_server.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  REQUIRE(errno == EAGAIN);
  REQUIRE(sent > 65536);
  REQUIRE(::send(reader_server.get(), "VALUE\r\n", 7, MSG_NOSIGNAL) == 7);

  test::Daemon d(config_for(port, ", send_queue_threshold_bytes: 65536"));
  const std::string blocked =
      connection_series("mcbacklog_connections_send_queue_blocked", "127.0.0.1", port);
  auto m = d.wait_for_metrics(
      [&](const std::string& text) { return test::metric_value(text, blocked) == 1; });
  REQUIRE(m.has_value());
  CHECK(test::metric_value(*m, connection_series("mcbacklog_connections", "127.0.0.1", port,
                                                 R"(state="established")")) == 2);

  // Once the client reads its reply, the queue drains and nothing is blocked.
  std::vector<char> buf(1 << 16);
  std::size_t read_total = 0;
  REQUIRE(test::eventually([&] {
    for (;;) {
      const ssize_t n = ::recv(slow.get(), buf.data(), buf.size(), 0);
      if (n <= 0) break;
      read_total += static_cast<std::size_t>(n);
    }
    return read_total == sent;
  }));
  m = d.wait_for_metrics(
      [&](const std::string& text) { return test::metric_value(text, blocked) == 0; });
  CHECK(m.has_value());
}

TEST_CASE("sockdiag: memcached with -o no_maxconns_fast driven past -c shows accept_queue_max 0",
          "[integration][sockdiag][memcached]") {
  test::enter_private_netns();
  // -c 64 with memcached's reserved descriptors leaves room for about 40 clients.
  test::Memcached mc({"-c", "64", "-o", "no_maxconns_fast"});
  const std::uint16_t port = mc.port();
  test::Daemon d(config_for(port));
  const std::string max = listener_series("mcbacklog_accept_queue_max", "127.0.0.1", port);
  const auto open = d.wait_for_metrics(
      [&](const std::string& text) { return test::metric_value(text, max).value_or(0) > 0; });
  REQUIRE(open.has_value());
  const double backlog = test::metric_value(*open, max).value();
  CHECK(backlog == ss_listen_queue(port).second);

  std::vector<Fd> clients;
  connect_n(clients, 100, "127.0.0.1", port, "", false);
  const auto full = d.wait_for_metrics(
      [&](const std::string& text) { return test::metric_value(text, max) == 0; });
  INFO(mc.process().output());
  REQUIRE(full.has_value());
  CHECK(ss_listen_queue(port).second == 0);
  CHECK(test::metric_value(*full, connection_series("mcbacklog_connections", "127.0.0.1", port,
                                                    R"(state="established")")) > 0);

  // When the clients leave, memcached listens again with its full backlog.
  clients.clear();
  const auto reopened = d.wait_for_metrics(
      [&](const std::string& text) { return test::metric_value(text, max) == backlog; });
  CHECK(reopened.has_value());
  CHECK(std::stoi(mc.stats().at("listen_disabled_num")) >= 1);  // memcached's own account
}

TEST_CASE("sockdiag: connections are walked every connections_interval, or at once when asked",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  ManualTime time;
  Fd l = listen_on("127.0.0.1", 16);
  const std::uint16_t port = port_of(l);
  boost::asio::io_context io;
  SockdiagConfig config;
  config.connections_interval = 15s;
  auto c = std::make_shared<SockdiagCollector>(io, config, std::vector<std::uint16_t>{port}, 1s);
  auto established = [&] {
    run_ok(*c);
    REQUIRE(c->last().has_value());
    REQUIRE(c->last()->listeners.size() == 1);
    return c->last()->listeners[0].established();
  };
  CHECK(established() == 0);  // the first run walks
  CHECK(c->walks() == 1);
  std::vector<Fd> held;
  connect_n(held, 3, "127.0.0.1", port);
  time.advance(5s);
  CHECK(established() == 0);  // the last walk's figures: the interval has not passed
  CHECK(c->walks() == 1);
  CHECK(c->last()->listeners[0].queue_length == 3);  // the queue is this run's
  // Between walks the known listener is looked up, not dumped.
  CHECK(c->listener_dumps() == 1);
  CHECK(c->listener_lookups() == 1);
  time.advance(10s);
  CHECK(established() == 3);  // 15 s since the walk
  CHECK(c->walks() == 2);
  connect_n(held, 2, "127.0.0.1", port);
  c->walk_next();
  CHECK(established() == 5);  // asked for: at once
  CHECK(c->walks() == 3);
  CHECK(established() == 5);
  CHECK(c->walks() == 3);
  c->stop();
}

TEST_CASE("netstat: read every interval while the listeners rest, every run once one overflows",
          "[integration][sockdiag][netstat]") {
  test::enter_private_netns();
  ManualTime time;
  Fd l = listen_on("127.0.0.1", 2);
  const std::uint16_t port = port_of(l);
  boost::asio::io_context io;
  auto sockdiag = std::make_shared<SockdiagCollector>(io, SockdiagConfig{},
                                                      std::vector<std::uint16_t>{port}, 1s);
  auto netstat = std::make_shared<NetstatCollector>("/proc");
  netstat->pace(15s, [&] { return sockdiag->listeners_at_rest(); });
  // One cycle: sockdiag first, as the scheduler runs them.
  auto cycle = [&] {
    run_ok(*sockdiag);
    run_ok(*netstat);
  };
  cycle();  // the first run reads
  CHECK(netstat->reads() == 1);
  CHECK_FALSE(sockdiag->listeners_at_rest());  // no drop counter to compare with yet
  for (int second = 1; second < 15; ++second) {
    time.advance(1s);
    cycle();
    CHECK(sockdiag->listeners_at_rest());
  }
  CHECK(netstat->reads() == 1);  // at rest: the last read stands
  time.advance(1s);
  cycle();
  CHECK(netstat->reads() == 2);  // 15 s since it

  // Past the queue of 2 the kernel drops handshakes: the listener's own counter and the host's
  // TcpExt ListenOverflows both count them.
  std::vector<Fd> clients;
  connect_n(clients, 20, "127.0.0.1", port, "", false);
  REQUIRE(test::eventually([] {
    NetstatSample now;
    return parse_netstat(test::read_text_file("/proc/net/netstat"), now).ok() &&
           now.listen_overflows.value_or(0) > 0;
  }));
  time.advance(1s);
  cycle();  // the same cycle reads the host's counters
  CHECK_FALSE(sockdiag->listeners_at_rest());
  CHECK(netstat->reads() == 3);
  REQUIRE(netstat->last().has_value());
  CHECK(netstat->last()->listen_overflows.value_or(0) > 0);
  for (int second = 0; second < 3; ++second) {  // the queue is full: every run reads
    time.advance(1s);
    cycle();
    CHECK(netstat->reads() == static_cast<std::uint64_t>(4 + second));
  }
  sockdiag->stop();
}

TEST_CASE("netstat: read in the run after a watched listener closes, then at rest again",
          "[integration][sockdiag][netstat]") {
  // memcached stalled, overflowed and was killed between two runs: no run saw its listener's last
  // drops, so the host's counters are read at once rather than at the end of the interval.
  test::enter_private_netns();
  ManualTime time;
  Fd first = listen_on("127.0.0.1", 2);
  std::optional<Fd> second;
  second.emplace(listen_on("127.0.0.1", 2));
  boost::asio::io_context io;
  auto sockdiag = std::make_shared<SockdiagCollector>(
      io, SockdiagConfig{}, std::vector<std::uint16_t>{port_of(first), port_of(*second)}, 1s);
  auto netstat = std::make_shared<NetstatCollector>("/proc");
  netstat->pace(15s, [&] { return sockdiag->listeners_at_rest(); });
  auto cycle = [&] {
    time.advance(1s);
    run_ok(*sockdiag);
    run_ok(*netstat);
  };
  cycle();
  cycle();
  REQUIRE(sockdiag->listeners_at_rest());
  const std::uint64_t reads = netstat->reads();
  second.reset();  // closed
  cycle();
  CHECK_FALSE(sockdiag->listeners_at_rest());
  CHECK(netstat->reads() == reads + 1);
  cycle();  // the one left rests: the last read stands
  CHECK(sockdiag->listeners_at_rest());
  CHECK(netstat->reads() == reads + 1);
  sockdiag->stop();
}

TEST_CASE("netstat: without pace, or at interval 0, every run reads", "[integration][netstat]") {
  test::enter_private_netns();
  ManualTime time;
  NetstatCollector unpaced("/proc");
  NetstatCollector zero("/proc");
  zero.pace(0s, [] { return true; });
  for (int run = 1; run <= 3; ++run) {
    time.advance(1s);
    for (NetstatCollector* c : {&unpaced, &zero}) {
      c->collect([](const Status& st) { REQUIRE(st.ok()); });
      CHECK(c->reads() == static_cast<std::uint64_t>(run));
    }
  }
}

TEST_CASE("sockdiag: a listener that opens after the first run is seen at the next run",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  ManualTime time;
  // A port nothing listens on yet: bind one, note it, close it.
  const std::uint16_t port = port_of(listen_on("127.0.0.1", 1));
  boost::asio::io_context io;
  SockdiagConfig config;
  config.connections_interval = 15s;
  auto c = std::make_shared<SockdiagCollector>(io, config, std::vector<std::uint16_t>{port}, 1s);
  auto run = [&] {
    run_ok(*c);
    REQUIRE(c->last().has_value());
    return c->last()->listeners.size();
  };
  CHECK(run() == 0);  // the first run walks and finds nothing
  Fd l = listen_on("127.0.0.1", 16, port);
  time.advance(1s);
  CHECK(run() == 1);  // not at the next walk, 15 s later
  CHECK(c->walks() == 1);
  CHECK(c->last()->listeners[0].queue_max == 16);
  c->stop();
}

TEST_CASE("sockdiag: memcached's other ports are watched for their owner, a change said once",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  Fd first = listen_on("127.0.0.1", 16);
  Fd second = listen_on("127.0.0.1", 8);
  const std::uint16_t port = port_of(first);
  const std::uint16_t other = port_of(second);
  boost::asio::io_context io;
  auto c = std::make_shared<SockdiagCollector>(io, SockdiagConfig{},
                                               std::vector<std::uint16_t>{port}, 1s);
  run_ok(*c);
  REQUIRE(c->last()->listeners.size() == 1);
  const std::uint32_t me = ::getuid();
  // A new port is a change; the same set again is not.
  CHECK(c->watch_more_ports({{other, me}}));
  CHECK_FALSE(c->watch_more_ports({{other, me}}));
  run_ok(*c);
  REQUIRE(c->last()->listeners.size() == 2);
  for (const ListenerSample& l : c->last()->listeners) {
    CHECK(l.queue_max == (l.port == other ? 8u : 16u));
  }
  // memcached restarted as another user on the same ports: the port is another user's now, so
  // this listener (ours) does not count; no change of ports to tell.
  CHECK_FALSE(c->watch_more_ports({{other, me + 1}}));
  run_ok(*c);
  CHECK(c->last()->listeners.size() == 1);
  CHECK_FALSE(c->watch_more_ports({{other, me}}));
  run_ok(*c);
  CHECK(c->last()->listeners.size() == 2);
  // Its other port gone: back to the configured one.
  CHECK(c->watch_more_ports({}));
  run_ok(*c);
  CHECK(c->last()->listeners.size() == 1);
  c->stop();
}

TEST_CASE("sockdiag: a SO_REUSEPORT group is dumped and summed, never looked up as one socket",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  auto reuseport_listener = [](std::uint16_t port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int on = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd.get(), 10) == 0);
    return fd;
  };
  Fd first = reuseport_listener(0);
  const std::uint16_t port = port_of(first);
  Fd second = reuseport_listener(port);
  ManualTime time;
  boost::asio::io_context io;
  SockdiagConfig config;
  auto c = std::make_shared<SockdiagCollector>(io, config, std::vector<std::uint16_t>{port}, 1s);
  for (int run = 0; run < 3; ++run) {
    run_ok(*c);
    time.advance(1s);
  }
  CHECK(c->listener_lookups() == 0);
  CHECK(c->listener_dumps() == 3);
  REQUIRE(c->last()->listeners.size() == 1);
  CHECK(c->last()->listeners[0].queue_max == 20);  // both sockets' backlogs, summed
  c->stop();
}

TEST_CASE("sockdiag: a connection-related condition makes the daemon walk every sample",
          "[integration][sockdiag]") {
  // Walked once an hour while all is well; churn past 10 new connections a second and the walk
  // follows every sample until it ends.
  test::enter_private_netns();
  test::Memcached mc;
  test::Daemon d("interval: 200ms\ntargets:\n  - { name: mc, address: \"" + mc.address() +
                 "\", probe_interval: 0 }\ncollectors:\n  netdev: { enabled: false }\n"
                 "  sockdiag: { connections_interval: 1h }\n");
  const std::string age = "mcbacklog_connections_sample_age_seconds";
  REQUIRE(d.wait_for_metrics([&](const std::string& m) {
    return test::metric_value(m, age).value_or(0) >= 2;  // quiet: no walk since the first
  }));
  std::atomic<bool> churning{true};
  std::thread churn([&] {
    while (churning) {
      try {
        test::RawConnection(mc.address()).request("version\r\n");
      } catch (const std::exception&) {
      }
    }
  });
  const auto walked = d.wait_for_metrics(
      [&](const std::string& m) { return test::metric_value(m, age).value_or(99) < 1; });
  churning = false;
  churn.join();
  INFO(d.output());
  CHECK(walked.has_value());
}

TEST_CASE("sockdiag: the lookup of one listener and the dump agree, without walking a table",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  Fd one = listen_on("127.0.0.1", 16);
  Fd any = listen_on("0.0.0.0", 32);
  Fd six = listen_on("::1", 8);
  std::vector<Fd> held;
  connect_n(held, 3, "127.0.0.1", port_of(one));
  connect_n(held, 2, "127.0.0.1", port_of(any));
  connect_n(held, 1, "::1", port_of(six));
  SockDiagSocket s;
  const auto deadline = SockDiagSocket::Clock::now() + 5s;
  struct Case {
    int family;
    const char* address;
    std::uint16_t port;
  };
  for (const Case& c :
       {Case{AF_INET, "127.0.0.1", port_of(one)}, Case{AF_INET, "0.0.0.0", port_of(any)},
        Case{AF_INET6, "::1", port_of(six)}}) {
    INFO(c.address << ":" << c.port);
    const auto address = parse_ip(c.address);
    REQUIRE(address.has_value());
    DiagRequest request{c.family, 0, {}, true, std::make_pair(*address, c.port)};
    auto found = s.lookup(request, deadline);
    REQUIRE(found.ok());
    REQUIRE(found->has_value());
    const DiagSocket& l = **found;
    CHECK(l.state == TCP_LISTEN);
    CHECK(l.local_port == c.port);
    CHECK(to_string(l.local) == c.address);
    std::vector<DiagSocket> dumped;
    REQUIRE(s.dump({c.family, tcp_state_bit(TCP_LISTEN), {}, true}, deadline, dumped).ok());
    const auto it = std::find_if(dumped.begin(), dumped.end(), [&](const DiagSocket& d) {
      return d.local_port == c.port && d.local == l.local;
    });
    REQUIRE(it != dumped.end());
    CHECK(l.rqueue == it->rqueue);
    CHECK(l.wqueue == it->wqueue);
    CHECK(l.drops == it->drops);
  }
  // Nothing bound there: no socket, not an error; and the socket serves a dump afterwards.
  auto none =
      s.lookup({AF_INET, 0, {}, false, std::make_pair(*parse_ip("127.0.0.1"), 1)}, deadline);
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  std::vector<DiagSocket> after;
  CHECK(s.dump({AF_INET, tcp_state_bit(TCP_LISTEN), {}, false}, deadline, after).ok());
  CHECK(after.size() == 2);
}

TEST_CASE("sockdiag: one dump of both families finds what a dump of each finds, in one walk",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  Fd four = listen_on("127.0.0.1", 16);
  Fd six = listen_on("::1", 16);
  Fd other = listen_on("127.0.0.1", 16);  // not in the filter
  std::vector<Fd> held;
  connect_n(held, 3, "127.0.0.1", port_of(four));
  connect_n(held, 2, "::1", port_of(six));
  connect_n(held, 4, "127.0.0.1", port_of(other));
  std::vector<std::uint16_t> ports{port_of(four), port_of(six)};
  std::sort(ports.begin(), ports.end());
  const auto filter = *compile_port_filter(ports);
  const auto deadline = SockDiagSocket::Clock::now() + 5s;
  // What identifies a socket, and what the walk reads of it.
  const auto seen = [](const std::vector<DiagSocket>& sockets) {
    std::vector<std::string> out;
    out.reserve(sockets.size());
    for (const DiagSocket& d : sockets) {
      out.push_back(std::to_string(d.state) + " " + to_string(d.local) + ":" +
                    std::to_string(d.local_port) + " " + to_string(d.remote) + ":" +
                    std::to_string(d.remote_port) + " q" + std::to_string(d.rqueue) + "/" +
                    std::to_string(d.wqueue) + (d.drops ? " d" + std::to_string(*d.drops) : ""));
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  for (const bool memory_info : {false, true}) {
    for (const std::uint32_t states : {tcp_state_bit(TCP_LISTEN), kConnectionStates}) {
      INFO("states " << states << ", memory_info " << memory_info);
      SockDiagSocket s;
      std::vector<DiagSocket> both;
      REQUIRE(s.dump_tcp(states, filter, memory_info, deadline, both).ok());
      CHECK(s.one_walk());  // the kernel took the AF_UNSPEC request
      std::vector<DiagSocket> each;
      for (const int family : {AF_INET, AF_INET6}) {
        REQUIRE(s.dump({family, states, filter, memory_info}, deadline, each).ok());
      }
      CHECK(seen(both) == seen(each));
      // Two listeners, or the server ends of 3 + 2 connections, of both families.
      CHECK(both.size() == (states == kConnectionStates ? 5u : 2u));
      CHECK(std::any_of(both.begin(), both.end(),
                        [](const DiagSocket& d) { return d.local.family == AF_INET6; }));
    }
  }
}

TEST_CASE("sockdiag: where the one-walk request is refused, each family is dumped on its own",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  Fd four = listen_on("127.0.0.1", 16);
  Fd six = listen_on("::1", 16);
  // No kernel here refuses TCPDIAG_GETSOCK; an rtnetlink socket, the first one opened, stands in
  // for one that does: it answers type 18 (RTM_GETLINK there) with links, no sock_diag reply.
  int opened = 0;
  SockDiagSocket s([&opened]() -> Result<int> {
    const int protocol = opened++ == 0 ? NETLINK_ROUTE : NETLINK_SOCK_DIAG;
    const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
    if (fd < 0) return fail("socket");
    return fd;
  });
  const std::vector<std::uint16_t> ports{std::min(port_of(four), port_of(six)),
                                         std::max(port_of(four), port_of(six))};
  std::vector<DiagSocket> out;
  const Status st = s.dump_tcp(tcp_state_bit(TCP_LISTEN), *compile_port_filter(ports), true,
                               SockDiagSocket::Clock::now() + 5s, out);
  REQUIRE(st.ok());
  CHECK_FALSE(s.one_walk());
  CHECK(opened == 2);  // the refused socket was closed, the dumps of each family had their own
  REQUIRE(out.size() == 2);
  CHECK(out[0].local.family == AF_INET);
  CHECK(out[1].local.family == AF_INET6);
  for (const DiagSocket& d : out) CHECK(d.drops.has_value());
}

TEST_CASE("sockdiag: what is not the kernel's answer does not turn the one-walk request off",
          "[integration][sockdiag]") {
  test::enter_private_netns();
  int opened = 0;
  SockDiagSocket s([&opened]() -> Result<int> {
    ++opened;
    return fail("no descriptor left");
  });
  std::vector<DiagSocket> out;
  const Status st =
      s.dump_tcp(kConnectionStates, {}, false, SockDiagSocket::Clock::now() + 5s, out);
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.error().message, Contains("no descriptor left"));
  CHECK(s.one_walk());
  CHECK(opened == 1);  // not tried again as two dumps
  CHECK_FALSE(kernel_refused(st.error()));
}
