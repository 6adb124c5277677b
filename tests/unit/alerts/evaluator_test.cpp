#include <catch2/catch.hpp>

#include <sstream>

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>

#include "common/families.hpp"
#include "daemon/alerts/evaluator.hpp"
#include "tests/support/metrics_text.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

TargetSignals healthy_target() {
  TargetSignals t;
  t.name = "main";
  t.port = 11211;
  t.up = true;
  t.curr_connections = 10;
  t.max_connections = 1024;
  t.reserved_fds = 24;  // effective limit 1000
  t.total_connections = 1000;
  t.rejected_connections = 0;
  t.listen_disabled_num = 0;
  t.time_in_listen_disabled_us = 0;
  t.accepting_conns = 1;
  t.cpu_utilization = 0.1;
  t.threads = 4;
  t.bytes = 1e6;
  t.limit_maxbytes = 64e6;
  t.evictions = 0;
  t.uptime = 1000;
  t.tcp_backlog = 1024;
  t.maxconns_fast = true;
  t.probe_enabled = true;
  t.probe_success = true;
  t.probe_seconds = 0.0004;
  return t;
}

Signals healthy() {
  Signals s;
  s.host.listen_overflows = 0;
  s.host.listen_drops = 0;
  s.host.somaxconn = 4096;
  s.targets.push_back(healthy_target());
  s.sockets_known = true;
  s.listeners.push_back(ListenerSignals{"0.0.0.0", 11211, 0, 1024, 0});
  s.ports.push_back(PortSignals{11211, 10, 2, {{"10.0.0.5", 6}, {"10.0.0.6", 4}}, 0});
  s.nics_known = true;
  s.nics.push_back(NicSignals{"eth0", 0.1, 0.05, 0, 0});
  return s;
}

// Feeds the evaluator one sample per second of a fake clock. Each step may change the signals;
// counters advance only when a step changes them, as real ones do.
class Run {
 public:
  Evaluator e{Config::defaults().thresholds};
  Signals s = healthy();

  // One second passes and the evaluator sees `s`.
  void step(int seconds = 1) {
    for (int i = 0; i < seconds; ++i) {
      ++t_;
      s.now = std::chrono::steady_clock::time_point{} + std::chrono::seconds(t_);
      s.wall = std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 20000) +
               std::chrono::seconds(t_);
      e.evaluate(s);
    }
  }
  TargetSignals& target() { return s.targets.at(0); }

  AlertStatus status(std::string_view alert, const AlertLabels& labels = {{"target", "main"}}) {
    for (const AlertStatus& a : e.statuses()) {
      if (a.name == alert && a.labels == labels) return a;
    }
    FAIL("no status for " << alert);
    return {};
  }
  Level state(std::string_view alert, const AlertLabels& labels = {{"target", "main"}}) {
    return status(alert, labels).state;
  }
  std::string evidence(std::string_view alert, const AlertLabels& labels = {{"target", "main"}}) {
    auto st = status(alert, labels);
    return st.verdict ? st.verdict->evidence : "";
  }

 private:
  int t_ = 0;
};

const AlertLabels kHost{};
AlertLabels eth0() { return {{"device", "eth0"}}; }

}  // namespace

TEST_CASE("evaluator: a healthy memcached host fires nothing", "[daemon][evaluator]") {
  Run r;
  for (int i = 0; i < 120; ++i) {
    r.target().total_connections = *r.target().total_connections + 1;  // one new client a second
    r.step();
  }
  CHECK(r.e.worst() == Level::kOk);
  CHECK(r.e.statuses().size() == 11);  // every alert of the catalogue, for its subject
}

TEST_CASE("evaluator: MaxConnectionsNear fires after its for duration and clears with hysteresis",
          "[daemon][evaluator]") {
  Run r;
  r.target().curr_connections = 850;  // 0.85 of the effective 1000
  r.step(5);
  // Like Prometheus: the condition must still hold `for` (5 s) after the first sample that met it.
  CHECK(r.state("MaxConnectionsNear") == Level::kOk);
  r.step(1);
  CHECK(r.state("MaxConnectionsNear") == Level::kWarning);
  CHECK_THAT(r.evidence("MaxConnectionsNear"),
             Contains("850 connections of an effective limit of 1000 (-c 1024 less 24 reserved"));
  r.target().curr_connections = 960;
  r.step(6);
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
  r.target().curr_connections = 780;  // under warning, above clear 0.75: still warning
  r.step();
  CHECK(r.state("MaxConnectionsNear") == Level::kWarning);
  r.target().curr_connections = 700;
  r.step();
  CHECK(r.state("MaxConnectionsNear") == Level::kOk);
}

TEST_CASE("evaluator: a brief spike shorter than for does not fire", "[daemon][evaluator]") {
  Run r;
  r.target().curr_connections = 990;
  r.step(3);
  r.target().curr_connections = 10;
  r.step();
  r.target().curr_connections = 990;
  r.step(3);
  CHECK(r.state("MaxConnectionsNear") == Level::kOk);
}

TEST_CASE("evaluator: rejections rising make MaxConnectionsNear critical for the window",
          "[daemon][evaluator]") {
  Run r;
  r.step(10);
  r.target().curr_connections = 500;
  r.target().rejected_connections = 3;
  r.step(6);
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
  CHECK_THAT(r.evidence("MaxConnectionsNear"),
             Contains("3 connections rejected with \"ERROR Too many open connections\""));
  r.step(50);  // still inside the 60 s window
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
  r.step(10);
  CHECK(r.state("MaxConnectionsNear") == Level::kOk);
}

TEST_CASE("evaluator: a listener disabled by memcached is critical", "[daemon][evaluator]") {
  Run r;
  r.step(5);
  r.target().curr_connections = 41;
  r.target().max_connections = 64;
  r.target().reserved_fds = 20;
  r.target().maxconns_fast = false;
  r.target().rejected_connections.reset();  // absent with -o no_maxconns_fast
  r.target().listen_disabled_num = 1;
  r.target().accepting_conns = 0;
  r.s.listeners[0].queue_max = 0;
  r.step(6);
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
  const std::string e = r.evidence("MaxConnectionsNear");
  CHECK_THAT(e, Contains("memcached stopped accepting 1 times"));
  CHECK_THAT(e, Contains("memcached is not accepting now"));
  CHECK_THAT(e, Contains("listener 0.0.0.0:11211 has a max queue of 0"));
  // A max queue of 0 is never divided by.
  CHECK(r.state("AcceptQueueFilling") == Level::kOk);
}

TEST_CASE("evaluator: a memcached restart resets counters without a spike", "[daemon][evaluator]") {
  Run r;
  r.target().rejected_connections = 500;  // rejections long ago, before the daemon watched
  r.target().evictions = 1e6;
  r.step(70);
  CHECK(r.state("MaxConnectionsNear") == Level::kOk);
  // Restart: counters and uptime start over.
  r.target().rejected_connections = 0;
  r.target().evictions = 0;
  r.target().total_connections = 2;
  r.target().uptime = 1;
  r.step();
  r.target().uptime = 2;
  r.step(10);
  CHECK(r.state("MaxConnectionsNear") == Level::kOk);
  CHECK(r.state("ConnectionSprawl") == Level::kOk);
  // New rejections after the restart count.
  r.target().rejected_connections = 2;
  r.step(6);
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
}

TEST_CASE(
    "evaluator: a target that stops answering fires MemcachedDown, not alerts on stale numbers",
    "[daemon][evaluator]") {
  Run r;
  r.target().cpu_utilization = 0.99;
  r.target().curr_connections = 990;
  r.step(40);
  CHECK(r.state("MemcachedCpuSaturated") == Level::kCritical);
  CHECK(r.state("MaxConnectionsNear") == Level::kCritical);
  // memcached dies: the stats connection fails and so does the probe.
  r.target() = TargetSignals{};
  r.target().name = "main";
  r.target().port = 11211;
  r.target().probe_enabled = true;
  r.target().probe_success = false;
  r.step();
  CHECK(r.state("MemcachedCpuSaturated") == Level::kOk);
  CHECK(r.state("MaxConnectionsNear") == Level::kOk);
  CHECK(r.status("MaxConnectionsNear").verdict == std::nullopt);
  CHECK(r.state("ProbeSlow") == Level::kOk);  // MemcachedDown says it; no second page
  CHECK(r.state("MemcachedDown") == Level::kOk);
  r.step(5);
  CHECK(r.state("MemcachedDown") == Level::kCritical);
}

TEST_CASE("evaluator: stats failing alone is not MemcachedDown while the probe succeeds",
          "[daemon][evaluator]") {
  Run r;
  r.target().up = false;
  r.step(20);
  CHECK(r.state("MemcachedDown") == Level::kOk);
  r.target().probe_success = false;
  r.step(6);
  CHECK(r.state("MemcachedDown") == Level::kCritical);
  r.target().up = true;
  r.step();
  CHECK(r.state("MemcachedDown") == Level::kOk);
}

TEST_CASE("evaluator: a fresh connection not served while stats answers is ProbeSlow critical",
          "[daemon][evaluator]") {
  Run r;
  r.target().probe_seconds = 0.25;
  r.step(10);
  CHECK(r.state("ProbeSlow") == Level::kOk);  // `for` 10 s
  r.step(1);
  CHECK(r.state("ProbeSlow") == Level::kWarning);
  r.target().probe_success = false;
  r.target().probe_seconds = 2;
  r.step(11);
  CHECK(r.state("ProbeSlow") == Level::kCritical);
  CHECK_THAT(r.evidence("ProbeSlow"), Contains("a fresh connection was not served"));
  r.target().probe_success = true;
  r.target().probe_seconds = 0.001;
  r.step();
  CHECK(r.state("ProbeSlow") == Level::kOk);
}

TEST_CASE("evaluator: overflows at memcached's full listener are ListenQueueOverflow critical",
          "[daemon][evaluator]") {
  Run r;
  r.step(5);
  r.s.listeners[0].queue_length = 1024;
  r.s.listeners[0].queue_peak = 1024;
  for (int i = 0; i < 10; ++i) {
    r.s.host.listen_overflows = *r.s.host.listen_overflows + 20;
    r.s.host.listen_drops = *r.s.host.listen_drops + 20;
    r.step();
  }
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kCritical);
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("memcached's listener overflowed: 0.0.0.0:11211 reached its max queue (peak "
                      "1024 of 1024)"));
  CHECK(r.state("AcceptQueueFilling") == Level::kCritical);
  // Quiet again: the burst stays visible for the window, then clears.
  r.s.listeners[0].queue_length = 0;
  r.s.listeners[0].queue_peak = 0;
  r.step(55);
  CHECK(r.state("ListenQueueOverflow", kHost) != Level::kOk);
  r.step(10);
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kOk);
}

TEST_CASE("evaluator: overflows on another listener are a warning that says so",
          "[daemon][evaluator]") {
  Run r;
  r.step(5);
  r.s.listeners[0].queue_peak = 3;
  for (int i = 0; i < 10; ++i) {
    r.s.host.listen_overflows = *r.s.host.listen_overflows + 50;
    r.step();
  }
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kWarning);
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("the overflows are on another listener of this host"));
  CHECK(r.state("AcceptQueueFilling") == Level::kOk);
}

TEST_CASE("evaluator: a listener's own drop counter joins overflows to it, however short the burst",
          "[daemon][evaluator]") {
  Run r;
  r.s.listeners[0].drops = 7;  // drops before the daemon watched are not blamed
  r.step(5);
  // A burst overflows memcached's listener between two samples: no sampled peak saw it full.
  r.s.host.listen_overflows = *r.s.host.listen_overflows + 100;
  r.s.host.listen_drops = *r.s.host.listen_drops + 100;
  r.s.listeners[0].drops = 107;
  r.step();
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kCritical);
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("memcached's listener overflowed: 0.0.0.0:11211 dropped 100 connections in "
                      "the last 1m"));
  r.step(61);
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kOk);
  // Overflows while its own counter stands still are another listener's, whatever its peak.
  r.s.listeners[0].queue_peak = 1024;
  r.s.host.listen_overflows = *r.s.host.listen_overflows + 100;
  r.step();
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kWarning);
  CHECK_THAT(r.evidence("ListenQueueOverflow", kHost),
             Contains("no watched memcached listener overflowed (0.0.0.0:11211 peak 1024 of 1024, "
                      "no drops): the overflows are on another listener of this host"));
}

TEST_CASE("evaluator: a listener memcached stopped accepting on overflows, and is not down",
          "[daemon][evaluator]") {
  Run r;
  r.step(5);
  // -o no_maxconns_fast at its limit: listen(fd, 0). A client without a connection yet (the
  // probe, or diagnose's stats) gets no answer; the kernel drops the rest. The kernel does not
  // report the listener's drops here, so its max queue of 0 is the evidence.
  r.target().up = false;
  r.target().stats_error = "connect to 127.0.0.1:11211: no connection by the deadline";
  r.target().probe_success = false;
  r.target().probe_error = r.target().stats_error;
  r.target().tcp_backlog = 8;
  r.s.listeners[0].queue_max = 0;
  r.s.listeners[0].queue_length = 1;
  for (int i = 0; i < 10; ++i) {
    r.s.host.listen_overflows = *r.s.host.listen_overflows + 20;
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

TEST_CASE("evaluator: AcceptQueueFilling grades the peak over the max", "[daemon][evaluator]") {
  Run r;
  r.s.listeners[0].queue_peak = 600;
  r.step(6);
  CHECK(r.state("AcceptQueueFilling") == Level::kWarning);
  CHECK_THAT(r.evidence("AcceptQueueFilling"), Contains("peaked at 600 of 1024 (59%)"));
  r.s.listeners[0].queue_peak = 900;
  r.step(6);
  CHECK(r.state("AcceptQueueFilling") == Level::kCritical);
  r.s.listeners[0].queue_peak = 450;  // under warning, above clear
  r.step();
  CHECK(r.state("AcceptQueueFilling") == Level::kWarning);
  r.s.listeners[0].queue_peak = 100;
  r.step();
  CHECK(r.state("AcceptQueueFilling") == Level::kOk);
}

TEST_CASE("evaluator: ConnectionSprawl names the top clients on churn or connection count",
          "[daemon][evaluator]") {
  Run r;
  r.step(2);
  for (int i = 0; i < 40; ++i) {
    r.target().total_connections = *r.target().total_connections + 200;
    r.step();
  }
  CHECK(r.state("ConnectionSprawl") == Level::kWarning);
  const std::string e = r.evidence("ConnectionSprawl");
  CHECK(r.status("ConnectionSprawl").verdict->value > 190);  // the 60 s window has 2 quiet seconds
  CHECK_THAT(e, Contains("new connections/s over the last 1m (memcached total_connections)"));
  CHECK_THAT(e, Contains("most from 10.0.0.5 (6), 10.0.0.6 (4)"));
  for (int i = 0; i < 70; ++i) r.step();  // churn stopped and its window passed
  CHECK(r.state("ConnectionSprawl") == Level::kOk);
  r.s.ports[0].established = 25000;  // many held connections
  r.step(31);
  CHECK(r.state("ConnectionSprawl") == Level::kCritical);
}

TEST_CASE("evaluator: MemcachedCpuSaturated per worker thread", "[daemon][evaluator]") {
  Run r;
  r.target().cpu_utilization = 0.9;
  r.step(30);
  CHECK(r.state("MemcachedCpuSaturated") == Level::kOk);
  r.step(1);
  CHECK(r.state("MemcachedCpuSaturated") == Level::kWarning);
  CHECK_THAT(r.evidence("MemcachedCpuSaturated"),
             Contains("memcached used 3.6 CPU seconds per second over 4 worker threads"));
}

TEST_CASE("evaluator: NetworkSaturated on utilisation and on drops", "[daemon][evaluator]") {
  Run r;
  r.s.nics[0].receive_utilization = 0.97;
  r.step(31);
  CHECK(r.state("NetworkSaturated", eth0()) == Level::kCritical);
  r.s.nics[0].receive_utilization = 0.1;
  r.step();
  CHECK(r.state("NetworkSaturated", eth0()) == Level::kOk);
  r.s.nics[0].receive_drops = 5;
  r.step(31);
  CHECK(r.state("NetworkSaturated", eth0()) == Level::kWarning);
  CHECK_THAT(r.evidence("NetworkSaturated", eth0()), Contains("5 packets dropped"));
}

TEST_CASE("evaluator: SomaxconnTooLow when the kernel truncates -b, critical while overflowing",
          "[daemon][evaluator]") {
  Run r;
  r.s.host.somaxconn = 128;
  r.s.listeners[0].queue_max = 128;
  r.step();
  CHECK(r.state("SomaxconnTooLow") == Level::kWarning);
  CHECK_THAT(r.evidence("SomaxconnTooLow"),
             Contains("memcached asks for 1024 (-b), net.core.somaxconn is 128"));
  r.s.listeners[0].queue_peak = 128;
  r.s.host.listen_overflows = 40;
  r.step();
  CHECK(r.state("SomaxconnTooLow") == Level::kCritical);
  CHECK_THAT(r.evidence("SomaxconnTooLow"),
             Contains("its listener overflowed with a backlog under 1024: 0.0.0.0:11211 reached "
                      "its max queue (peak 128 of 128)"));
  CHECK(r.state("ListenQueueOverflow", kHost) == Level::kWarning);
}

TEST_CASE("evaluator: SlowClients counts blocked send queues", "[daemon][evaluator]") {
  Run r;
  r.s.ports[0].send_queue_blocked = 3;
  r.step(31);
  CHECK(r.state("SlowClients") == Level::kWarning);
  r.s.ports[0].send_queue_blocked = 12;
  r.step(31);
  CHECK(r.state("SlowClients") == Level::kCritical);
  r.s.ports[0].send_queue_blocked = 0;
  r.step();
  CHECK(r.state("SlowClients") == Level::kOk);
}

TEST_CASE("evaluator: MemcachedMemoryFull needs both a full cache and evictions",
          "[daemon][evaluator]") {
  Run r;
  r.target().bytes = 0.95 * 64e6;
  r.step(90);
  CHECK(r.state("MemcachedMemoryFull") == Level::kOk);  // full but not evicting
  for (int i = 0; i < 61; ++i) {
    r.target().evictions = *r.target().evictions + 10;
    r.step();
  }
  CHECK(r.state("MemcachedMemoryFull") == Level::kCritical);
  CHECK_THAT(r.evidence("MemcachedMemoryFull"), Contains("(95%)"));
}

TEST_CASE("evaluator: MemcachedMemoryFull fires where slab rounding keeps bytes under 90% of -m",
          "[daemon][evaluator]") {
  Run r;
  // memcached -m 64 full of 100-byte items, evicting: `bytes` is 87% of the limit.
  r.target().bytes = 0.87 * 64e6;
  r.step();
  for (int i = 0; i < 61; ++i) {
    r.target().evictions = *r.target().evictions + 1000;
    r.step();
  }
  CHECK(r.state("MemcachedMemoryFull") == Level::kWarning);
  CHECK_THAT(r.evidence("MemcachedMemoryFull"), Contains("(87%)"));
}

TEST_CASE("evaluator: /alerts JSON carries every field and parses", "[daemon][evaluator]") {
  Run r;
  r.target().name = "cache \"one\"";
  r.target().curr_connections = 990;
  r.step(7);
  std::istringstream in(r.e.json());
  boost::property_tree::ptree tree;
  REQUIRE_NOTHROW(boost::property_tree::read_json(in, tree));
  bool found = false;
  for (const auto& [unused, a] : tree.get_child("alerts")) {
    for (const char* field : {"name", "state", "target", "since", "value", "threshold", "cause",
                              "evidence", "remediation"}) {
      CHECK(a.count(field) == 1);
    }
    if (a.get<std::string>("name") == "MaxConnectionsNear") {
      found = true;
      CHECK(a.get<std::string>("state") == "critical");
      CHECK(a.get<std::string>("target") == "cache \"one\"");
      CHECK(a.get<double>("value") == Approx(0.99));
      CHECK(a.get<double>("threshold") == 0.95);
      CHECK_THAT(a.get<std::string>("remediation"), Contains("Raise memcached's -c"));
      CHECK(a.get<std::string>("since").size() == 20);
    }
  }
  CHECK(found);
}

TEST_CASE("evaluator: mcbacklog_alert_state has one series per alert and subject",
          "[daemon][evaluator]") {
  Run r;
  r.target().curr_connections = 990;
  r.step(7);
  const std::string text = render_families(r.e.Collect());
  CHECK(test::metric_value(
            text, R"(mcbacklog_alert_state{alert="MaxConnectionsNear",target="main"})") == 2);
  CHECK(test::metric_value(text, R"(mcbacklog_alert_state{alert="ListenQueueOverflow"})") == 0);
  CHECK(test::metric_value(
            text, R"(mcbacklog_alert_state{alert="NetworkSaturated",device="eth0"})") == 0);
}

TEST_CASE("evaluator: new thresholds keep the state, a removed target leaves",
          "[daemon][evaluator]") {
  Run r;
  r.target().curr_connections = 850;
  r.step(7);
  REQUIRE(r.state("MaxConnectionsNear") == Level::kWarning);
  auto th = Config::defaults().thresholds;
  th["MaxConnectionsNear"].warning = 0.9;
  th["MaxConnectionsNear"].clear = 0.8;
  r.e.set_thresholds(th);
  r.step();
  CHECK(r.state("MaxConnectionsNear") == Level::kWarning);  // 0.85 sits in the hysteresis band
  r.s.targets.clear();
  r.step();
  for (const AlertStatus& a : r.e.statuses()) CHECK(a.labels != AlertLabels{{"target", "main"}});
}
