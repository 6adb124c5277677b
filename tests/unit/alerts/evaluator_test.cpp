// The evaluator over synthetic observations: collector samples built by hand, one per second of a
// fake clock, so every rule's timing is exact and no test sleeps.

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <catch2/catch.hpp>

#include <sstream>

#include "common/families.hpp"
#include "common/text.hpp"
#include "daemon/alerts/alerts_json.hpp"
#include "daemon/alerts/evaluator.hpp"
#include "daemon/alerts/rules.hpp"
#include "daemon/alerts/runbooks.hpp"
#include "tests/support/metrics_text.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Catch::Matchers::EndsWith;

namespace {

// A finished probe: succeeded with `version`, or failed with `error`, after `seconds`.
ProbeResult probe_result(bool success, double seconds, std::string version, std::string error,
                         FailureKind kind = FailureKind::kNone) {
  ProbeResult p;
  p.failure = kind;
  p.success = success;
  p.duration_seconds = seconds;
  p.version = std::move(version);
  p.error = std::move(error);
  return p;
}

MemcachedSample healthy_target(const std::string& name = "main",
                               const std::string& address = "127.0.0.1:11211") {
  MemcachedSample m;
  m.target = name;
  m.address = address;
  m.endpoint = *parse_target_address(address);
  m.up = true;
  MemcachedStats& s = m.stats;
  s.version = "1.6.18";
  s.pid = 100;
  s.uptime = 1000;
  s.curr_connections = 10;
  s.max_connections = 1024;
  s.reserved_fds = 20;  // 5 a thread; the effective limit is 1000 (-c less 23, less 1)
  s.total_connections = 1000;
  s.rejected_connections = 0;
  s.listen_disabled_num = 0;
  s.time_in_listen_disabled_us = 0;
  s.accepting_conns = 1;
  s.threads = 4;
  s.bytes = 1000000;
  s.limit_maxbytes = 64000000;
  s.evictions = 0;
  MemcachedSettings settings;
  settings.maxconns = 1024;
  settings.tcp_backlog = 1024;
  settings.maxconns_fast = true;
  settings.num_threads = 4;
  m.settings = settings;
  m.cpu_utilization_ratio = 0.1;
  m.probe_enabled = true;
  m.probe = probe_result(true, 0.0004, "1.6.18", "");
  return m;
}

ListenerSample listener(const std::string& address, std::uint16_t port, std::uint32_t max) {
  ListenerSample l;
  l.address = address;
  l.port = port;
  l.listening = true;
  l.queue_max = max;
  for (const char* state : {"established", "syn_sent", "syn_recv", "fin_wait1", "fin_wait2",
                            "time_wait", "close", "close_wait", "last_ack", "closing"}) {
    l.connections[state] = 0;
  }
  return l;
}

// Sets the listener's established connections from `clients` (address, count).
void hold(ListenerSample& l, const std::vector<std::pair<std::string, std::uint64_t>>& clients) {
  l.top_clients.clear();
  std::uint64_t total = 0;
  for (const auto& [client, n] : clients) {
    l.top_clients.push_back({client, n});
    total += n;
  }
  l.connections["established"] = total;
  l.clients = clients.size();
}

// A host with one healthy memcached behind a wildcard listener, a NIC, and the kernel's counters.
// Each step is one second of a fake clock; counters advance only when a test changes them.
// The default logger writes into this while it lives, then the previous one is put back.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_st>(text_)));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  std::string str() const { return text_.str(); }
  void clear() { text_.str(""); }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::logger> previous_;
};

class Run {
 public:
  Evaluator e{default_config().thresholds};
  NetstatSample netstat;
  SysctlSample sysctl;
  std::vector<MemcachedSample> targets{healthy_target()};
  SockdiagSample sockets;
  NetdevSample netdev;
  CpuSample cpu;
  SoftnetSample softnet;
  MemcachedThreadsSample threads;
  bool sockets_known = true;
  bool host_known = false;  // the cpu, softnet and thread samples are given to the evaluator
  bool probing = true;      // each step counts one successful probe of every target

  Run() {
    netstat.listen_overflows = 0;
    netstat.listen_drops = 0;
    sysctl.somaxconn = 4096;
    sockets.listeners.push_back(listener("0.0.0.0", 11211, 1024));
    hold(sockets.listeners[0], {{"10.0.0.5", 6}, {"10.0.0.6", 4}});
    NetdevDevice eth0;
    eth0.counters.device = "eth0";
    eth0.speed_bytes = 125000000;
    eth0.receive_utilization = 0.1;
    eth0.transmit_utilization = 0.05;
    netdev.devices.push_back(eth0);
  }

  // One second passes and the evaluator sees the samples.
  void step(int seconds = 1) {
    for (int i = 0; i < seconds; ++i) step_after(std::chrono::seconds(1));
  }
  // `elapsed` passes and the evaluator sees the samples.
  void step_after(std::chrono::milliseconds elapsed) {
    t_ += elapsed;
    for (MemcachedSample& m : targets) {
      if (probing && m.probe && m.probe->success) m.probe_latency.observe(0.0004);
    }
    e.evaluate(observe(now(), wall(), &netstat, &sysctl, targets,
                       sockets_known ? &sockets : nullptr, &netdev,
                       host_known ? HostSamples{&cpu, &softnet, &threads} : HostSamples{}));
  }
  std::chrono::steady_clock::time_point now() const {
    return std::chrono::steady_clock::time_point{} + std::chrono::hours(48) + t_;
  }
  std::chrono::system_clock::time_point wall() const {
    return std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 20000) + t_;
  }
  MemcachedSample& target(std::size_t i = 0) { return targets.at(i); }
  MemcachedStats& stats(std::size_t i = 0) { return targets.at(i).stats; }
  ListenerSample& listener0() { return sockets.listeners.at(0); }
  // memcached's listener on 127.0.0.1:`port` (max queue 4, its drop counter at 0), alone.
  void listening_on(std::uint16_t port) {
    sockets.listeners = {listener("127.0.0.1", port, 4)};
    listener0().drops = 0;
  }
  // `n` listen overflows in this namespace, each a listen drop too.
  void overflow(int n) {
    *netstat.listen_overflows += n;
    *netstat.listen_drops += n;
  }

  const AlertStatus& status(std::string_view alert,
                            const AlertLabels& labels = {{"target", "main"}}) {
    for (const AlertStatus& a : e.statuses()) {
      if (a.name == alert && a.labels == labels) return a;
    }
    FAIL("no status for " << alert);
    return e.statuses().front();
  }
  Level state(std::string_view alert, const AlertLabels& labels = {{"target", "main"}}) {
    return status(alert, labels).state;
  }
  Level condition(std::string_view alert, const AlertLabels& labels = {{"target", "main"}}) {
    return status(alert, labels).condition;
  }
  std::string evidence(std::string_view alert, const AlertLabels& labels = {{"target", "main"}}) {
    const auto& st = status(alert, labels);
    return st.verdict ? st.verdict->evidence : "";
  }

 private:
  std::chrono::milliseconds t_{0};
};

const AlertLabels kHost{};
AlertLabels eth0() { return {{"device", "eth0"}}; }

}  // namespace

TEST_CASE("evaluator: a healthy memcached host fires nothing", "[alerts][evaluator]") {
  Run r;
  for (int i = 0; i < 120; ++i) {
    *r.stats().total_connections += 1;  // one new client a second
    r.step();
  }
  CHECK(r.e.worst() == Level::kOk);
  CHECK(r.e.worst_condition() == Level::kOk);
  CHECK(r.e.statuses().size() == kAlertCount);  // every alert of the table, for its subject
}

TEST_CASE("evaluator: MaxConnectionsNear fires after its for duration and clears with hysteresis",
          "[alerts][evaluator]") {
  Run r;
  r.stats().curr_connections = 850;  // 0.85 of the effective 1000
  r.step(5);
  // Like Prometheus: the condition must still hold `for` (5 s) after the first sample that met it.
  CHECK(r.state("MaxConnectionsNear") == Level::kOk);
  // The condition is named at once, pending.
  CHECK(r.condition("MaxConnectionsNear") == Level::kWarning);
  CHECK(r.status("MaxConnectionsNear").pending());
  CHECK(r.status("MaxConnectionsNear").active_since.has_value());
  r.step(1);
  CHECK(r.state("MaxConnectionsNear") == Level::kWarning);
  CHECK_THAT(r.evidence("MaxConnectionsNear"),
             Contains("850 connections of an effective limit of 1000 (-c 1024 less 23 descriptors "
                      "memcached holds itself with 4 worker threads, and 1 it answers refusals "
                      "on): 85%"));
  r.stats().curr_connections = 960;
  r.step(6);
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
  r.stats().curr_connections = 780;  // under warning, above clear 0.75: still warning
  r.step();
  CHECK(r.state("MaxConnectionsNear") == Level::kWarning);
  r.stats().curr_connections = 700;
  r.step();
  CHECK(r.state("MaxConnectionsNear") == Level::kOk);
  CHECK(r.condition("MaxConnectionsNear") == Level::kOk);
  CHECK_FALSE(r.status("MaxConnectionsNear").active_since.has_value());
}

TEST_CASE("evaluator: a brief spike shorter than for does not fire", "[alerts][evaluator]") {
  Run r;
  r.stats().curr_connections = 990;
  r.step(3);
  r.stats().curr_connections = 10;
  r.step();
  r.stats().curr_connections = 990;
  r.step(3);
  CHECK(r.state("MaxConnectionsNear") == Level::kOk);
  CHECK(r.condition("MaxConnectionsNear") == Level::kCritical);
}

TEST_CASE("evaluator: rejections rising make MaxConnectionsNear critical at once for the window",
          "[alerts][evaluator]") {
  Run r;
  r.step(10);
  r.stats().curr_connections = 995;
  r.stats().rejected_connections = 3;
  r.step();
  // The limit is being hit: no `for` to wait out.
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
  CHECK_THAT(r.evidence("MaxConnectionsNear"),
             Contains("3 connections rejected with \"ERROR Too many open connections\""));
  r.stats().curr_connections = 500;
  r.step(55);  // still inside the 60 s window
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
  r.step(10);
  CHECK(r.state("MaxConnectionsNear") == Level::kOk);
}

TEST_CASE("evaluator: a listener disabled by memcached is critical", "[alerts][evaluator]") {
  Run r;
  r.step(5);
  r.stats().curr_connections = 41;
  r.stats().max_connections = 64;
  r.stats().reserved_fds = 20;
  r.target().settings->maxconns_fast = false;
  r.stats().rejected_connections.reset();  // absent with -o no_maxconns_fast
  r.stats().listen_disabled_num = 1;
  r.stats().accepting_conns = 0;
  r.listener0().queue_max = 0;
  r.step();
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
  const std::string e = r.evidence("MaxConnectionsNear");
  CHECK_THAT(e, Contains("memcached stopped accepting 1 time in"));
  CHECK_THAT(e, Contains("memcached is not accepting now"));
  CHECK_THAT(e, Contains("listener 0.0.0.0:11211 has a max queue of 0"));
  // A max queue of 0 is never divided by.
  CHECK(r.state("AcceptQueueFilling") == Level::kOk);
}

TEST_CASE("evaluator: memcached without max_connections in stats uses maxconns of its settings",
          "[alerts][evaluator]") {
  // memcached 1.4.15: `stats` has no max_connections or reserved_fds; `stats settings` says
  // maxconns 64. At its limit with no_maxconns_fast it stops accepting.
  Run r;
  MemcachedStats& s = r.stats();
  s.max_connections.reset();
  s.reserved_fds.reset();
  s.rejected_connections.reset();
  r.target().settings->maxconns = 64;
  r.target().settings->maxconns_fast.reset();
  s.curr_connections = 44;
  r.step(3);
  s.accepting_conns = 0;
  s.listen_disabled_num = 3;
  r.step();
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
  // Without maxconns_fast no descriptor is kept for refusals.
  CHECK(r.status("MaxConnectionsNear").verdict->value == Approx(44.0 / 41));
  CHECK_THAT(r.evidence("MaxConnectionsNear"),
             Contains("44 connections of an effective limit of 41 (-c 64 less 23 descriptors "
                      "memcached holds itself with 4 worker threads): "));
}

TEST_CASE("evaluator: a rejection counter the daemon's own probes contradict stays a warning",
          "[alerts][evaluator]") {
  // A compatible server's rejected_connections climbs while every fresh connection is served and
  // only 1% of the limit is used.
  Run r;
  r.step(5);
  for (int i = 0; i < 10; ++i) {
    *r.stats().rejected_connections += 5;
    r.step();
  }
  CHECK(r.state("MaxConnectionsNear") == Level::kWarning);
  const std::string e = r.evidence("MaxConnectionsNear");
  CHECK_THAT(e, Contains("50 connections rejected"));
  CHECK_THAT(e, Contains("contradicts what mcbacklogd observed"));
  // Once a probe fails too, the counter is believed.
  r.target().probe = probe_result(
      false, 1, "", "memcached replied: ERROR Too many open connections", FailureKind::kAtLimit);
  ++r.target().probe_failures;
  *r.stats().rejected_connections += 5;
  r.step();
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
}

TEST_CASE("evaluator: a memcached restart resets counters without a spike", "[alerts][evaluator]") {
  Run r;
  r.stats().rejected_connections = 500;  // rejections long ago, before the daemon watched
  r.stats().evictions = 1000000;
  r.step(70);
  CHECK(r.state("MaxConnectionsNear") == Level::kOk);
  // Restart: counters and uptime start over.
  r.stats().rejected_connections = 0;
  r.stats().evictions = 0;
  r.stats().total_connections = 2;
  r.stats().uptime = 1;
  r.step();
  r.stats().uptime = 2;
  r.step(10);
  CHECK(r.state("MaxConnectionsNear") == Level::kOk);
  CHECK(r.state("ConnectionSprawl") == Level::kOk);
  // New rejections after the restart count: at once, at the limit.
  r.stats().curr_connections = 995;
  r.stats().rejected_connections = 2;
  r.step();
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
  CHECK_THAT(r.evidence("MaxConnectionsNear"), Contains("2 connections rejected"));
}

TEST_CASE(
    "evaluator: a target that stops answering fires MemcachedDown, not alerts on stale numbers",
    "[alerts][evaluator]") {
  Run r;
  r.target().cpu_utilization_ratio = 0.99;
  r.stats().curr_connections = 990;
  r.step(40);
  CHECK(r.state("MemcachedCpuSaturated") == Level::kCritical);
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
  // memcached dies: the stats connection fails and so does the probe.
  MemcachedSample down;
  down.target = "main";
  down.address = "127.0.0.1:11211";
  down.endpoint = *parse_target_address(down.address);
  down.error = "connect to 127.0.0.1:11211: Connection refused";
  down.probe_enabled = true;
  down.probe = probe_result(false, 0.001, "", "connect to 127.0.0.1:11211: Connection refused");
  r.target() = down;
  r.step();
  CHECK(r.state("MemcachedCpuSaturated") == Level::kOk);
  CHECK(r.state("MaxConnectionsNear") == Level::kOk);
  CHECK(r.status("MaxConnectionsNear").verdict == std::nullopt);
  CHECK(r.state("ProbeSlow") == Level::kOk);  // MemcachedDown says it; no second page
  CHECK(r.state("MemcachedDown") == Level::kOk);
  CHECK(r.condition("MemcachedDown") == Level::kCritical);
  r.step(5);
  CHECK(r.state("MemcachedDown") == Level::kCritical);
  CHECK_THAT(r.status("MemcachedDown").remediation, Contains("read its log"));
}

TEST_CASE("evaluator: stats failing alone is not MemcachedDown while the probe succeeds",
          "[alerts][evaluator]") {
  Run r;
  r.target().up = false;
  r.target().error = "no reply to stats within 500ms";
  r.step(20);
  CHECK(r.state("MemcachedDown") == Level::kOk);
  r.target().probe->success = false;
  r.target().probe->error = "no reply to version by the deadline";
  r.step(6);
  CHECK(r.state("MemcachedDown") == Level::kCritical);
  r.target().up = true;
  r.step();
  CHECK(r.state("MemcachedDown") == Level::kOk);
}

TEST_CASE("evaluator: a server that does not speak the text protocol is named, with its fix",
          "[alerts][evaluator]") {
  Run r;
  r.target().up = false;
  r.target().error = "connection accepted, then closed without a text reply";
  r.target().failure = FailureKind::kNotTextProtocol;
  r.target().probe =
      probe_result(false, 0.002, "", r.target().error, FailureKind::kNotTextProtocol);
  r.step(6);
  CHECK(r.state("MemcachedDown") == Level::kCritical);
  const std::string fix = r.status("MemcachedDown").remediation;
  CHECK_THAT(fix, Contains("-B auto"));
  CHECK_THAT(fix, Contains("notls:"));
  CHECK_THAT(fix, !Contains("read its log"));
  // The evidence says what was seen and what usually causes it.
  const std::string evidence = r.evidence("MemcachedDown");
  CHECK_THAT(evidence, Contains("connection accepted, then closed without a text reply"));
  CHECK_THAT(evidence, Contains("accepted the connection but sent no text reply"));
  CHECK_THAT(evidence, Contains("-B binary"));
}

TEST_CASE("evaluator: the fix follows the failure's kind, whatever its message says",
          "[alerts][evaluator]") {
  Run r;
  r.target().up = false;
  // A message that reads like another kind: the kind decides.
  r.target().error = "connect to 127.0.0.1:11211: Permission denied (not text protocol)";
  r.target().failure = FailureKind::kUnreachable;
  r.target().probe = probe_result(false, 0.0001, "", r.target().error, FailureKind::kUnreachable);
  r.step(6);
  CHECK(r.state("MemcachedDown") == Level::kCritical);
  CHECK_THAT(r.status("MemcachedDown").remediation, !Contains("-B auto"));
  CHECK_THAT(r.status("MemcachedDown").remediation, !Contains("-a 0770"));
  CHECK_THAT(r.evidence("MemcachedDown"), !Contains("sent no text reply"));
  // Only the probe saw a listener without the text protocol: that is named too.
  r.target().probe =
      probe_result(false, 0.002, "", "connection accepted, then closed without a text reply",
                   FailureKind::kNotTextProtocol);
  r.step();
  CHECK_THAT(r.status("MemcachedDown").remediation, Contains("-B auto"));
}

TEST_CASE("evaluator: a unix socket refused with Permission denied names its mode and -a",
          "[alerts][evaluator]") {
  Run r;
  r.targets = {healthy_target("sock", "unix:/run/memcached/memcached.sock")};
  r.target().up = false;
  r.target().error = "connect to unix:/run/memcached/memcached.sock: Permission denied";
  r.target().failure = FailureKind::kPermissionDenied;
  r.target().probe =
      probe_result(false, 0.0001, "", r.target().error, FailureKind::kPermissionDenied);
  r.step(6);
  const AlertLabels sock{{"target", "sock"}};
  CHECK(r.state("MemcachedDown", sock) == Level::kCritical);
  CHECK_THAT(r.status("MemcachedDown", sock).remediation, Contains("-a 0770"));
}

TEST_CASE("evaluator: a fresh connection not served while stats answers is ProbeSlow critical",
          "[alerts][evaluator]") {
  Run r;
  r.target().probe->duration_seconds = 0.25;
  r.step(10);
  CHECK(r.state("ProbeSlow") == Level::kOk);  // `for` 10 s
  r.step(1);
  CHECK(r.state("ProbeSlow") == Level::kWarning);
  r.target().probe = probe_result(false, 2, "", "no reply to version by the deadline");
  r.step(11);
  CHECK(r.state("ProbeSlow") == Level::kCritical);
  CHECK_THAT(r.evidence("ProbeSlow"), Contains("a fresh connection was not served"));
  CHECK_THAT(r.evidence("ProbeSlow"), Contains("its accept queue is full"));
  // A reply that is not memcached's is no queue's doing: the evidence says what it is.
  r.target().probe = probe_result(false, 0.01, "", "unexpected reply to version: \"HELLO\"",
                                  FailureKind::kProtocol);
  r.step();
  CHECK(r.state("ProbeSlow") == Level::kCritical);
  CHECK_THAT(r.evidence("ProbeSlow"), Contains("the peer answers in text, but not as memcached"));
  CHECK_THAT(r.evidence("ProbeSlow"), !Contains("accept queue"));
  r.target().probe = probe_result(true, 0.001, "1.6.18", "");
  r.step();
  CHECK(r.state("ProbeSlow") == Level::kOk);
}

TEST_CASE("evaluator: overflows at memcached's full listener are ListenQueueOverflow critical",
          "[alerts][evaluator]") {
  Run r;
  r.step(5);
  r.listener0().queue_length = 1024;
  r.listener0().queue_peak = 1024;
  for (int i = 0; i < 10; ++i) {
    *r.netstat.listen_overflows += 20;
    *r.netstat.listen_drops += 20;
    r.step();
  }
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kCritical);
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("memcached's listener overflowed: 0.0.0.0:11211 reached its max queue (peak "
                      "1024 of 1024)"));
  CHECK(r.state("AcceptQueueFilling") == Level::kCritical);
  // Quiet again: the burst stays visible for the window, then clears.
  r.listener0().queue_length = 0;
  r.listener0().queue_peak = 0;
  r.step(55);
  CHECK(r.state("ListenQueueOverflow", kHost) != Level::kOk);
  r.step(10);
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kOk);
}

TEST_CASE("evaluator: overflows on another listener are a warning that says so",
          "[alerts][evaluator]") {
  Run r;
  r.step(5);
  r.listener0().queue_peak = 3;
  for (int i = 0; i < 10; ++i) {
    *r.netstat.listen_overflows += 50;
    r.step();
  }
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kWarning);
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("the overflows are on another listener of this host"));
  // The fix matches: memcached's -b and somaxconn are not the cause.
  const std::string fix = r.status("ListenQueueOverflow", kHost).remediation;
  CHECK_THAT(fix, Contains("not watch"));
  CHECK_THAT(fix, !Contains("raise"));
  CHECK(r.state("AcceptQueueFilling") == Level::kOk);
}

TEST_CASE("evaluator: a listener's own drop counter joins overflows to it, however short the burst",
          "[alerts][evaluator]") {
  Run r;
  r.listener0().drops = 7;  // drops before the daemon watched are not blamed
  r.step(5);
  // A burst overflows memcached's listener between two samples: no sampled peak saw it full.
  *r.netstat.listen_overflows += 100;
  *r.netstat.listen_drops += 100;
  r.listener0().drops = 107;
  r.step();
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kCritical);
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("memcached's listener overflowed: 0.0.0.0:11211 dropped 100 connections in "
                      "the last 1m"));
  r.step(61);
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kOk);
  // Overflows while its own counter stands still are another listener's, whatever its peak.
  r.listener0().queue_peak = 1024;
  *r.netstat.listen_overflows += 100;
  r.step();
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kWarning);
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("no watched memcached listener overflowed (0.0.0.0:11211 peak 1024 of 1024, "
                      "no drops): the overflows are on another listener of this host"));
}

TEST_CASE(
    "evaluator: ListenQueueOverflow is graded on memcached's own drops when another service "
    "overflows beside it",
    "[alerts][evaluator]") {
  Run r;
  r.listener0().drops = 0;
  r.step(5);
  // Another service drops 290 in the same namespace while memcached's listener drops 3.
  r.overflow(293);
  r.listener0().drops = 3;
  r.step();
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kWarning);
  CHECK(r.status("ListenQueueOverflow", kHost).verdict->value == Approx(3));
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("0.0.0.0:11211 dropped 3 connections in the last 1m") &&
                 Contains("graded on memcached's 3: the other 290 are on another listener of this "
                          "host"));
  // memcached's own drops reach the critical level: it pages, whatever the others add.
  r.overflow(100);
  r.listener0().drops = 63;
  r.step();
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kCritical);
  CHECK(r.status("ListenQueueOverflow", kHost).verdict->value == Approx(63));
}

TEST_CASE(
    "evaluator: a listener blamed for its queue alone (no drop counter) keeps the namespace's "
    "count",
    "[alerts][evaluator]") {
  Run r;  // its listener has no drop counter
  r.step(5);
  r.listener0().queue_peak = 1024;
  r.listener0().queue_length = 1024;
  *r.netstat.listen_overflows += 293;
  r.step();
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kCritical);
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost), !Contains("graded on"));
}

TEST_CASE("evaluator: what a listener dropped before memcached left it stays memcached's",
          "[alerts][evaluator]") {
  // memcached overflows on 11212, then restarts listening on 11213 only: the overflows of the
  // window were its own, not another service's.
  Run r;
  r.listening_on(11212);
  r.step(5);
  r.overflow(100);
  r.listener0().drops = 100;
  r.step();
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kCritical);
  r.listening_on(11213);
  r.step(5);
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kCritical);
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("memcached's listener overflowed: 127.0.0.1:11212, no longer listening, "
                      "dropped 100 connections in the last 1m"));
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost), !Contains("another listener"));
  // A sample without the listeners (a dump that failed) makes no listener gone.
  r.sockets_known = false;
  r.step();
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost), !Contains("no longer listening"));
  r.sockets_known = true;
  // Once the window has passed, the overflows and the listener that took them are forgotten.
  r.step(61);
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kOk);
  *r.netstat.listen_overflows += 5;
  r.step();
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("the overflows are on another listener of this host"));
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost), !Contains("11212"));
}

TEST_CASE("evaluator: a listener memcached named late counts what it dropped since it opened",
          "[alerts][evaluator]") {
  // memcached -l 127.0.0.1:11211,127.0.0.1:11212, stalled when the daemon started: its settings,
  // which name the second listener, come once it answers, after that listener overflowed.
  // The second listener has dropped `drops` since it opened when the settings name it.
  auto named_late = [](Run& r, std::uint64_t drops) {
    r.listening_on(11211);
    r.step(5);
    r.overflow(95);
    r.step();
    CHECK(r.state("ListenQueueOverflow", kHost) == Level::kWarning);
    r.sockets.listeners.push_back(listener("127.0.0.1", 11212, 4));
    r.sockets.listeners[1].drops = drops;
    r.step();
  };
  Run r;
  named_late(r, 95);
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kCritical);
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("memcached's listener overflowed: 127.0.0.1:11212 dropped 95 connections "
                      "in the last 1m, 95 of them before it was first watched"));

  // More than the window's drops: some are older than the window, so none is blamed on it; the
  // evidence says the overflows may be memcached's all the same.
  Run old;
  named_late(old, 500);
  CHECK(old.state("ListenQueueOverflow", kHost) == Level::kWarning);
  CHECK_THAT(old.evidence("ListenQueueOverflow", kHost),
             Contains("but not all of memcached's listeners were watched for the whole window "
                      "(127.0.0.1:11212 had dropped 500 when first watched within it): the "
                      "overflows may be "
                      "memcached's"));
  CHECK_THAT(old.evidence("ListenQueueOverflow", kHost), !Contains("another listener"));
  CHECK_THAT(old.status("ListenQueueOverflow", kHost).remediation, Contains("restarted"));

  // Named late without a drop: every drop of it was seen, so the overflows are another's.
  Run clean;
  named_late(clean, 0);
  CHECK(clean.state("ListenQueueOverflow", kHost) == Level::kWarning);
  CHECK_THAT(clean.evidence("ListenQueueOverflow", kHost),
             Contains("the overflows are on another listener of this host"));

  // Named late with drops from before the host counted any: they are older than the overflows
  // that come after, which are another service's.
  Run older;
  older.listening_on(11211);
  older.step(5);
  older.sockets.listeners.push_back(listener("127.0.0.1", 11212, 4));
  older.sockets.listeners[1].drops = 190;
  older.step();
  older.overflow(290);
  older.step();
  CHECK(older.state("ListenQueueOverflow", kHost) == Level::kWarning);
  CHECK_THAT(older.evidence("ListenQueueOverflow", kHost),
             Contains("the overflows are on another listener of this host"));
}

TEST_CASE("evaluator: overflows while memcached's listener closed unseen are not another's",
          "[alerts][evaluator]") {
  // memcached stalls, its listener overflows and memcached is killed between two samples: no
  // sample saw the listener's drops.
  Run r;
  r.listening_on(11212);
  r.step(5);
  r.overflow(95);
  r.sockets.listeners.clear();
  r.step();
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kWarning);
  std::string e = r.evidence("ListenQueueOverflow", kHost);
  CHECK_THAT(e, Contains("no watched memcached listener is open, but not all of memcached's "
                         "listeners were watched for the whole window (127.0.0.1:11212 closed)"));
  CHECK_THAT(e, !Contains("unknown"));
  CHECK_THAT(e, !Contains("another listener"));
  // It restarts on another port.
  r.listening_on(11213);
  r.step();
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost), Contains("(127.0.0.1:11212 closed)"));
  // Closed with the host's drops unchanged after it: later overflows are another service's.
  Run clean;
  clean.listening_on(11212);
  clean.step(5);
  clean.sockets.listeners.clear();
  clean.step(20);
  clean.overflow(95);
  clean.step();
  CHECK_THAT(clean.evidence("ListenQueueOverflow", kHost),
             Contains("no watched memcached listener is open: the overflows are on another "
                      "listener of this host"));
  // Without the listeners at all (a dump that failed) the evidence says they are unknown.
  r.sockets_known = false;
  r.step();
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("the listeners' own queues are unknown"));
}

TEST_CASE(
    "evaluator: memcached's own count is not graded when one of its listeners dropped some unseen",
    "[alerts][evaluator]") {
  // Its listener drops 20 (read), then 61 more while memcached stalls, and it is killed before
  // the next sample: all 81 were memcached's, though its counter showed 20.
  Run r;
  r.listening_on(11211);
  r.step(5);
  r.overflow(20);
  r.listener0().drops = 20;
  r.step();
  r.overflow(61);
  r.sockets.listeners.clear();
  r.step();
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kCritical);
  const std::string e = r.evidence("ListenQueueOverflow", kHost);
  CHECK_THAT(e, Contains("graded on the namespace's count: not all of memcached's listeners were "
                         "watched for the whole window (127.0.0.1:11211 closed)"));
  CHECK_THAT(e, !Contains("graded on memcached's"));
}

TEST_CASE(
    "evaluator: a listener opened anew on the same port between samples may have dropped "
    "unseen",
    "[alerts][evaluator]") {
  // memcached restarts on the same port within one sample while the namespace drops 95: the old
  // socket's last drops were never read, and the new one's counter began again.
  Run r;
  r.listening_on(11211);
  r.listener0().drops = 40;
  r.step(5);
  r.overflow(95);
  r.listener0().drops = 0;
  r.step();
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kWarning);
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("(127.0.0.1:11211 was opened anew (its drop counter began again)): the "
                      "overflows may be memcached's"));
  // Opened anew while the namespace dropped nothing: later overflows are another service's.
  Run clean;
  clean.listening_on(11211);
  clean.listener0().drops = 40;
  clean.step(5);
  clean.listener0().drops = 0;
  clean.step(5);
  clean.overflow(95);
  clean.step();
  CHECK_THAT(clean.evidence("ListenQueueOverflow", kHost),
             Contains("the overflows are on another listener of this host"));
}

TEST_CASE("evaluator: an alert a peer makes flap logs 5 changes a minute, then its state",
          "[alerts][evaluator]") {
  CapturedLog log;
  // A memcached-compatible server whose accepting_conns flips every sample.
  Run r;
  r.step(5);
  for (int i = 0; i < 20; ++i) {
    r.stats().accepting_conns = i % 2;
    r.step();
  }
  const std::string flapping = log.str();
  r.step(11);
  const std::string all = log.str();
  auto count = [](const std::string& text) {
    std::size_t n = 0;
    for (std::size_t at = text.find("alert MaxConnectionsNear"); at != std::string::npos;
         at = text.find("alert MaxConnectionsNear", at + 1)) {
      ++n;
    }
    return n;
  };
  CHECK(count(flapping) == 5);
  // Once it has held for 10 s, the state it settled in is logged with the count left out.
  CHECK(count(all) == 6);
  CHECK_THAT(all, Contains("alert MaxConnectionsNear{target=\"main\"} is ok (after 15 changes "
                           "not logged: it flaps)"));
}

TEST_CASE("evaluator: a sample or two without data keeps a firing alert, more clear it",
          "[alerts][evaluator]") {
  Run r;
  r.step(5);
  r.stats().curr_connections = 990;  // of an effective limit of 1000
  r.step(6);
  REQUIRE(r.state("MaxConnectionsNear") == Level::kCritical);
  // memcached does not answer stats in time, twice, while the probe still succeeds.
  r.target().up = false;
  r.target().error = "no reply to stats by the next sample";
  r.target().failure = FailureKind::kNoReply;
  r.step(AlertTrack::kNoDataHeld);
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
  CHECK(r.condition("MaxConnectionsNear") == Level::kCritical);
  const std::string held = r.evidence("MaxConnectionsNear");
  CHECK_THAT(held, Contains("990 connections"));
  CHECK_THAT(held, EndsWith("; no data since: the last verdict with data stands"));
  CHECK(held.find("no data since") == held.rfind("no data since"));
  r.target().up = true;
  r.step();
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
  // No data for longer clears it: numbers that cannot be measured keep nothing firing.
  r.target().up = false;
  r.step(AlertTrack::kNoDataHeld + 1);
  CHECK(r.state("MaxConnectionsNear") == Level::kOk);
  CHECK_FALSE(r.status("MaxConnectionsNear").verdict.has_value());
}

TEST_CASE("evaluator: each change of an alert's state is logged with its evidence",
          "[alerts][evaluator]") {
  CapturedLog log;
  Run r;
  r.step(5);
  CHECK(log.str().empty());
  // memcached at its limit with -o no_maxconns_fast stopped accepting: critical at once.
  r.stats().curr_connections = 41;
  r.stats().max_connections = 64;
  r.stats().reserved_fds = 20;
  r.target().settings->maxconns_fast = false;
  r.stats().rejected_connections.reset();
  r.stats().listen_disabled_num = 1;
  r.stats().accepting_conns = 0;
  r.listener0().queue_max = 0;
  r.step();
  r.step();
  const std::string fired = log.str();
  CHECK_THAT(fired, Contains("[warning] alert MaxConnectionsNear{target=\"main\"} is critical "
                             "(was ok): "));
  // Logged once, when the state changed, not every evaluation it holds.
  const std::string line = "alert MaxConnectionsNear{target=\"main\"}";
  CHECK(fired.find(line) == fired.rfind(line));
  log.clear();
  r.stats().curr_connections = 5;
  r.stats().accepting_conns = 1;
  r.listener0().queue_max = 1024;
  r.step(70);
  CHECK_THAT(log.str(), Contains("[info] alert MaxConnectionsNear{target=\"main\"} is ok (was "));
}

TEST_CASE("evaluator: the other listeners memcached says it has (-l) are its own",
          "[alerts][evaluator]") {
  Run r;
  // memcached -l 127.0.0.1:11211,127.0.0.1:11212 -b 4, and another service on 9999.
  std::vector<Endpoint> endpoints = {*parse_target_address("127.0.0.1:11211"),
                                     *parse_target_address("127.0.0.1:11212")};
  auto listens = [&r, &endpoints] {
    r.target().listen_endpoints = std::make_shared<const std::vector<Endpoint>>(endpoints);
  };
  listens();
  r.sockets.listeners = {listener("127.0.0.1", 11211, 4), listener("127.0.0.1", 11212, 4),
                         listener("127.0.0.1", 9999, 4)};
  for (ListenerSample& l : r.sockets.listeners) l.drops = 0;
  r.step(5);
  // The second port overflows: memcached's listener, critical at once, named.
  *r.netstat.listen_overflows += 100;
  *r.netstat.listen_drops += 100;
  r.sockets.listeners[1].drops = 100;
  r.sockets.listeners[1].queue_length = 5;
  r.sockets.listeners[1].queue_peak = 5;
  r.step();
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kCritical);
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("memcached's listener overflowed: 127.0.0.1:11212 dropped 100 connections"));
  CHECK(r.condition("AcceptQueueFilling") == Level::kCritical);
  CHECK_THAT(r.evidence("AcceptQueueFilling"), Contains("accept queue of 127.0.0.1:11212"));
  r.sockets.listeners[1].queue_length = 0;
  r.sockets.listeners[1].queue_peak = 0;
  r.step(61);
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kOk);

  // The other service's queue full is not memcached's.
  r.sockets.listeners[2].queue_length = 4;
  r.sockets.listeners[2].queue_peak = 4;
  r.step(2);
  CHECK(r.condition("AcceptQueueFilling") == Level::kOk);

  // A memcached-compatible server that names another user's listener gets nothing from it, nor
  // from every listener on a port of "*" but the wildcard ones, nor from a host name.
  endpoints.push_back(*parse_target_address("127.0.0.1:9999"));
  listens();
  r.sockets.listeners[0].uid = 110;
  r.sockets.listeners[1].uid = 110;
  r.sockets.listeners[2].uid = 33;
  r.step(2);
  CHECK(r.condition("AcceptQueueFilling") == Level::kOk);
  r.sockets.listeners[2].uid = 110;  // the same user: memcached's
  r.step(2);
  CHECK(r.condition("AcceptQueueFilling") == Level::kCritical);
  endpoints = {*parse_target_address("127.0.0.1:11211")};
  Endpoint every;
  every.port = 9999;
  endpoints.push_back(every);  // "*:9999": 127.0.0.1:9999 is no wildcard
  listens();
  r.step(2);
  CHECK(r.condition("AcceptQueueFilling") == Level::kOk);
  Endpoint named;
  named.host = "localhost";
  named.port = 9999;
  endpoints.back() = named;
  listens();
  r.step(2);
  CHECK(r.condition("AcceptQueueFilling") == Level::kOk);
  r.sockets.listeners[2].queue_length = 0;
  r.sockets.listeners[2].queue_peak = 0;

  // A target named by a host name takes none either: the listener on its port may be another's.
  r.target().endpoint = *parse_target_address("mc.example:11211");
  r.sockets.listeners[2].queue_length = 4;
  r.sockets.listeners[2].queue_peak = 4;
  endpoints = {*parse_target_address("127.0.0.1:11211"), *parse_target_address("127.0.0.1:9999")};
  listens();
  r.step(2);
  CHECK(r.condition("AcceptQueueFilling") == Level::kOk);
  r.target().endpoint = *parse_target_address("127.0.0.1:11211");
  r.sockets.listeners[2].queue_length = 0;
  r.sockets.listeners[2].queue_peak = 0;

  // A memcached not found listening here (another host) takes no listener by its settings.
  r.sockets.listeners.erase(r.sockets.listeners.begin());
  r.sockets.listeners[0].queue_length = 5;
  r.sockets.listeners[0].queue_peak = 5;
  r.step(2);
  CHECK(r.condition("AcceptQueueFilling") == Level::kOk);
}

TEST_CASE("evaluator: a listener memcached stopped accepting on overflows, and is not down",
          "[alerts][evaluator]") {
  Run r;
  r.step(5);
  // -o no_maxconns_fast at its limit: listen(fd, 0). A client without a connection yet (the
  // probe, or diagnose's stats) gets no answer; the kernel drops the rest. The kernel does not
  // report the listener's drops here, so its max queue of 0 is the evidence.
  r.target().up = false;
  r.target().error = "connect to 127.0.0.1:11211: no connection by the deadline";
  r.target().probe = probe_result(false, 1, "", r.target().error);
  r.target().settings->tcp_backlog = 8;
  r.listener0().queue_max = 0;
  r.listener0().queue_length = 1;
  for (int i = 0; i < 10; ++i) {
    *r.netstat.listen_overflows += 20;
    r.step();
  }
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kCritical);
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("memcached's listener overflowed: 0.0.0.0:11211 is not accepting (max queue "
                      "0)"));
  CHECK(r.state("MemcachedDown") == Level::kOk);
  CHECK_THAT(r.evidence("MemcachedDown"),
             Contains("its listener 0.0.0.0:11211 is open with a max queue of 0: memcached runs "
                      "and stopped accepting"));
  // The small backlog did not cause these overflows: the connection limit did.
  r.target().up = true;
  r.step();
  CHECK(r.state("SomaxconnTooLow") == Level::kWarning);
}

TEST_CASE("evaluator: AcceptQueueFilling grades the peak over the max", "[alerts][evaluator]") {
  Run r;
  r.listener0().queue_peak = 600;
  r.step(6);
  CHECK(r.state("AcceptQueueFilling") == Level::kWarning);
  CHECK_THAT(r.evidence("AcceptQueueFilling"), Contains("peaked at 600 of 1024 (59%)"));
  r.listener0().queue_peak = 900;
  r.step(6);
  CHECK(r.state("AcceptQueueFilling") == Level::kCritical);
  r.listener0().queue_peak = 450;  // under warning, above clear
  r.step();
  CHECK(r.state("AcceptQueueFilling") == Level::kWarning);
  r.listener0().queue_peak = 100;
  r.step();
  CHECK(r.state("AcceptQueueFilling") == Level::kOk);
  // A full queue drops handshakes now: critical at once.
  r.listener0().queue_peak = 1024;
  r.step();
  CHECK(r.state("AcceptQueueFilling") == Level::kCritical);
}

TEST_CASE("evaluator: ConnectionSprawl names the top clients on churn", "[alerts][evaluator]") {
  Run r;
  r.step(2);
  for (int i = 0; i < 40; ++i) {
    *r.stats().total_connections += 200;
    r.step();
  }
  CHECK(r.state("ConnectionSprawl") == Level::kWarning);
  const std::string e = r.evidence("ConnectionSprawl");
  CHECK(*r.status("ConnectionSprawl").verdict->value == Approx(200));
  CHECK_THAT(e, Contains("new connections/s over the last 10s (memcached total_connections)"));
  CHECK_THAT(e, Contains("10 connections established from 2 clients, most from 10.0.0.5 (6), "
                         "10.0.0.6 (4)"));
  r.step(40);  // churn stopped and its window passed
  CHECK(r.state("ConnectionSprawl") == Level::kOk);
}

TEST_CASE("evaluator: two samples milliseconds apart make no connection rate",
          "[alerts][evaluator]") {
  // A cycle held to its end by a target that did not answer, and the next ending at once: the
  // daemon's first two samples (and diagnose's, before it waited for a third) were 6 ms apart, and
  // the daemon's own probe made "160 new connections/s".
  Run r;
  r.step_after(std::chrono::milliseconds(6));
  *r.stats().total_connections += 1;
  r.step_after(std::chrono::milliseconds(6));
  CHECK(r.condition("ConnectionSprawl") == Level::kOk);
  REQUIRE(r.status("ConnectionSprawl").verdict);
  CHECK(*r.status("ConnectionSprawl").verdict->value == 0);
  // Half a second later the same connection is a rate, and a real churn is seen.
  *r.stats().total_connections += 100;
  r.step_after(std::chrono::milliseconds(500));
  CHECK(*r.status("ConnectionSprawl").verdict->value == Approx(101 / 0.506));
  CHECK(r.condition("ConnectionSprawl") != Level::kOk);
}

TEST_CASE("evaluator: churn that uses up a client's ephemeral ports within for fires at once",
          "[alerts][evaluator]") {
  // 10,000 new connections a second from one client address: its 28232 ports, each held 60 s in
  // TIME_WAIT, are gone in about 3 s.
  Run r;
  hold(r.listener0(), {{"10.0.0.9", 3}});
  r.step(2);
  *r.stats().total_connections += 10000;
  r.step();
  CHECK(r.condition("ConnectionSprawl") == Level::kCritical);
  CHECK(r.state("ConnectionSprawl") == Level::kCritical);
  CHECK_THAT(r.evidence("ConnectionSprawl"), Contains("ephemeral ports"));
  // The same rate spread over 100 clients exhausts nobody: it waits its `for`.
  Run spread;
  std::vector<std::pair<std::string, std::uint64_t>> many;
  for (int i = 0; i < 100; ++i) many.emplace_back("10.1.0." + std::to_string(i), 1);
  hold(spread.listener0(), many);
  spread.step(2);
  *spread.stats().total_connections += 10000;
  spread.step();
  CHECK(spread.condition("ConnectionSprawl") == Level::kCritical);
  CHECK(spread.state("ConnectionSprawl") == Level::kOk);
}

TEST_CASE("evaluator: a client leaking connections is named well before the limit",
          "[alerts][evaluator]") {
  // python-memcache's Client created per request and never closed: about 40 connections a second
  // from one host, towards an effective limit of 1000.
  Run r;
  r.step(5);
  int first_sprawl = -1;
  int first_max = -1;
  for (int second = 1; second <= 25; ++second) {
    *r.stats().curr_connections += 40;
    *r.stats().total_connections += 40;
    hold(r.listener0(), {{"10.0.0.7", static_cast<std::uint64_t>(*r.stats().curr_connections - 4)},
                         {"10.0.0.5", 4}});
    r.step();
    if (first_sprawl < 0 && r.state("ConnectionSprawl") != Level::kOk) first_sprawl = second;
    if (first_max < 0 && r.state("MaxConnectionsNear") != Level::kOk) first_max = second;
  }
  INFO("sprawl fired at " << first_sprawl << " s, MaxConnectionsNear at " << first_max << " s");
  // The limit is reached at 25 s; both page long before, sprawl naming the client.
  REQUIRE(first_sprawl > 0);
  CHECK(first_sprawl <= 12);
  REQUIRE(first_max > 0);
  CHECK(first_max <= 15);
  CHECK_THAT(r.evidence("ConnectionSprawl"), Contains("10.0.0.7"));
  CHECK_THAT(r.status("ConnectionSprawl").remediation, Contains("once per process"));
  // MaxConnectionsNear's fix points at the leak, not at -c.
  CHECK_THAT(r.status("MaxConnectionsNear").remediation, Contains("leaks connections"));
  CHECK_THAT(r.evidence("MaxConnectionsNear"), Contains("the limit is reached in"));
}

TEST_CASE("evaluator: connections rising from many clients are not called a leak",
          "[alerts][evaluator]") {
  Run r;
  r.step(5);
  for (int second = 1; second <= 15; ++second) {
    *r.stats().curr_connections += 20;
    std::vector<std::pair<std::string, std::uint64_t>> clients;
    for (int i = 0; i < 40; ++i) {
      clients.emplace_back("10.2.0." + std::to_string(i),
                           static_cast<std::uint64_t>(*r.stats().curr_connections / 40));
    }
    hold(r.listener0(), clients);
    r.step();
  }
  CHECK(r.condition("ConnectionSprawl") == Level::kWarning);
  CHECK_THAT(r.status("ConnectionSprawl").remediation, Contains("many clients"));
}

TEST_CASE("evaluator: MemcachedCpuSaturated per worker thread", "[alerts][evaluator]") {
  Run r;
  r.target().cpu_utilization_ratio = 0.9;
  r.step(30);
  CHECK(r.state("MemcachedCpuSaturated") == Level::kOk);
  r.step(1);
  CHECK(r.state("MemcachedCpuSaturated") == Level::kWarning);
  CHECK_THAT(r.evidence("MemcachedCpuSaturated"),
             Contains("memcached used 3.6 CPU seconds per second over 4 worker threads"));
}

TEST_CASE("evaluator: MemcachedCpuSaturated on the busiest worker thread, naming it",
          "[alerts][evaluator]") {
  Run r;
  r.host_known = true;
  // One hot connection: one worker at 0.97, the four together at 1.27 (average 0.32); memcached's
  // rusage average reads low.
  MemcachedThreads t;
  t.target = "main";
  t.view = ThreadView::kPerThread;
  t.pid = 100;
  t.workers = 4;
  t.busiest = 0.97;
  t.busiest_tid = 4244;
  t.average = 0.3175;
  r.threads.targets.push_back(t);
  r.target().cpu_utilization_ratio = 0.35;
  r.step();
  CHECK(r.condition("MemcachedCpuSaturated") == Level::kCritical);
  const AlertStatus& s = r.status("MemcachedCpuSaturated");
  CHECK(s.verdict->value == 0.97);
  CHECK_THAT(s.verdict->evidence,
             Contains("the busiest worker thread (mc-worker 4244) used 0.97 CPU seconds per "
                      "second; the average over 4 worker threads was 0.318"));
  CHECK_THAT(s.verdict->evidence, Contains("memcached's rusage: 0.35 per worker thread"));
  CHECK_THAT(s.remediation, Contains("more threads (-t) do not help a hot connection"));
  r.step(30);
  CHECK(r.state("MemcachedCpuSaturated") == Level::kCritical);

  // All workers busy: the general fix.
  r.threads.targets[0].average = 0.9;
  r.step();
  CHECK_THAT(r.status("MemcachedCpuSaturated").remediation, Contains("Give memcached more CPU"));
}

TEST_CASE("evaluator: a memcached whose threads are not seen keeps the rusage average and says why",
          "[alerts][evaluator]") {
  Run r;
  r.host_known = true;
  MemcachedThreads t;
  t.target = "main";
  t.view = ThreadView::kElsewhere;
  t.reason =
      "memcached's pid 100 is not a memcached process this daemon can see (no process "
      "100 here): a remote memcached, or one in another pid namespace; judged on the "
      "rusage average over its worker threads";
  r.threads.targets.push_back(t);
  r.target().cpu_utilization_ratio = 0.85;
  r.step();
  CHECK(r.condition("MemcachedCpuSaturated") == Level::kWarning);
  const std::string e = r.evidence("MemcachedCpuSaturated");
  CHECK_THAT(e, Contains("0.85 per thread on average"));
  CHECK_THAT(e, Contains("each thread's CPU is not read: memcached's pid 100 is not"));
}

TEST_CASE("evaluator: the CPU the hypervisor steals is in MemcachedCpuSaturated's evidence and fix",
          "[alerts][evaluator]") {
  Run r;
  r.host_known = true;
  r.target().cpu_utilization_ratio = 0.9;
  for (int i = 0; i < 10; ++i) {
    // Each second 200 ticks on 2 CPUs: 60 stolen, 20 waiting for I/O.
    r.cpu.times.user += 100;
    r.cpu.times.steal += 60;
    r.cpu.times.iowait += 20;
    r.cpu.times.idle += 20;
    r.step();
  }
  const AlertStatus& s = r.status("MemcachedCpuSaturated");
  CHECK(s.condition == Level::kWarning);
  CHECK_THAT(s.verdict->evidence,
             Contains("over the last 1m the hypervisor took 30% of this host's CPU time (steal) "
                      "and 10% waited for I/O"));
  CHECK_THAT(s.remediation, Contains("The hypervisor takes 30% of this VM's CPU time"));
  // Below steal_warning the fix stays memcached's.
  for (int i = 0; i < 70; ++i) {
    r.cpu.times.user += 200;
    r.step();
  }
  CHECK_THAT(r.status("MemcachedCpuSaturated").remediation, !Contains("hypervisor"));
}

TEST_CASE("evaluator: NetworkSaturated on utilisation and on drops", "[alerts][evaluator]") {
  Run r;
  r.netdev.devices[0].receive_utilization = 0.97;
  r.step(31);
  CHECK(r.state("NetworkSaturated", eth0()) == Level::kCritical);
  r.netdev.devices[0].receive_utilization = 0.1;
  r.step();
  CHECK(r.state("NetworkSaturated", eth0()) == Level::kOk);
  r.netdev.devices[0].counters.receive_drops = 5;
  r.step(31);
  CHECK(r.state("NetworkSaturated", eth0()) == Level::kWarning);
  CHECK_THAT(r.evidence("NetworkSaturated", eth0()), Contains("5 packets dropped"));
}

TEST_CASE("evaluator: a NIC without a link speed has no utilisation value, never 0",
          "[alerts][evaluator]") {
  Run r;
  r.netdev.devices[0].speed_bytes.reset();
  r.netdev.devices[0].receive_utilization.reset();
  r.netdev.devices[0].transmit_utilization.reset();
  r.step(2);
  CHECK(r.state("NetworkSaturated", eth0()) == Level::kOk);
  CHECK_FALSE(r.status("NetworkSaturated", eth0()).verdict->value.has_value());
  CHECK_THAT(r.evidence("NetworkSaturated", eth0()), Contains("reports no link speed"));
  CHECK_THAT(r.evidence("NetworkSaturated", eth0()), Contains("collectors.netdev.speeds"));
  CHECK_THAT(r.e.json(), Contains(R"("value":null)"));
}

TEST_CASE("evaluator: a configured speed is named in NetworkSaturated's evidence",
          "[alerts][evaluator]") {
  Run r;
  r.netdev.devices[0].speed_source = SpeedSource::kConfigured;
  r.netdev.devices[0].transmit_utilization = 0.85;
  r.step();
  CHECK(r.condition("NetworkSaturated", eth0()) == Level::kWarning);
  CHECK_THAT(r.evidence("NetworkSaturated", eth0()),
             Contains("eth0 receive 10%, transmit 85% of its link speed (1 Gbit/s as configured)"));
}

TEST_CASE("evaluator: a cloud allowance counter rising makes NetworkSaturated critical",
          "[alerts][evaluator]") {
  Run r;
  DriverCounters ena;
  for (auto& a : ena.allowance_exceeded) a = 0;
  r.netdev.devices[0].driver = ena;
  r.step(5);
  CHECK(r.condition("NetworkSaturated", eth0()) == Level::kOk);
  // The link is at 10%, but the instance went past its packets-per-second allowance.
  r.netdev.devices[0].driver->allowance_exceeded[static_cast<int>(Allowance::kPps)] = 350;
  r.step();
  const AlertStatus& s = r.status("NetworkSaturated", eth0());
  CHECK(s.condition == Level::kCritical);
  CHECK(s.verdict->value == Approx(0.1));
  CHECK_THAT(s.verdict->evidence,
             Contains("pps_allowance_exceeded rose by 350 in the last 1m: past the instance's "
                      "packets per second allowance"));
  CHECK_THAT(s.remediation, Contains("larger network allowance"));
  CHECK_THAT(s.remediation, Contains("multi-get"));
  r.step(30);
  CHECK(r.state("NetworkSaturated", eth0()) == Level::kCritical);
  r.step(40);  // out of the window
  CHECK(r.state("NetworkSaturated", eth0()) == Level::kOk);
}

TEST_CASE("evaluator: retransmissions, backlog drops and a slow handshake have their own levels",
          "[alerts][evaluator]") {
  Run r;
  r.host_known = true;
  r.netstat.out_segments = 0;
  r.netstat.retransmitted_segments = 0;
  r.step();
  // 3% of 10,000 segments retransmitted: warning (0.01), not critical (0.05).
  *r.netstat.out_segments += 10000;
  *r.netstat.retransmitted_segments += 300;
  r.step();
  CHECK(r.condition("NetworkSaturated", eth0()) == Level::kWarning);
  CHECK_THAT(r.evidence("NetworkSaturated", eth0()),
             Contains("the host's TCP retransmitted 3% of 10000 segments sent in the last 1m"));
  CHECK_THAT(r.status("NetworkSaturated", eth0()).remediation, Contains("Packets are lost"));
  *r.netstat.retransmitted_segments += 400;
  r.step();
  CHECK(r.condition("NetworkSaturated", eth0()) == Level::kCritical);
  r.step(61);
  CHECK(r.condition("NetworkSaturated", eth0()) == Level::kOk);

  // Too few segments make no ratio.
  *r.netstat.out_segments += 50;
  *r.netstat.retransmitted_segments += 20;
  r.step();
  CHECK(r.condition("NetworkSaturated", eth0()) == Level::kOk);
  CHECK_THAT(r.evidence("NetworkSaturated", eth0()), !Contains("retransmitted"));
  r.step(61);

  // The CPUs' backlogs drop packets: 1 is a warning, 100 critical.
  r.softnet.dropped += 4;
  r.softnet.time_squeeze += 9;
  r.step();
  CHECK(r.condition("NetworkSaturated", eth0()) == Level::kWarning);
  CHECK_THAT(r.evidence("NetworkSaturated", eth0()),
             Contains("the CPUs' receive backlogs dropped 4 packets and ran out of budget 9 "
                      "times in the last 1m (softnet_stat)"));
  r.softnet.dropped += 100;
  r.step();
  CHECK(r.condition("NetworkSaturated", eth0()) == Level::kCritical);
  r.step(61);

  // The probe's handshake: 20 ms is a warning (0.01 s), 150 ms critical (0.1 s).
  r.target().probe->connect_seconds = 0.02;
  r.step();
  CHECK(r.condition("NetworkSaturated", eth0()) == Level::kWarning);
  CHECK_THAT(r.evidence("NetworkSaturated", eth0()),
             Contains("TCP handshake of the last fresh-connection probe: main 20.00 ms"));
  r.target().probe->connect_seconds = 0.15;
  r.step();
  CHECK(r.condition("NetworkSaturated", eth0()) == Level::kCritical);
  r.target().probe->connect_seconds = 0.0001;
  r.step();
  CHECK(r.condition("NetworkSaturated", eth0()) == Level::kOk);
}

TEST_CASE("evaluator: SomaxconnTooLow when the kernel truncates -b, critical while overflowing",
          "[alerts][evaluator]") {
  Run r;
  r.sysctl.somaxconn = 128;
  r.listener0().queue_max = 128;
  r.step();
  CHECK(r.state("SomaxconnTooLow") == Level::kWarning);
  CHECK_THAT(r.evidence("SomaxconnTooLow"),
             Contains("memcached asks for 1024 (-b), net.core.somaxconn is 128"));
  r.listener0().queue_peak = 128;
  r.netstat.listen_overflows = 40;
  r.step();
  CHECK(r.state("SomaxconnTooLow") == Level::kCritical);
  CHECK_THAT(r.evidence("SomaxconnTooLow"),
             Contains("its listener overflowed with a backlog under 1024: 0.0.0.0:11211 reached "
                      "its max queue (peak 128 of 128)"));
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kWarning);
}

TEST_CASE("evaluator: SlowClients counts blocked send queues, named at once",
          "[alerts][evaluator]") {
  Run r;
  r.listener0().send_queue_blocked = 3;
  r.step();
  CHECK(r.condition("SlowClients") == Level::kWarning);
  r.step(30);
  CHECK(r.state("SlowClients") == Level::kWarning);
  r.listener0().send_queue_blocked = 12;
  r.step(31);
  CHECK(r.state("SlowClients") == Level::kCritical);
  r.listener0().send_queue_blocked = 0;
  r.step();
  CHECK(r.state("SlowClients") == Level::kOk);
  // Without the connection walk there is no verdict, not a 0.
  r.sockets_known = false;
  r.step();
  CHECK_FALSE(r.status("SlowClients").verdict.has_value());
}

TEST_CASE("evaluator: MemcachedMemoryFull needs both a full cache and evictions",
          "[alerts][evaluator]") {
  Run r;
  r.stats().bytes = 60800000;  // 95% of 64e6
  r.step(90);
  CHECK(r.state("MemcachedMemoryFull") == Level::kOk);  // full but not evicting
  *r.stats().evictions += 10;
  r.step();
  CHECK(r.condition("MemcachedMemoryFull") == Level::kCritical);  // named at once
  for (int i = 0; i < 60; ++i) {
    *r.stats().evictions += 10;
    r.step();
  }
  CHECK(r.state("MemcachedMemoryFull") == Level::kCritical);
  CHECK_THAT(r.evidence("MemcachedMemoryFull"), Contains("(95%)"));
}

TEST_CASE("evaluator: MemcachedMemoryFull fires where slab rounding keeps bytes under 90% of -m",
          "[alerts][evaluator]") {
  Run r;
  // memcached -m 64 full of 100-byte items, evicting: `bytes` is 87% of the limit.
  r.stats().bytes = 55680000;
  r.step();
  for (int i = 0; i < 61; ++i) {
    *r.stats().evictions += 1000;
    r.step();
  }
  CHECK(r.state("MemcachedMemoryFull") == Level::kWarning);
  CHECK_THAT(r.evidence("MemcachedMemoryFull"), Contains("(87%)"));
}

TEST_CASE("evaluator: two memcached on one port at different addresses are judged apart",
          "[alerts][evaluator]") {
  // 127.0.0.1:11311 is healthy; 127.0.0.2:11311 is past -c with no_maxconns_fast.
  Run r;
  r.targets = {healthy_target("one", "127.0.0.1:11311"), healthy_target("two", "127.0.0.2:11311")};
  r.sockets.listeners = {listener("127.0.0.1", 11311, 1024), listener("127.0.0.2", 11311, 0)};
  hold(r.sockets.listeners[0], {{"10.0.0.1", 2}});
  hold(r.sockets.listeners[1], {{"10.0.0.2", 40}});
  r.sockets.listeners[1].send_queue_blocked = 4;
  r.stats(1).curr_connections = 40;
  r.stats(1).accepting_conns = 0;
  r.step(6);
  const AlertLabels one{{"target", "one"}};
  const AlertLabels two{{"target", "two"}};
  CHECK(r.state("MaxConnectionsNear", two) == Level::kCritical);
  CHECK(r.state("MaxConnectionsNear", one) == Level::kOk);
  CHECK_THAT(r.evidence("MaxConnectionsNear", two), Contains("listener 127.0.0.2:11311"));
  CHECK(r.condition("SlowClients", two) == Level::kWarning);
  CHECK(r.condition("SlowClients", one) == Level::kOk);
  CHECK_THAT(r.evidence("ConnectionSprawl", one),
             Contains("2 connections established from 1 client"));
  // The healthy one is killed: its listener goes, it is down; the other's listener never says
  // it is alive.
  r.sockets.listeners.erase(r.sockets.listeners.begin());
  MemcachedSample& gone = r.target(0);
  gone.up = false;
  gone.error = "connect to 127.0.0.1:11311: Connection refused";
  gone.probe = probe_result(false, 0.0001, "", gone.error);
  r.step(6);
  CHECK(r.state("MemcachedDown", one) == Level::kCritical);
  CHECK(r.state("MemcachedDown", two) == Level::kOk);
}

TEST_CASE("evaluator: IPv6 listeners are written in brackets", "[alerts][evaluator]") {
  Run r;
  r.targets = {healthy_target("v6", "[::1]:11311")};
  r.sockets.listeners = {listener("::1", 11311, 1024)};
  r.sockets.listeners[0].queue_peak = 900;
  r.step();
  const AlertLabels v6{{"target", "v6"}};
  CHECK_THAT(r.evidence("AcceptQueueFilling", v6), Contains("accept queue of [::1]:11311"));
}

TEST_CASE("evaluator: /alerts JSON carries every field, is built once per evaluation and parses",
          "[alerts][evaluator]") {
  Run r;
  r.targets[0].target = "cache \"one\" \xff";  // a quote and a byte that is not UTF-8
  r.stats().curr_connections = 990;
  r.step(7);
  const std::uint64_t builds = r.e.json_builds();
  const std::string body = r.e.json();
  CHECK(&r.e.json() == &r.e.json());
  CHECK(r.e.json_builds() == builds + 1);
  auto parsed = parse_alerts_json(body);
  REQUIRE(parsed.ok());
  REQUIRE(parsed->size() == kAlertCount);
  bool found = false;
  for (const AlertStatus& a : *parsed) {
    if (a.name != "MaxConnectionsNear") continue;
    found = true;
    CHECK(a.state == Level::kCritical);
    CHECK(a.condition == Level::kCritical);
    CHECK(a.labels.at(0).second == "cache \"one\" \xEF\xBF\xBD");
    CHECK(*a.verdict->value == Approx(0.99));
    CHECK(a.verdict->threshold == 0.95);
    CHECK_THAT(a.remediation, Contains("Raise memcached's -c"));
    CHECK(a.active_since.has_value());
  }
  CHECK(found);
  for (const char* field :
       {"\"name\"", "\"state\"", "\"condition\"", "\"target\"", "\"since\"", "\"active_since\"",
        "\"value\"", "\"threshold\"", "\"cause\"", "\"evidence\"", "\"remediation\""}) {
    CHECK_THAT(body, Contains(field));
  }
  r.step();
  CHECK(r.e.json_builds() == builds + 1);  // nothing asked since the evaluation
  (void)r.e.json();
  CHECK(r.e.json_builds() == builds + 2);
}

TEST_CASE("evaluator: the /alerts reader refuses deep nesting and foreign shapes",
          "[alerts][evaluator]") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto nested = parse_alerts_json(deep);
  REQUIRE_FALSE(nested.ok());
  CHECK_THAT(nested.error().message, Contains("nested deeper than"));
  CHECK_FALSE(parse_alerts_json("{\"alerts\": 3}").ok());
  // What another program at the daemon's address sends is escaped before diagnose prints it.
  auto garbage = parse_alerts_json("{\"alerts\": [\x1b[2J\n]}");
  REQUIRE_FALSE(garbage.ok());
  CHECK(garbage.error().message.find('\x1b') == std::string::npos);
  CHECK(garbage.error().message.find('\n') == std::string::npos);
  auto hostile = parse_alerts_json(
      R"({"alerts":[{"name":"X\u001b[2J","state":"ok","condition":"ok","labels":)"
      R"({"target":"t\u202e1"},"since":"2026-12-02T00:00:00Z","cause":"c\nFORGED",)"
      R"("remediation":"r","evidence":"e\u009b2J"}]})");
  REQUIRE(hostile.ok());
  const AlertStatus& h = hostile->at(0);
  for (const std::string& text :
       {h.name, h.labels.at(0).second, h.cause, h.remediation, h.verdict->evidence}) {
    CHECK(is_printable_utf8(text));
  }
  CHECK(h.name == "X\\x1b[2J");
  CHECK(h.cause == "c\\nFORGED");
  CHECK(h.remediation == "r");  // printable text is kept as it is
  auto bad_level = parse_alerts_json(R"({"alerts":[{"name":"X\u001b","state":"loud"}]})");
  REQUIRE_FALSE(bad_level.ok());
  CHECK_THAT(bad_level.error().message, Contains(R"(unknown level in "X\x1b")"));
  CHECK_FALSE(parse_alerts_json("not json").ok());
  auto no_state = parse_alerts_json(R"({"alerts":[{"name":"X"}]})");
  REQUIRE_FALSE(no_state.ok());
  CHECK_THAT(no_state.error().message, Contains("state"));
}

TEST_CASE("evaluator: mcbacklog_alert_state and _condition have one series per alert and subject",
          "[alerts][evaluator]") {
  Run r;
  r.stats().curr_connections = 990;
  r.step(3);
  std::string text = render_families(r.e.Collect());
  CHECK(test::metric_value(
            text, R"(mcbacklog_alert_state{alert="MaxConnectionsNear",target="main"})") == 0);
  CHECK(test::metric_value(
            text, R"(mcbacklog_alert_condition{alert="MaxConnectionsNear",target="main"})") == 2);
  r.step(4);
  text = render_families(r.e.Collect());
  CHECK(test::metric_value(
            text, R"(mcbacklog_alert_state{alert="MaxConnectionsNear",target="main"})") == 2);
  CHECK(test::metric_value(text, R"(mcbacklog_alert_state{alert="ListenQueueOverflow"})") == 0);
  CHECK(test::metric_value(
            text, R"(mcbacklog_alert_state{alert="NetworkSaturated",device="eth0"})") == 0);
}

TEST_CASE("evaluator: new thresholds keep the state, a removed target leaves",
          "[alerts][evaluator]") {
  Run r;
  r.stats().curr_connections = 850;
  r.step(7);
  REQUIRE(r.state("MaxConnectionsNear") == Level::kWarning);
  auto th = default_config().thresholds;
  th["MaxConnectionsNear"].warning = 0.9;
  th["MaxConnectionsNear"].clear = 0.8;
  r.e.set_thresholds(th);
  r.step();
  CHECK(r.state("MaxConnectionsNear") == Level::kWarning);  // 0.85 sits in the hysteresis band
  r.targets.clear();
  r.step();
  for (const AlertStatus& a : r.e.statuses()) CHECK(a.labels != AlertLabels{{"target", "main"}});
}

TEST_CASE("evaluator: the cost of an evaluation is linear in targets", "[alerts][evaluator]") {
  // Hash lookups of the windows per evaluation, at 100 and at 10,000 targets: the same per target.
  auto lookups_per_target = [](int n) {
    Run r;
    r.targets.clear();
    r.sockets.listeners.clear();
    for (int i = 0; i < n; ++i) {
      r.targets.push_back(
          healthy_target("t" + std::to_string(i), "127.0.0.1:" + std::to_string(20000 + i)));
    }
    r.step();
    const std::uint64_t before = r.e.windows().lookups();
    r.step();
    return static_cast<double>(r.e.windows().lookups() - before) / n;
  };
  const double small = lookups_per_target(100);
  const double large = lookups_per_target(10000);
  INFO("lookups per target: " << small << " at 100 targets, " << large << " at 10000");
  CHECK(large <= small * 1.05);
  CHECK(large < 20);
}

TEST_CASE("runbooks: a page per alert with its levels in force and this host's live verdict",
          "[alerts][runbooks]") {
  Run r;
  r.targets[0].target = "<script>x</script>";
  r.stats().curr_connections = 990;
  r.step(2);
  const RunbookContext context{"mcbacklogd test", r.wall()};
  const auto page = runbook_html("MaxConnectionsNear", r.e.statuses(), r.e, context);
  REQUIRE(page.has_value());
  CHECK_THAT(*page, Contains("<h1>MaxConnectionsNear</h1>"));
  CHECK_THAT(*page, Contains("<span class=\"critical\">critical</span> (pending)"));
  CHECK_THAT(*page, Contains("990 connections of an effective limit of 1000"));
  CHECK_THAT(*page, Contains("<td>0.8</td><td>0.95</td><td>0.75</td><td>5s</td>"));
  CHECK_THAT(*page, Contains("target &lt;script&gt;x&lt;/script&gt;"));
  CHECK_THAT(*page, !Contains("<script>"));
  CHECK_THAT(*page, Contains("<h2>Check first</h2>"));
  CHECK_FALSE(runbook_html("NoSuchAlert", r.e.statuses(), r.e, context).has_value());
  const std::string index = runbook_index_html(r.e.statuses(), context);
  for (const Rule& rule : rules()) {
    CHECK_THAT(index, Contains("<a href=\"/runbooks/" + std::string(rule.name) + "\">"));
  }
}
