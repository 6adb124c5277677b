// The memcached client in-process against a real memcached 1.6.18 and against fake servers for
// the faults memcached cannot produce. Each test runs in its own network namespace.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>

#include <boost/asio/io_context.hpp>

#include "collectors/memcached.hpp"
#include "collectors/memcached_client.hpp"
#include "common/clock.hpp"
#include "tests/support/memcached.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"
#include "tests/support/tls.hpp"

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

// Idle clients that hold every connection memcached allows: opened until memcached turns one away
// (maxconns_fast). memcached decides by the descriptor number a connection gets, so a descriptor
// it frees late in its start (under load) leaves room that a fixed number of clients would not
// fill.
std::vector<std::unique_ptr<test::RawConnection>> fill_to_limit(const std::string& address) {
  std::vector<std::unique_ptr<test::RawConnection>> clients;
  for (int i = 0; i < 1000; ++i) {
    auto c = std::make_unique<test::RawConnection>(address);
    if (at_connection_limit(c->request("version\r\n"))) return clients;
    clients.push_back(std::move(c));
  }
  FAIL("memcached at " << address << " took 1000 clients without turning one away");
  return clients;
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
  const StatsReply first = query(io, *c, 1s);
  CHECK_THAT(error_of(first.stats),
             Contains("connection accepted, then closed without a text reply"));
  CHECK(first.failure == FailureKind::kNotTextProtocol);
  CHECK(server.connections() == 1);
  // Within the delay (150 to 300 ms) the reason and its kind are repeated without a new
  // connection.
  const StatsReply again = query(io, *c, 1s);
  CHECK_THAT(error_of(again.stats),
             Contains("connection accepted, then closed without a text reply"));
  CHECK(again.failure == FailureKind::kNotTextProtocol);
  CHECK(server.connections() == 1);
  ::usleep(350'000);
  CHECK_THAT(error_of(query(io, *c, 1s).stats),
             Contains("connection accepted, then closed without a text reply"));
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
  auto reason = [&](test::FakeServer::Script script, FailureKind kind) {
    test::FakeServer server(std::move(script));
    auto c = connection(io, server.address());
    const StatsReply r = query(io, *c, 2s);
    CHECK_FALSE(c->connected());
    CHECK(r.failure == kind);
    return error_of(r.stats);
  };
  CHECK_THAT(reason(test::fake::endless_line(), FailureKind::kProtocol),
             Contains("protocol error: a line longer than 4096 bytes"));
  CHECK_THAT(reason(test::fake::huge_reply(1 << 20), FailureKind::kProtocol),
             Contains("protocol error: a reply longer than 262144 bytes"));
  CHECK_THAT(reason(test::fake::binary_garbage(), FailureKind::kNotTextProtocol),
             Contains("connection accepted, but the reply is not text: \"\\x07"));
  CHECK_THAT(reason(test::fake::close_mid_reply(), FailureKind::kUnreachable),
             Contains("memcached closed the connection"));
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

TEST_CASE(
    "memcached client: a unix: path that is a regular file or a directory says it is not a "
    "socket, a missing one that it is not there",
    "[integration][memcached]") {
  test::TempDir dir;
  const std::string file = dir.path() + "/memcached.sock";
  std::ofstream(file) << "";
  boost::asio::io_context io;
  for (const auto& [path, seen] :
       {std::pair{file, "the path is a regular file, not a socket"},
        std::pair{dir.path(), "the path is a directory, not a socket"},
        std::pair{dir.path() + "/absent.sock", "No such file or directory"}}) {
    INFO(path);
    auto c = connection(io, "unix:" + path);
    const StatsReply r = query(io, *c, 2s);
    CHECK_THAT(error_of(r.stats), Contains(seen));
    CHECK(r.failure == FailureKind::kUnreachable);
    const ProbeResult p = probe(io, "unix:" + path, 2s);
    CHECK_THAT(p.error, Contains(seen));
  }
}

TEST_CASE("memcached client: the probe times a fresh connection and reports why it failed",
          "[integration][memcached]") {
  test::enter_private_netns();
  // Idle clients fill -c 32: memcached accepts the probe's connection, says ERROR and closes it
  // (maxconns_fast).
  test::Memcached mc({"-c", "32", "-t", "1"});
  auto clients = fill_to_limit(mc.address());
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

TEST_CASE(
    "memcached client: a listener that does not speak the text protocol is told apart at once: "
    "-B binary, -S and TLS, while a notls listener of the same memcached answers",
    "[integration][memcached]") {
  test::enter_private_netns();
  test::TempDir dir;
  boost::asio::io_context io;
  test::Memcached::Listen silent_listener;
  silent_listener.text_protocol = false;
  // Deadlines far beyond what the replies take: a failure by deadline would be kNoReply.
  auto expect_not_text = [&](const std::string& address, const std::string& seen) {
    INFO(address);
    auto c = connection(io, address);
    const StatsReply r = query(io, *c, 10s);
    CHECK_THAT(error_of(r.stats), Contains(seen));
    CHECK(r.failure == FailureKind::kNotTextProtocol);
    const ProbeResult p = probe(io, address, 10s);
    CHECK_FALSE(p.success);
    CHECK_THAT(p.error, Contains(seen));
    CHECK(p.failure == FailureKind::kNotTextProtocol);
  };

  SECTION("-B binary reads the text request as a binary header and closes") {
    test::Memcached binary({"-B", "binary"}, silent_listener);
    expect_not_text(binary.address(), "connection accepted, then closed without a text reply");
  }

  SECTION("-S (SASL) implies the binary protocol") {
    const std::string conf =
        dir.write("memcached.conf", "mech_list: plain\nsasldb_path: " + dir.path() + "/sasldb\n");
    ::setenv("SASL_CONF_PATH", dir.path().c_str(), 1);
    test::Memcached sasl({"-S"}, silent_listener);
    expect_not_text(sasl.address(), "connection accepted, then closed without a text reply");
  }

  SECTION("-Z (TLS) resets a plain connection; its notls: listener answers") {
    const test::TestPki pki = test::make_test_pki(dir);
    const std::uint16_t plain_port = test::free_port("127.0.0.1");
    test::Memcached tls(
        {"-Z", "-o", "ssl_chain_cert=" + pki.server_cert + ",ssl_key=" + pki.server_key, "-l",
         "notls:127.0.0.1:" + std::to_string(plain_port)},
        silent_listener);
    expect_not_text(tls.address(), "connection accepted, then reset without a text reply");
    const std::string plain = "127.0.0.1:" + std::to_string(plain_port);
    auto c = connection(io, plain);
    const StatsReply r = query(io, *c, 10s);
    REQUIRE(r.stats.ok());
    CHECK(r.failure == FailureKind::kNone);
    CHECK(probe(io, plain, 10s).success);
  }
}

TEST_CASE("memcached client: failures carry the kind of what happened",
          "[integration][memcached]") {
  test::enter_private_netns();
  boost::asio::io_context io;

  // Nothing listens.
  const std::string nobody = "127.0.0.1:" + std::to_string(test::free_port("127.0.0.1"));
  auto refused = connection(io, nobody);
  CHECK(query(io, *refused, 2s).failure == FailureKind::kUnreachable);
  CHECK(probe(io, nobody, 2s).failure == FailureKind::kUnreachable);

  // Accepted by the kernel, never answered.
  test::Memcached mc;
  auto c = connection(io, mc.address());
  REQUIRE(query(io, *c, 2s).stats.ok());
  mc.pause();
  CHECK(query(io, *c, 100ms).failure == FailureKind::kNoReply);
  CHECK(query(io, *c, 100ms).failure == FailureKind::kNoReply);  // still waiting
  const ProbeResult stopped = probe(io, mc.address(), 200ms);
  CHECK(stopped.failure == FailureKind::kNoReply);
  mc.resume();
  const StatsReply back = query(io, *c, 5s);
  REQUIRE(back.stats.ok());
  CHECK(back.failure == FailureKind::kNone);

  // At the connection limit in maxconns_fast mode, on the stats connection and the probe.
  test::Memcached full({"-c", "32", "-t", "1"});
  const auto clients = fill_to_limit(full.address());
  auto at_limit = connection(io, full.address());
  const StatsReply refused_at_limit = query(io, *at_limit, 2s);
  CHECK_THAT(error_of(refused_at_limit.stats), Contains("ERROR Too many open connections"));
  CHECK(refused_at_limit.failure == FailureKind::kAtLimit);
  CHECK(probe(io, full.address(), 2s).failure == FailureKind::kAtLimit);
}

TEST_CASE(
    "memcached collector: the next cycle ends a run that a stopped memcached holds, with the "
    "deadline's reason, and the connection answers again after SIGCONT",
    "[integration][memcached]") {
  test::enter_private_netns();
  test::Memcached mc;
  boost::asio::io_context io;
  TargetConfig target;
  target.name = "mc";
  target.address = endpoint(mc.address());
  target.probe_interval = Duration{0};
  target.slab_stats_interval = Duration{0};
  auto collector = std::make_shared<MemcachedCollector>(io, std::vector<TargetConfig>{target},
                                                        MemcachedTiming::for_interval(1s));
  std::optional<Status> ended;
  const auto run = [&](Duration wait) {
    ended.reset();
    collector->collect([&](const Status& s) { ended = s; });
    const auto end = std::chrono::steady_clock::now() + wait;
    while (!ended && std::chrono::steady_clock::now() < end) io.run_one_for(10ms);
  };
  run(10s);
  REQUIRE(ended);
  REQUIRE(ended->ok());
  // The first sample names memcached's listeners from the settings it brought.
  const MemcachedSample& first = collector->samples().at(0);
  REQUIRE(first.listen_endpoints);
  REQUIRE(first.listen_endpoints->size() == 1);
  CHECK(first.listen_endpoints->front().port == target.address.port);

  mc.pause();
  run(200ms);  // well before its 1 s deadline
  REQUIRE_FALSE(ended);
  collector->overdue();
  REQUIRE(ended);  // before overdue() returned
  CHECK_THAT(ended->error().message, Contains("stats failed on mc"));
  const MemcachedSample& s = collector->samples().at(0);
  CHECK_FALSE(s.up);
  CHECK_THAT(s.error, Contains("no reply to stats by the next sample"));
  collector->overdue();  // nothing in flight: nothing happens

  mc.resume();
  run(10s);
  REQUIRE(ended);
  CHECK(ended->ok());
  CHECK(collector->samples().at(0).up);
  collector->stop();
}

TEST_CASE(
    "memcached collector: on a connection that stays, stats settings once a minute of the loop's "
    "clock and the probe every probe_interval of it",
    "[integration][memcached][clock]") {
  test::enter_private_netns();
  std::atomic<int> stats_asked{0};
  std::atomic<int> settings_asked{0};
  std::atomic<int> closed{0};  // connections the client closed: the probes that ended
  test::FakeServer mc([&](test::FakeConnection& c) {
    struct Closed {
      std::atomic<int>& n;
      ~Closed() { ++n; }
    } count_closed{closed};
    while (auto line = c.read_line()) {
      std::string reply = "ERROR\r\n";
      if (*line == "stats") {
        ++stats_asked;
        reply = "STAT pid 7\r\nSTAT uptime 100\r\nSTAT curr_connections 2\r\nEND\r\n";
      } else if (*line == "stats settings") {
        ++settings_asked;
        reply = "STAT maxconns 1024\r\nSTAT tcp_backlog 256\r\nEND\r\n";
      } else if (*line == "version") {
        reply = "VERSION fake\r\n";
      }
      if (!c.send(reply)) return;
    }
  });
  ManualTime time;
  boost::asio::io_context io;
  TargetConfig target;
  target.name = "mc";
  target.address = endpoint(mc.address());
  target.probe_interval = 10s;
  target.slab_stats_interval = Duration{0};
  auto collector = std::make_shared<MemcachedCollector>(io, std::vector<TargetConfig>{target},
                                                        MemcachedTiming::for_interval(1s));
  // One run per second of the manual clock; the replies come over real sockets meanwhile. The
  // clock moves 10 s in far less real time than a probe can take, and a probe still out when the
  // next is due skips it: before each probe is due, the one before has ended.
  int second = 0;
  auto run = [&] {
    bool done = false;
    collector->collect([&](const Status&) { done = true; });
    const auto end = std::chrono::steady_clock::now() + 20s;
    while (!done && std::chrono::steady_clock::now() < end) io.run_one_for(10ms);
    REQUIRE(done);
    REQUIRE(collector->samples().at(0).up);
    if (++second % 10 == 0) {
      while (closed.load() < second / 10 && std::chrono::steady_clock::now() < end) {
        io.run_one_for(10ms);
      }
      REQUIRE(closed.load() == second / 10);
    }
    time.advance(1s);
  };
  for (int i = 0; i < 59; ++i) run();
  CHECK(stats_asked.load() == 59);
  CHECK(settings_asked.load() == 1);  // with the first write
  CHECK(collector->samples().at(0).settings->tcp_backlog == 256);
  // The probe ran at 0 s and every 10 s of the manual clock since, each on a connection of its
  // own beside the one stats connection: 6 times by 59 s.
  const auto probes_done = [&] { return mc.connections() - 1; };
  const auto settle = std::chrono::steady_clock::now() + 20s;
  while (probes_done() < 6 && std::chrono::steady_clock::now() < settle) io.run_one_for(10ms);
  CHECK(probes_done() == 6);
  for (int i = 0; i < 3; ++i) run();
  CHECK(settings_asked.load() == 2);  // a minute after the first answer
  CHECK(collector->samples().at(0).settings->tcp_backlog == 256);
  collector->stop();
}
