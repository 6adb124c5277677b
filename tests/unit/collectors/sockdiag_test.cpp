// Aggregating a sock_diag dump into listeners, connections and clients; the peak window.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "collectors/sockdiag.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

IpAddress ip(const char* text) {
  IpAddress a;
  a.family = std::string_view(text).find(':') == std::string_view::npos ? AF_INET : AF_INET6;
  REQUIRE(inet_pton(a.family, text, a.bytes.data()) == 1);
  return a;
}

DiagSocket listener(const char* address, std::uint16_t port, std::uint32_t length,
                    std::uint32_t max) {
  DiagSocket s;
  s.state = TCP_LISTEN;
  s.local = ip(address);
  s.local_port = port;
  s.rqueue = length;
  s.wqueue = max;
  return s;
}

DiagSocket connection(std::uint16_t port, const char* client, std::uint8_t state = TCP_ESTABLISHED,
                      std::uint32_t send_queue = 0, const char* local = "127.0.0.1") {
  DiagSocket s;
  s.state = state;
  s.local = ip(local);
  s.local_port = port;
  s.remote = ip(client);
  s.remote_port = 50000;
  s.wqueue = send_queue;
  return s;
}

SockdiagOptions options(std::vector<std::uint16_t> ports, int top = 10) {
  SockdiagOptions o;
  o.ports = std::move(ports);
  o.top_clients = top;
  o.send_queue_threshold_bytes = 65536;
  return o;
}

std::uint64_t client(const ListenerSample& p, const std::string& name) {
  for (const auto& c : p.top_clients) {
    if (c.client == name) return c.connections;
  }
  return 0;
}

// The listener (or group of connections without one) at `address` and `port`.
const ListenerSample& at(const SockdiagSample& s, const std::string& address, std::uint16_t port) {
  for (const ListenerSample& l : s.listeners) {
    if (l.address == address && l.port == port) return l;
  }
  FAIL("no listener " << address << ":" << port);
  return s.listeners.front();
}

}  // namespace

TEST_CASE("sockdiag: listeners on watched ports report queue length and max",
          "[collectors][sockdiag]") {
  const std::vector<DiagSocket> dump = {
      listener("0.0.0.0", 11211, 6, 5),
      listener("::", 11211, 0, 1024),
      listener("127.0.0.1", 22, 3, 128),  // not watched
      listener("::ffff:10.0.0.1", 11311, 1, 0),
  };
  const auto s = sockdiag_sample(dump, options({11211, 11311}));
  REQUIRE(s.listeners.size() == 3);
  CHECK(s.listeners[0].address == "0.0.0.0");
  CHECK(s.listeners[0].port == 11211);
  CHECK(s.listeners[0].queue_length == 6);
  CHECK(s.listeners[0].queue_max == 5);
  CHECK(s.listeners[0].queue_peak == 6);
  CHECK(s.listeners[1].address == "::");
  CHECK(s.listeners[1].queue_max == 1024);
  CHECK(s.listeners[2].address == "10.0.0.1");  // IPv4-mapped shown as IPv4
  CHECK(s.listeners[2].queue_max == 0);
}

TEST_CASE("sockdiag: SO_REUSEPORT listeners on one address and port are summed",
          "[collectors][sockdiag]") {
  std::vector<DiagSocket> dump = {listener("0.0.0.0", 11211, 2, 1024),
                                  listener("0.0.0.0", 11211, 3, 1024)};
  dump[0].drops = 7;
  dump[1].drops = 5;
  const auto s = sockdiag_sample(dump, options({11211}));
  REQUIRE(s.listeners.size() == 1);
  CHECK(s.listeners[0].queue_length == 5);
  CHECK(s.listeners[0].queue_max == 2048);
  CHECK(s.listeners[0].drops == 12u);
}

TEST_CASE("sockdiag: a listener's peak is the larger of its length and the window's peak",
          "[collectors][sockdiag]") {
  const std::vector<DiagSocket> dump = {listener("0.0.0.0", 11211, 4, 1024),
                                        listener("::", 11211, 9, 1024)};
  ListenerPeaks peaks;
  peaks[{11211, ip("0.0.0.0")}] = 30;
  peaks[{11211, ip("::")}] = 2;  // older than the current length
  const auto s = sockdiag_sample(dump, options({11211}), peaks);
  CHECK(s.listeners[0].queue_peak == 30);
  CHECK(s.listeners[1].queue_peak == 9);
}

TEST_CASE("sockdiag: connections are counted by state per watched port, every state present",
          "[collectors][sockdiag]") {
  const std::vector<DiagSocket> dump = {
      connection(11211, "127.0.0.2"),
      connection(11211, "127.0.0.2", TCP_CLOSE_WAIT),
      connection(11211, "127.0.0.3", TCP_TIME_WAIT),
      connection(11211, "127.0.0.3", TCP_SYN_RECV),
      connection(11311, "127.0.0.4"),
      connection(8080, "127.0.0.5"),  // not watched
  };
  const auto s = sockdiag_sample(dump, options({11211, 11311}));
  REQUIRE(s.listeners.size() == 2);  // no LISTEN socket: grouped under their local address
  const ListenerSample& p = at(s, "127.0.0.1", 11211);
  CHECK_FALSE(p.listening);
  CHECK(p.connections.size() == 10);  // every TCP state but LISTEN
  CHECK_FALSE(p.connections.contains("listen"));
  CHECK(p.connections.at("established") == 1);
  CHECK(p.connections.at("close_wait") == 1);
  CHECK(p.connections.at("time_wait") == 1);
  CHECK(p.connections.at("syn_recv") == 1);
  CHECK(p.connections.at("fin_wait1") == 0);
  CHECK(at(s, "127.0.0.1", 11311).connections.at("established") == 1);
}

TEST_CASE("sockdiag: the top clients are named, the rest summed as other",
          "[collectors][sockdiag]") {
  std::vector<DiagSocket> dump;
  auto add = [&](const char* client, int n) {
    for (int i = 0; i < n; ++i) dump.push_back(connection(11211, client));
  };
  add("10.0.0.9", 5);
  add("10.0.0.1", 7);
  add("10.0.0.3", 5);
  add("10.0.0.4", 1);
  add("::ffff:10.0.0.1", 2);  // the same client through a dual-stack listener
  dump.push_back(connection(11211, "10.0.0.5", TCP_TIME_WAIT));  // not established
  const auto s = sockdiag_sample(dump, options({11211}, 2));
  const ListenerSample& p = s.listeners.at(0);
  REQUIRE(p.top_clients.size() == 2);
  CHECK(p.top_clients[0].client == "10.0.0.1");
  CHECK(p.top_clients[0].connections == 9);
  CHECK(p.top_clients[1].client == "10.0.0.3");  // ties: lower address first
  CHECK(p.top_clients[1].connections == 5);
  CHECK(p.other_clients_connections == 6);
  CHECK(p.clients == 4);

  const auto all = sockdiag_sample(dump, options({11211}, 10));
  CHECK(all.listeners[0].top_clients.size() == 4);
  CHECK(client(all.listeners[0], "10.0.0.4") == 1);
  CHECK(all.listeners[0].other_clients_connections == 0);
}

TEST_CASE("sockdiag: sockets whose send queue is above the threshold count as blocked",
          "[collectors][sockdiag]") {
  const std::vector<DiagSocket> dump = {
      connection(11211, "10.0.0.1", TCP_ESTABLISHED, 65537),
      connection(11211, "10.0.0.1", TCP_ESTABLISHED, 65536),  // at the threshold: not above
      connection(11211, "10.0.0.2", TCP_CLOSE_WAIT, 900000),
      listener("0.0.0.0", 11211, 0, 70000),  // a listener's wqueue is its max queue
  };
  const auto s = sockdiag_sample(dump, options({11211}));
  REQUIRE(s.listeners.size() == 1);  // the wildcard listener took the connections
  CHECK(s.listeners[0].send_queue_blocked == 2);
}

TEST_CASE("sockdiag: no watched port, no sockets: an empty sample", "[collectors][sockdiag]") {
  const std::vector<DiagSocket> dump = {connection(11211, "10.0.0.1")};
  const auto none = sockdiag_sample(dump, options({}));
  CHECK(none.listeners.empty());
  const auto empty = sockdiag_sample({}, options({11211}));
  CHECK(empty.listeners.empty());
  // A listener with no connection has every state at 0 and no clients.
  const std::vector<DiagSocket> idle = {listener("127.0.0.1", 11211, 0, 1024)};
  const auto quiet = sockdiag_sample(idle, options({11211}));
  REQUIRE(quiet.listeners.size() == 1);
  CHECK(quiet.listeners[0].clients == 0);
  CHECK(quiet.listeners[0].established() == 0);
  CHECK(quiet.listeners[0].top_clients.empty());
}

TEST_CASE("sockdiag: families carry the labels, client other always, the peak's window in help",
          "[collectors][sockdiag]") {
  std::vector<DiagSocket> dump = {listener("0.0.0.0", 11211, 6, 5),
                                  listener("::", 11211, 0, 5),  // its drops not reported
                                  connection(11211, "127.0.0.2")};
  dump[0].drops = 40;
  const auto f = sockdiag_families(sockdiag_sample(dump, options({11211}, 1)), 100ms, 15s);
  auto find = [&](const std::string& name) -> const prometheus::MetricFamily& {
    for (const auto& family : f) {
      if (family.name == name) return family;
    }
    FAIL("no family " << name);
    return f.front();
  };
  const auto& length = find("mcbacklog_accept_queue_length");
  REQUIRE(length.metric.size() == 2);
  CHECK(length.metric[0].gauge.value == 6);
  CHECK(length.metric[0].label[0].name == "address");
  CHECK(length.metric[0].label[0].value == "0.0.0.0");
  CHECK(length.metric[0].label[1].value == "11211");
  CHECK(find("mcbacklog_accept_queue_max").metric[0].gauge.value == 5);
  CHECK_THAT(find("mcbacklog_accept_queue_max").help, Contains("0 means"));
  CHECK_THAT(find("mcbacklog_accept_queue_peak").help,
             Contains("over the last 15s, sampled every 100ms"));
  const auto& drops = find("mcbacklog_accept_queue_drops_total");
  REQUIRE(drops.metric.size() == 1);  // a listener whose drops are unknown has no series
  CHECK(drops.type == prometheus::MetricType::Counter);
  CHECK(drops.metric[0].counter.value == 40);
  CHECK(drops.metric[0].label[0].value == "0.0.0.0");
  // Each listener has its connection series: every state, and client="other" always.
  CHECK(find("mcbacklog_connections").metric.size() == 20);
  const auto& clients = find("mcbacklog_client_connections");
  REQUIRE(clients.metric.size() == 3);
  // address, port, client: the listener's labels as on the accept-queue series
  REQUIRE(clients.metric[0].label.size() == 3);
  CHECK(clients.metric[0].label[0].value == "0.0.0.0");
  CHECK(clients.metric[0].label[2].value == "127.0.0.2");
  CHECK(clients.metric[1].label[2].value == "other");
  CHECK(clients.metric[1].gauge.value == 0);
  CHECK(find("mcbacklog_clients").metric[0].gauge.value == 1);
  CHECK(find("mcbacklog_connections_send_queue_blocked").metric[0].gauge.value == 0);
}

TEST_CASE("sockdiag: connections belong to the listener on their address, else to the wildcard",
          "[collectors][sockdiag]") {
  // Two memcached on one port at different addresses, a third behind a dual-stack wildcard.
  const std::vector<DiagSocket> dump = {
      listener("127.0.0.1", 11311, 0, 1024),
      listener("127.0.0.2", 11311, 0, 0),  // stopped accepting
      listener("::", 11411, 0, 1024),
      connection(11311, "10.0.0.1", TCP_ESTABLISHED, 0, "127.0.0.1"),
      connection(11311, "10.0.0.2", TCP_ESTABLISHED, 0, "127.0.0.2"),
      connection(11311, "10.0.0.2", TCP_ESTABLISHED, 100000, "127.0.0.2"),
      connection(11411, "10.0.0.3", TCP_ESTABLISHED, 0, "::ffff:127.0.0.9"),
      connection(11411, "::1", TCP_ESTABLISHED, 0, "::1"),
      connection(11311, "10.0.0.4", TCP_TIME_WAIT, 0, "127.0.0.3"),  // no listener there
  };
  const auto s = sockdiag_sample(dump, options({11311, 11411}));
  REQUIRE(s.listeners.size() == 4);
  const ListenerSample& one = at(s, "127.0.0.1", 11311);
  const ListenerSample& two = at(s, "127.0.0.2", 11311);
  CHECK(one.established() == 1);
  CHECK(one.clients == 1);
  CHECK(one.send_queue_blocked == 0);
  CHECK(two.established() == 2);
  CHECK(two.send_queue_blocked == 1);
  CHECK(two.queue_max == 0);
  const ListenerSample& dual = at(s, "::", 11411);
  CHECK(dual.established() == 2);
  CHECK(dual.clients == 2);
  const ListenerSample& orphan = at(s, "127.0.0.3", 11311);
  CHECK_FALSE(orphan.listening);
  CHECK(orphan.connections.at("time_wait") == 1);
  // Only open listeners have accept-queue series; every group has connection series.
  const auto f = sockdiag_families(s, 100ms, 15s);
  for (const auto& family : f) {
    if (family.name == "mcbacklog_accept_queue_length") CHECK(family.metric.size() == 3);
    if (family.name == "mcbacklog_clients") CHECK(family.metric.size() == 4);
  }
}

TEST_CASE(
    "sockdiag: on a port watched for a memcached only its user's listener and connections count",
    "[collectors][sockdiag]") {
  // memcached (uid 110) on 127.0.0.1:11212, named by its settings; nginx (uid 33) on 0.0.0.0:11212
  // and its client. 11211 is configured: every listener there counts, whoever owns it.
  auto owned = [](DiagSocket s, std::uint32_t uid) {
    s.uid = uid;
    return s;
  };
  const std::vector<DiagSocket> dump = {
      owned(listener("127.0.0.1", 11212, 1, 4), 110),
      owned(connection(11212, "10.0.0.1"), 110),
      owned(listener("0.0.0.0", 11212, 3, 511), 33),
      owned(connection(11212, "10.0.0.2", TCP_ESTABLISHED, 0, "10.0.0.9"), 33),
      owned(listener("0.0.0.0", 11211, 0, 128), 33),
  };
  SockdiagOptions o = options({11211, 11212});
  o.port_owners = {{11212, 110}};
  CHECK(foreign_socket(dump[2], o));
  CHECK_FALSE(foreign_socket(dump[0], o));
  CHECK_FALSE(foreign_socket(dump[4], o));
  const auto s = sockdiag_sample(dump, o);
  REQUIRE(s.listeners.size() == 2);
  const ListenerSample& memcached = at(s, "127.0.0.1", 11212);
  CHECK(memcached.uid == 110u);
  CHECK(memcached.queue_max == 4);
  CHECK(memcached.established() == 1);
  CHECK(client(memcached, "10.0.0.1") == 1);
  CHECK(at(s, "0.0.0.0", 11211).uid == 33u);
  for (const ListenerSample& l : s.listeners) CHECK(client(l, "10.0.0.2") == 0);
}

TEST_CASE("sockdiag: listeners are written with brackets around IPv6 addresses",
          "[collectors][sockdiag]") {
  CHECK(listener_name("::1", 11311) == "[::1]:11311");
  CHECK(listener_name("127.0.0.1", 11311) == "127.0.0.1:11311");
  CHECK(is_wildcard("::"));
  CHECK(is_wildcard("0.0.0.0"));
  CHECK_FALSE(is_wildcard("::1"));
}

TEST_CASE("sockdiag: the peak window keeps the largest value of the window and forgets older",
          "[collectors][sockdiag]") {
  const PeakWindow::Clock::time_point t0{};
  PeakWindow w(1s);
  CHECK(w.peak(t0) == 0);
  w.add(t0, 3);
  w.add(t0 + 100ms, 20);
  w.add(t0 + 200ms, 7);
  w.add(t0 + 300ms, 0);
  CHECK(w.peak(t0 + 300ms) == 20);
  CHECK(w.peak(t0 + 1099ms) == 20);
  CHECK(w.peak(t0 + 1100ms) == 7);  // 20 is now exactly one window old
  CHECK(w.peak(t0 + 1200ms) == 0);
  CHECK(w.peak(t0 + 5s) == 0);  // nothing added within the window
  w.add(t0 + 5s, 4);
  w.add(t0 + 5s + 10ms, 4);
  CHECK(w.peak(t0 + 5s + 1005ms) == 4);
}

TEST_CASE("sockdiag: between walks a listener keeps the last walk's connection figures",
          "[collectors][sockdiag]") {
  const std::vector<DiagSocket> walk_dump = {
      listener("127.0.0.1", 11211, 0, 1024),
      listener("127.0.0.1", 11311, 0, 1024),
      connection(11211, "10.0.0.1"),
      connection(11211, "10.0.0.1"),
      connection(11411, "10.0.0.2", TCP_TIME_WAIT, 0, "127.0.0.1"),  // no listener
  };
  const auto walked = sockdiag_sample(walk_dump, options({11211, 11311, 11411}));
  // This run sees the listeners only: 11311 closed, 11511 opened since the walk.
  const std::vector<DiagSocket> now = {listener("127.0.0.1", 11211, 4, 1024),
                                       listener("127.0.0.1", 11511, 0, 128)};
  auto sample = sockdiag_sample(now, options({11211, 11311, 11411, 11511}));
  const auto unseen = merge_connections(sample, walked);
  REQUIRE(unseen.size() == 1);
  CHECK(unseen[0].first == 11511);
  const ListenerSample& kept = at(sample, "127.0.0.1", 11211);
  CHECK(kept.queue_length == 4);   // this run's queue
  CHECK(kept.established() == 2);  // the walk's connections
  CHECK(kept.clients == 1);
  CHECK(at(sample, "127.0.0.1", 11411).connections.at("time_wait") == 1);
  for (const ListenerSample& l : sample.listeners) CHECK_FALSE(l.port == 11311);
}
