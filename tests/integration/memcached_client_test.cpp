// The memcached client in-process against a real memcached 1.6.18 and against fake servers for
// the faults memcached cannot produce. Each test runs in its own network namespace.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include "collectors/memcached_client.hpp"
#include "tests/support/memcached.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

Endpoint endpoint(const std::string& address) { return *parse_target_address(address); }

std::shared_ptr<StatsConnection> connection(boost::asio::io_context& io, const std::string& address,
                                            StatsConnection::Options options = {}) {
  return std::make_shared<StatsConnection>(io, endpoint(address), options);
}

// Runs the loop until `finished` holds. The bound only keeps a broken build from hanging.
template <class F>
void run_until(boost::asio::io_context& io, F&& finished) {
  const auto end = SteadyClock::now() + 20s;
  io.restart();
  while (!finished() && SteadyClock::now() < end) io.run_one_for(50ms);
  REQUIRE(finished());
}

StatsReply query(boost::asio::io_context& io, StatsConnection& c, Duration timeout) {
  std::optional<StatsReply> reply;
  c.query(SteadyClock::now() + timeout, [&](StatsReply r) { reply = std::move(r); });
  run_until(io, [&] { return reply.has_value(); });
  return std::move(*reply);
}

ProbeResult probe(boost::asio::io_context& io, const std::string& address, Duration timeout) {
  std::optional<ProbeResult> result;
  Probe::start(io, endpoint(address), SteadyClock::now() + timeout,
               [&](ProbeResult r) { result = std::move(r); });
  run_until(io, [&] { return result.has_value(); });
  return std::move(*result);
}

std::string error_of(const Result<StatsMap>& r) {
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

long total_connections(const test::Memcached& mc) {
  return std::stol(mc.stats().at("total_connections"));
}

}  // namespace

TEST_CASE("memcached client: twenty queries reuse one connection", "[integration][memcached]") {
  test::enter_private_netns();
  test::Memcached mc({"-c", "64", "-b", "256"});
  const long before = total_connections(mc);  // counts the raw connection that read it
  boost::asio::io_context io;
  auto c = connection(io, mc.address());
  for (int i = 0; i < 20; ++i) {
    const StatsReply r = query(io, *c, 2s);
    REQUIRE(r.stats.ok());
    REQUIRE(r.settings.ok());
    CHECK(r.stats->at("max_connections") == "64");
    CHECK(r.settings->at("tcp_backlog") == "256");
  }
  CHECK(c->connects() == 1);
  // Ours plus the raw connection reading this.
  CHECK(total_connections(mc) == before + 2);
}

TEST_CASE(
    "memcached client: a stopped memcached ends the query at its deadline and the same "
    "connection answers after SIGCONT",
    "[integration][memcached]") {
  test::enter_private_netns();
  test::Memcached mc;
  boost::asio::io_context io;
  auto c = connection(io, mc.address());
  REQUIRE(query(io, *c, 2s).stats.ok());
  mc.pause();
  const StatsReply stalled = query(io, *c, 100ms);
  CHECK_THAT(error_of(stalled.stats), Contains("no reply to stats within 100ms"));
  // Still waiting for that reply: the next query says so rather than sending another.
  const StatsReply still = query(io, *c, 100ms);
  CHECK_THAT(error_of(still.stats), Contains("still waiting for the reply to an earlier stats"));
  mc.resume();
  const StatsReply back = query(io, *c, 5s);
  REQUIRE(back.stats.ok());
  CHECK(back.settings.ok());
  CHECK(c->connects() == 1);
}

TEST_CASE("memcached client: a restarted memcached is reconnected to within the same query",
          "[integration][memcached]") {
  test::enter_private_netns();
  test::Memcached mc;
  boost::asio::io_context io;
  auto c = connection(io, mc.address());
  REQUIRE(query(io, *c, 2s).stats.ok());
  mc.kill();
  mc.restart();
  const StatsReply r = query(io, *c, 2s);
  REQUIRE(r.stats.ok());
  CHECK(r.stats->at("uptime").size() <= 2);  // the new process
  CHECK(c->connects() == 2);
}

TEST_CASE("memcached client: reconnect attempts back off after a failure",
          "[integration][memcached]") {
  test::enter_private_netns();
  // A server that reads a command and closes.
  test::FakeServer server([](test::FakeConnection& c) { c.read_line(); });
  boost::asio::io_context io;
  StatsConnection::Options options;
  options.backoff_base = 300ms;
  auto c = connection(io, server.address(), options);
  CHECK_THAT(error_of(query(io, *c, 1s).stats), Contains("memcached closed the connection"));
  CHECK(server.connections() == 1);
  // Within the delay (150 to 300 ms) the reason is repeated without a new connection.
  CHECK_THAT(error_of(query(io, *c, 1s).stats), Contains("memcached closed the connection"));
  CHECK(server.connections() == 1);
  ::usleep(350'000);
  CHECK_THAT(error_of(query(io, *c, 1s).stats), Contains("memcached closed the connection"));
  CHECK(server.connections() == 2);
}

TEST_CASE("memcached client: a reply that never comes is given up after the stall limit",
          "[integration][memcached]") {
  test::enter_private_netns();
  test::FakeServer server(test::fake::half_reply_then_silence());
  boost::asio::io_context io;
  StatsConnection::Options options;
  options.stall_limit = 300ms;
  options.backoff_base = 100ms;
  auto c = connection(io, server.address(), options);
  CHECK_THAT(error_of(query(io, *c, 100ms).stats), Contains("no reply to stats within 100ms"));
  ::usleep(350'000);
  CHECK_THAT(error_of(query(io, *c, 100ms).stats),
             Contains("no reply to stats for") && Contains("connection closed"));
  CHECK_FALSE(c->connected());
  ::usleep(150'000);
  CHECK_THAT(error_of(query(io, *c, 100ms).stats), Contains("no reply to stats within"));
  CHECK(server.connections() == 2);
}

TEST_CASE("memcached client: hostile replies close the connection with the reason",
          "[integration][memcached]") {
  test::enter_private_netns();
  boost::asio::io_context io;
  auto reason = [&](test::FakeServer::Script script) {
    test::FakeServer server(std::move(script));
    auto c = connection(io, server.address());
    const StatsReply r = query(io, *c, 2s);
    CHECK_FALSE(c->connected());
    return error_of(r.stats);
  };
  CHECK_THAT(reason(test::fake::endless_line()),
             Contains("protocol error: a line longer than 4096 bytes"));
  CHECK_THAT(reason(test::fake::huge_reply(1 << 20)),
             Contains("protocol error: a reply longer than 65536 bytes"));
  CHECK_THAT(reason(test::fake::binary_garbage()), Contains("protocol error: unexpected line"));
  CHECK_THAT(reason(test::fake::close_mid_reply()), Contains("memcached closed the connection"));
}

TEST_CASE("memcached client: a server without stats settings still gives its stats",
          "[integration][memcached]") {
  test::enter_private_netns();
  test::FakeServer server(test::fake::without_settings({{"pid", "1"}, {"version", "fake"}}));
  boost::asio::io_context io;
  auto c = connection(io, server.address());
  const StatsReply r = query(io, *c, 2s);
  REQUIRE(r.stats.ok());
  CHECK(r.stats->at("version") == "fake");
  CHECK_THAT(error_of(r.settings), Contains("memcached replied \"ERROR\""));
  CHECK(c->connected());  // an error line keeps the stream in step
  CHECK(query(io, *c, 2s).stats.ok());
  CHECK(server.connections() == 1);
}

TEST_CASE("memcached client: unix sockets and IPv6 work like IPv4", "[integration][memcached]") {
  test::enter_private_netns();
  test::TempDir dir;
  test::Memcached on_unix({"-c", "77"},
                          test::Memcached::Listen::unix_socket(dir.path() + "/mc.sock"));
  test::Memcached on_v6({"-c", "66"}, test::Memcached::Listen::tcp("::1"));
  boost::asio::io_context io;
  for (auto [mc, max] : {std::pair{&on_unix, "77"}, std::pair{&on_v6, "66"}}) {
    INFO(mc->address());
    auto c = connection(io, mc->address());
    const StatsReply r = query(io, *c, 2s);
    REQUIRE(r.stats.ok());
    CHECK(r.stats->at("max_connections") == max);
    const ProbeResult p = probe(io, mc->address(), 2s);
    CHECK(p.success);
    CHECK(p.version == "1.6.18");
  }
}

TEST_CASE("memcached client: the probe times a fresh connection and reports why it failed",
          "[integration][memcached]") {
  test::enter_private_netns();
  // 40 idle clients fill -c 32: memcached accepts the probe's connection, says ERROR and closes
  // it (maxconns_fast).
  test::Memcached mc({"-c", "32", "-t", "1"});
  std::vector<std::unique_ptr<test::RawConnection>> clients;
  clients.reserve(40);
  for (int i = 0; i < 40; ++i)
    clients.push_back(std::make_unique<test::RawConnection>(mc.address()));
  boost::asio::io_context io;
  const ProbeResult full = probe(io, mc.address(), 2s);
  INFO(full.error);
  CHECK_FALSE(full.success);
  CHECK_THAT(full.error, Contains("ERROR Too many open connections"));
  CHECK(full.duration_seconds > 0);
  clients.clear();

  test::Memcached roomy;
  const ProbeResult ok = probe(io, roomy.address(), 2s);
  CHECK(ok.success);
  CHECK(ok.version == "1.6.18");
  CHECK(ok.duration_seconds > 0);

  const std::string gone = roomy.address();
  roomy.kill();
  const ProbeResult refused = probe(io, gone, 2s);
  CHECK_FALSE(refused.success);
  CHECK_THAT(refused.error, Contains("Connection refused"));

  test::FakeServer silent([](test::FakeConnection& c) { c.hold(); });
  const ProbeResult timeout = probe(io, silent.address(), 200ms);
  CHECK_FALSE(timeout.success);
  CHECK_THAT(timeout.error, Contains("no reply to version by the deadline"));
}
