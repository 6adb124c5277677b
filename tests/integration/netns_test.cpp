// memcached where a pod's memcached is: in a network namespace of its own, watched from the
// daemon's (the test's private one) through `netns:` and `netns_pid:`; and memcached on a unix
// socket, whose listener's accept queue comes from unix_diag. Each drives memcached past its
// connection limit for real and asserts the namespace's own kernel figures, the `netns` label,
// and the verdict.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <regex>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "collectors/discovery.hpp"
#include "collectors/memcached_client.hpp"
#include "collectors/netstat.hpp"
#include "collectors/sockdiag.hpp"
#include "daemon/alerts/alert_state.hpp"
#include "daemon/alerts/rules.hpp"
#include "tests/support/alerts.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/load.hpp"
#include "tests/support/memcached.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

// Sampling every 200 ms, alerts with `for: 0s` (MemcachedDown and ProbeSlow 1 s) and 5 s windows.
std::string config_with(const std::string& targets) {
  std::string out = "interval: 200ms\ntargets:\n" + targets +
                    "collectors:\n  netdev: { enabled: false }\n"
                    "  sockdiag: { sample_interval: 50ms, peak_window: 2s }\n"
                    "thresholds:\n";
  for (const Rule& rule : rules()) {
    const std::string alert(rule.name);
    const bool held = alert == "MemcachedDown" || alert == "ProbeSlow";
    out += "  " + alert + ": { for: " + (held ? "1s" : "0s") + ", window: 5s }\n";
  }
  return out;
}

void wait_for_series(test::Daemon& d, const std::string& series, double value) {
  const auto m = d.wait_for_metrics(
      [&](const std::string& text) { return test::metric_value(text, series) == value; });
  INFO(series << "\n" << d.output());
  REQUIRE(m.has_value());
}

// memcached in `pod` as the lab cause wants it: 64 connections at most, its listener disabled
// past them (no_maxconns_fast), a backlog of 8.
std::unique_ptr<test::Memcached> limited_memcached_in(const test::NamedNetns& pod) {
  std::unique_ptr<test::Memcached> mc;
  pod.inside([&] {
    mc = std::make_unique<test::Memcached>(
        std::vector<std::string>{"-c", "64", "-o", "no_maxconns_fast", "-b", "8"});
  });
  return mc;
}

// Clients in the pod, a new one every 2 ms: memcached accepts until it runs out of descriptors,
// then calls listen(fd, 0) and the pod's kernel drops the handshakes of the rest.
std::vector<test::Socket> past_the_limit(const test::NamedNetns& pod, const test::Memcached& mc) {
  std::vector<test::Socket> clients;
  clients.reserve(100);
  pod.inside([&] {
    for (int i = 0; i < 100; ++i) {
      clients.push_back(test::connect_tcp("127.0.0.1", mc.port(), {.wait = false}));
      std::this_thread::sleep_for(2ms);
    }
  });
  return clients;
}

// A non-blocking connect to a unix socket; nullopt when its listener's queue is full.
std::optional<test::Socket> connect_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  REQUIRE(fd >= 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  return test::Socket(fd);
}

}  // namespace

TEST_CASE(
    "netns: memcached in another network namespace is read there, and its overflows, accept queue "
    "and verdict carry its netns label, apart from the daemon's namespace",
    "[integration][netns]") {
  test::enter_private_netns();
  test::NamedNetns pod("pod-a");
  const auto mc = limited_memcached_in(pod);
  // Another memcached on the same address and port in the daemon's own namespace: its figures
  // must never be taken for the pod's.
  test::Memcached own({}, test::Memcached::Listen::tcp("127.0.0.1", mc->port()));
  const std::string port = std::to_string(mc->port());
  test::Daemon d(config_with("  - { name: mc, address: \"" + mc->address() +
                             "\", probe_interval: 200ms, netns: " + pod.path() +
                             " }\n"
                             "  - { name: own, address: \"" +
                             own.address() + "\", probe_interval: 0 }\n"));
  wait_for_series(d, R"(memcached_up{target="mc",netns="pod-a"})", 1);
  wait_for_series(d, R"(memcached_up{target="own"})", 1);
  // The start-up line tells the namespaces' collectors apart.
  const std::string log = d.output();
  const auto started = log.find("with collectors: ");
  REQUIRE(started != std::string::npos);
  const std::string line = log.substr(started, log.find('\n', started) - started);
  CHECK_THAT(line, Contains("netstat, ") && Contains("netstat (netns pod-a)") &&
                       Contains("sockdiag (netns pod-a)"));
  wait_for_series(d, R"(mcbacklog_probe_success{target="mc",netns="pod-a"})", 1);
  // Each namespace's listener, with its own backlog: -b 8 in the pod, 1024 here.
  wait_for_series(
      d, R"(mcbacklog_accept_queue_max{address="127.0.0.1",port=")" + port + R"(",netns="pod-a"})",
      8);
  wait_for_series(d, R"(mcbacklog_accept_queue_max{address="127.0.0.1",port=")" + port + R"("})",
                  1024);
  const std::string before = d.metrics();
  CHECK(test::metric_value(
            before, R"(mcbacklog_collector_success{collector="sysctl",netns="pod-a"})") == 1);
  CHECK(test::metric_value(before, R"(mcbacklog_somaxconn{netns="pod-a"})").has_value());

  const auto clients = past_the_limit(pod, *mc);

  wait_for_series(
      d, R"(mcbacklog_accept_queue_max{address="127.0.0.1",port=")" + port + R"(",netns="pod-a"})",
      0);
  INFO(d.metrics());
  const std::string listener = "127.0.0.1:" + port;
  test::wait_for_alert(d, "ListenQueueOverflow", Level::kWarning,
                       {"memcached's listener overflowed: " + listener + " dropped"});
  const test::Alerts view =
      test::wait_for_alert(d, "MaxConnectionsNear", Level::kCritical,
                           {"listener " + listener + " has a max queue of 0"});
  CHECK(view.at("MaxConnectionsNear").labels == AlertLabels{{"target", "mc"}, {"netns", "pod-a"}});
  CHECK(view.at("ListenQueueOverflow").labels == AlertLabels{{"netns", "pod-a"}});
  wait_for_series(
      d, R"(mcbacklog_accept_queue_max{address="127.0.0.1",port=")" + port + R"(",netns="pod-a"})",
      0);
  const std::string after = d.metrics();
  // The overflows are the pod's; the daemon's namespace had none, and its memcached is fine.
  CHECK(
      test::metric_value(after, R"(mcbacklog_listen_overflows_total{netns="pod-a"})").value_or(0) >
      0);
  CHECK(test::metric_value(after, "mcbacklog_listen_overflows_total") == 0);
  CHECK(test::metric_value(after, R"(mcbacklog_accept_queue_max{address="127.0.0.1",port=")" +
                                      port + R"("})") == 1024);
  CHECK(test::metric_value(
            after, R"(mcbacklog_alert_state{alert="MaxConnectionsNear",target="mc",netns="pod-a"})")
            .value_or(0) == 2);
  CHECK(test::metric_value(
            after, R"(mcbacklog_alert_state{alert="MaxConnectionsNear",target="own"})") == 0);
  CHECK(test::metric_value(after, R"(mcbacklog_alert_state{alert="ListenQueueOverflow"})") == 0);
}

TEST_CASE(
    "netns: without CAP_SYS_ADMIN a netns_pid target says which privilege is missing, and the "
    "namespace's kernel counters still come from /proc/PID/net",
    "[integration][netns]") {
  test::enter_private_netns();
  test::NamedNetns pod("pod-b");
  std::unique_ptr<test::Memcached> mc;
  pod.inside([&] { mc = std::make_unique<test::Memcached>(); });
  const std::string pid = std::to_string(mc->process().pid());
  // Root without CAP_SYS_ADMIN: setns is refused, /proc/PID/net is readable.
  test::Daemon d(config_with("  - { name: mc, address: \"" + mc->address() +
                             "\", probe_interval: 200ms, netns_pid: " + pid + " }\n"),
                 {}, {"/usr/bin/setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin"});
  // Memcached's process is not in a container: the namespace is named after it.
  const std::string label = "pid:" + pid;
  wait_for_series(d, R"(mcbacklog_collector_success{collector="netstat",netns=")" + label + "\"}",
                  1);
  wait_for_series(d, R"(mcbacklog_collector_success{collector="sysctl",netns=")" + label + "\"}",
                  0);
  wait_for_series(d, R"(memcached_up{target="mc",netns=")" + label + "\"}", 0);
  const std::string m = d.metrics();
  CHECK(test::metric_value(m, R"(mcbacklog_listen_overflows_total{netns=")" + label + "\"}")
            .has_value());
  CHECK(test::metric_value(
            m, R"(mcbacklog_collector_success{collector="sockdiag",netns=")" + label + "\"}") == 0);
  const std::string log = d.output();
  CHECK_THAT(log, Contains("collector sysctl (netns " + label + ") failed"));
  CHECK_THAT(log, Contains("collector sockdiag (netns " + label + ") failed"));
  CHECK_THAT(log, Contains("entering a network namespace needs CAP_SYS_ADMIN"));
  CHECK_THAT(log, !Contains("half the interval"));  // a privilege, not a deadline
  const test::Alerts view = test::alerts_of(test::alerts(d), "mc");
  REQUIRE(view.count("MemcachedDown") == 1);
  CHECK_THAT(test::evidence(view.at("MemcachedDown")),
             Contains("entering a network namespace needs CAP_SYS_ADMIN"));
}

TEST_CASE(
    "unix sockets: memcached on a unix socket past -c with no_maxconns_fast shows its queue, max "
    "0 and the stopped-accepting verdict",
    "[integration][netns][unix]") {
  test::enter_private_netns();
  test::TempDir dir;
  const std::string path = dir.path() + "/memcached.sock";
  test::Memcached mc({"-c", "64", "-o", "no_maxconns_fast", "-b", "32"},
                     test::Memcached::Listen::unix_socket(path));
  test::Daemon d(
      config_with("  - { name: mc, address: \"unix:" + path + "\", probe_interval: 0 }\n"));
  wait_for_series(d, R"(memcached_up{target="mc"})", 1);
  const std::string series = "{address=\"unix:" + path + "\"}";
  wait_for_series(d, "mcbacklog_accept_queue_max" + series, 32);
  // Clients until memcached runs out of descriptors and calls listen(fd, 0): the one connect the
  // kernel still queues, then none.
  std::vector<test::Socket> clients;
  int refused = 0;
  for (int i = 0; i < 200 && refused < 5; ++i) {
    auto c = connect_unix(path);
    if (!c) {
      ++refused;
      continue;
    }
    clients.push_back(std::move(*c));
    std::this_thread::sleep_for(2ms);
  }
  CHECK(refused == 5);
  wait_for_series(d, "mcbacklog_accept_queue_max" + series, 0);
  const auto waiting = d.wait_for_metrics([&](const std::string& text) {
    return test::metric_value(text, "mcbacklog_accept_queue_length" + series).value_or(0) >= 1;
  });
  CHECK(waiting.has_value());
  const test::Alerts view = test::wait_for_alert(
      d, "MaxConnectionsNear", Level::kCritical,
      {"listener unix:" + path + " has a max queue of 0: memcached stopped accepting"});
  CHECK_THAT(test::evidence(view.at("MaxConnectionsNear")),
             Contains("memcached is not accepting now"));
  // Many new connections a second is ConnectionSprawl too: not asserted either way.
  test::check_ok(view, {"MemcachedDown", "SlowClients", "MemcachedMemoryFull"});
}

TEST_CASE(
    "netns: files and sockets kept open in a target's namespace are let go when its process ends "
    "or its file is removed, and opening them again says why",
    "[integration][netns]") {
  test::enter_private_netns();
  test::NamedNetns pod("pod-c");
  std::unique_ptr<test::Memcached> mc;
  pod.inside([&] { mc = std::make_unique<test::Memcached>(); });
  const NetnsConfig by_pid{"", mc->process().pid()};
  const NetnsConfig by_file{pod.path(), 0};
  boost::asio::io_context io;
  SockdiagConfig config;
  auto run = [](Collector& c) {
    Status status = fail("not run");
    c.collect([&](Status s) { status = std::move(s); });
    return status;
  };
  NetstatCollector netstat_pid("/proc", by_pid);
  NetstatCollector netstat_file("/proc", by_file);
  std::shared_ptr<StatsConnection> stats;
  auto query = [&] {
    std::optional<StatsReply> reply;
    stats->query(SteadyClock::now() + 2s, [&](StatsReply r) { reply = std::move(r); });
    io.restart();
    while (!reply) io.run_one_for(50ms);
    return std::move(*reply);
  };
  auto sockdiag_pid = std::make_shared<SockdiagCollector>(
      io, config, std::vector<std::uint16_t>{mc->port()}, std::chrono::seconds(1),
      SockdiagScope{by_pid, "/proc", {}});
  REQUIRE(run(netstat_pid).ok());
  REQUIRE(run(netstat_file).ok());
  REQUIRE(run(*sockdiag_pid).ok());
  REQUIRE(sockdiag_pid->last()->listeners.size() == 1);  // the pod's memcached, seen from inside

  // The namespace lives on (the bind mount holds it), but the process named is gone.
  mc->kill();
  const std::string ended = "process " + std::to_string(by_pid.pid) + " ended";
  auto after = run(netstat_pid);
  REQUIRE_FALSE(after.ok());
  CHECK_THAT(after.error().message, Contains(ended));
  after = run(netstat_pid);  // opened again: it is not there
  REQUIRE_FALSE(after.ok());
  CHECK_THAT(after.error().message, Contains("no process " + std::to_string(by_pid.pid)));
  after = run(*sockdiag_pid);
  REQUIRE_FALSE(after.ok());
  CHECK_THAT(after.error().message, Contains(ended));
  CHECK_FALSE(sockdiag_pid->last().has_value());
  CHECK_FALSE(run(*sockdiag_pid).ok());
  sockdiag_pid->stop();

  // The file no longer names the namespace (`ip netns del` unmounts it). A memcached still
  // running there would go on answering the stats connection: the connection is let go too.
  REQUIRE(run(netstat_file).ok());
  pod.inside([&] { mc = std::make_unique<test::Memcached>(); });
  stats = std::make_shared<StatsConnection>(
      io, Transport(*parse_target_address(mc->address()), by_file), StatsConnection::Options{});
  REQUIRE(query().stats.ok());
  REQUIRE(::umount2(pod.path().c_str(), MNT_DETACH) == 0);
  StatsReply gone = query();
  REQUIRE_FALSE(gone.stats.ok());
  CHECK(gone.failure == FailureKind::kNamespace);
  CHECK_THAT(gone.stats.error().message,
             Contains("the file was removed or now names another namespace"));
  CHECK_FALSE(stats->connected());
  gone = query();  // not connected again: the file left behind is no namespace
  REQUIRE_FALSE(gone.stats.ok());
  CHECK(gone.failure == FailureKind::kNamespace);
  CHECK(stats->connects() == 1);
  after = run(netstat_file);
  REQUIRE_FALSE(after.ok());
  CHECK_THAT(after.error().message,
             Contains("the file was removed or now names another namespace"));
  after = run(netstat_file);  // the file left behind is no namespace
  REQUIRE_FALSE(after.ok());
  CHECK_THAT(after.error().message, Contains("not a network namespace"));
}

namespace {

std::string inode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return std::to_string(st.st_ino);
}

// Discovery of the memcached in the test's own namespaces alone (other tests run beside).
std::string discover_in(const std::string& pod_path, const std::string& grace) {
  return "discover: { enabled: true, interval: 500ms, grace: " + grace + ", only_netns: [" +
         pod_path + ", /proc/self/ns/net] }\n";
}

}  // namespace

TEST_CASE(
    "discovery: memcached in a pod's namespace is found, named and read there, a lab cause there "
    "is named, a configured target is not found twice, and a crashed one stays for the grace "
    "period before its series leave",
    "[integration][netns][discovery]") {
  test::enter_private_netns();
  test::NamedNetns pod("pod-d");
  const auto mc = limited_memcached_in(pod);
  std::unique_ptr<test::Memcached> second;  // a second process of the same pod
  pod.inside([&] { second = std::make_unique<test::Memcached>(); });
  test::Memcached configured;  // in the daemon's namespace, and in its configuration
  test::Memcached found_here;  // in the daemon's namespace, found
  const std::string port = std::to_string(mc->port());
  const std::string name = "memcached@" + inode_of(pod.path()) + ":" + port;
  const std::string own = inode_of("/proc/self/ns/net");
  // memcached's process is in no container here: its namespace is named after it.
  const std::string label = "pid:" + std::to_string(mc->process().pid());
  test::Daemon d(config_with("  - { name: conf, address: \"" + configured.address() +
                             "\", probe_interval: 0 }\n") +
                 discover_in(pod.path(), "4s"));
  wait_for_series(d, R"(memcached_up{target=")" + name + R"(",netns=")" + label + "\"}", 1);
  wait_for_series(
      d,
      R"(memcached_up{target="memcached@)" + own + ":" + std::to_string(found_here.port()) + "\"}",
      1);
  wait_for_series(d, R"(memcached_up{target="conf"})", 1);
  CHECK_THAT(d.metrics(),
             !Contains("memcached@" + own + ":" + std::to_string(configured.port()) + "\""));
  CHECK_THAT(d.output(), Contains("discovery: added " + name + " (pid "));
  // The pod's second memcached is read in the same namespace, named as the first names it: the
  // namespace's own series come once.
  const std::string second_name =
      "memcached@" + inode_of(pod.path()) + ":" + std::to_string(second->port());
  const auto first_pid = std::min(mc->process().pid(), second->process().pid());
  const std::string pod_label = "pid:" + std::to_string(first_pid);
  wait_for_series(d, R"(memcached_up{target=")" + second_name + R"(",netns=")" + pod_label + "\"}",
                  1);
  const std::string both = d.metrics();
  CHECK(test::metric_value(both, R"(mcbacklog_discovered_targets)") == 3);
  CHECK(test::metric_value(both, R"(mcbacklog_discovery_problems)") == 0);
  std::size_t somaxconn = 0;
  for (std::size_t at = both.find("\nmcbacklog_somaxconn"); at != std::string::npos;
       at = both.find("\nmcbacklog_somaxconn", at + 1)) {
    ++somaxconn;
  }
  CHECK(somaxconn == 2);  // the daemon's namespace and the pod's

  // The lab cause in the pod: past -c with no_maxconns_fast, memcached stops accepting.
  auto clients = past_the_limit(pod, *mc);
  const test::Alerts view =
      test::wait_for_alert(d, "MaxConnectionsNear", Level::kCritical,
                           {"listener 127.0.0.1:" + port + " has a max queue of 0"}, name);
  CHECK(view.at("MaxConnectionsNear").labels == AlertLabels{{"target", name}, {"netns", label}});
  CHECK(test::metric_value(d.metrics(), "mcbacklog_listen_overflows_total") == 0);

  // A crash: MemcachedDown's series stays through the grace period, a reload included, then
  // leaves.
  clients.clear();
  mc->kill();
  wait_for_series(d, R"(memcached_up{target=")" + name + R"(",netns=")" + label + "\"}", 0);
  d.process().signal(SIGHUP);
  REQUIRE(d.process().wait_for_output(std::regex("configuration reloaded"), 10s));
  CHECK(test::metric_value(
            d.metrics(), R"(memcached_up{target=")" + name + R"(",netns=")" + label + "\"}") == 0);
  const auto gone = d.wait_for_metrics([&](const std::string& text) {
    return text.find("target=\"" + name + "\"") == std::string::npos;
  });
  INFO(d.output());
  REQUIRE(gone.has_value());
  CHECK_THAT(d.output(), Contains("discovery: dropped " + name + ": not found for "));
  CHECK(test::metric_value(*gone, R"(memcached_up{target="conf"})") == 1);
}

TEST_CASE(
    "discovery: memcached in a pid namespace of its own reports another pid, and its worker "
    "threads "
    "are read through the pid discovery found",
    "[integration][netns][discovery]") {
  test::enter_private_netns();
  test::NamedNetns pod("pod-p");
  std::unique_ptr<test::Child> unshare;
  pod.inside([&] {
    std::vector<std::string> argv{"/usr/bin/unshare",
                                  "--pid",
                                  "--fork",
                                  "--kill-child",
                                  "--mount-proc",
                                  "/usr/bin/memcached",
                                  "-U",
                                  "0",
                                  "-l",
                                  "127.0.0.1",
                                  "-p",
                                  "11211",
                                  "-t",
                                  "4"};
    if (::geteuid() == 0) argv.insert(argv.end(), {"-u", "root"});
    unshare = std::make_unique<test::Child>(argv);
  });
  test::StatsMap stats;
  const bool answering = test::eventually([&] {
    bool ok = false;
    pod.inside([&] {
      try {
        stats = test::parse_stat_lines(test::memcached_request("127.0.0.1:11211", "stats\r\n"));
        ok = true;
      } catch (const std::exception&) {
      }
    });
    return ok;
  });
  INFO(unshare->output());
  REQUIRE(answering);
  CHECK(stats.at("pid") == "1");  // its own pid namespace's
  test::Daemon d(config_with("  []\n") + discover_in(pod.path(), "5m"));
  const std::string name = "memcached@" + inode_of(pod.path()) + ":11211";
  const auto m = d.wait_for_metrics([&](const std::string& text) {
    return text.find("mcbacklog_memcached_busiest_thread_cpu_utilization_ratio{target=\"" + name +
                     "\"") != std::string::npos;
  });
  INFO(d.output());
  REQUIRE(m.has_value());
  CHECK_THAT(d.output(), !Contains("is not a memcached process this daemon can see"));
}

namespace {

// A process whose root is `root` (python3 chroots itself there and sleeps), as a pod's
// processes see their image's files.
std::unique_ptr<test::Child> process_rooted_in(const std::string& root) {
  auto child = std::make_unique<test::Child>(std::vector<std::string>{
      "/usr/bin/python3", "-c",
      "import os, sys, time; os.chroot(sys.argv[1]); print('rooted', flush=True); time.sleep(60)",
      root});
  REQUIRE(child->wait_for_output(std::regex("rooted"), 10s));
  return child;
}

}  // namespace

TEST_CASE(
    "discovery: a pod's name is read from its own root, and its files cannot make the daemon "
    "wait, read without end or read the host's files",
    "[integration][discovery]") {
  test::TempDir root;
  const std::string sa = root.path() + "/var/run/secrets/kubernetes.io/serviceaccount";
  std::filesystem::create_directories(sa);
  std::filesystem::create_directories(root.path() + "/etc");
  root.write("etc/hostname", "memcached-0\n");
  root.write("var/run/secrets/kubernetes.io/serviceaccount/namespace", "shop");
  {
    const auto pod = process_rooted_in(root.path());
    CHECK(pod_name("/proc", pod->pid()) == "shop/memcached-0");
  }
  // A FIFO is refused at once (opening it would wait for a writer for ever), and a link to a
  // device that never ends too.
  std::filesystem::remove(root.path() + "/etc/hostname");
  REQUIRE(::mkfifo((root.path() + "/etc/hostname").c_str(), 0644) == 0);
  std::filesystem::remove(sa + "/namespace");
  std::filesystem::create_symlink("/dev/zero", sa + "/namespace");
  {
    const auto pod = process_rooted_in(root.path());
    CHECK_FALSE(pod_name("/proc", pod->pid()));
  }
  // An absolute link is resolved inside the pod's root: /etc/machine-id of the host is not read.
  std::filesystem::remove(root.path() + "/etc/hostname");
  std::filesystem::create_symlink("/etc/machine-id", root.path() + "/etc/hostname");
  std::filesystem::remove(sa + "/namespace");
  root.write("var/run/secrets/kubernetes.io/serviceaccount/namespace", "shop");
  {
    const auto pod = process_rooted_in(root.path());
    CHECK_FALSE(pod_name("/proc", pod->pid()));
    // The same name inside the root is read: the link's target is the pod's own file.
    std::filesystem::create_directories(root.path() + "/etc");
    root.write("etc/machine-id", "memcached-1\n");
    CHECK(pod_name("/proc", pod->pid()) == "shop/memcached-1");
  }
  // More than a name holds: refused.
  std::filesystem::remove(root.path() + "/etc/machine-id");
  root.write("etc/machine-id", std::string(4096, 'a'));
  {
    const auto pod = process_rooted_in(root.path());
    CHECK_FALSE(pod_name("/proc", pod->pid()));
  }
}

TEST_CASE(
    "discovery: an only_netns file that is not a network namespace is named in the scan's "
    "problems, once while it lasts, and nothing is discovered through it",
    "[integration][discovery]") {
  test::TempDir dir;
  const std::string fifo = test::make_fifo(dir, "netns");
  DiscoverConfig config;
  config.enabled = true;
  config.only_netns = {"/etc/passwd", "/proc/self/ns/pid", "/nonexistent/netns", fifo};
  for (int i = 0; i < 4; ++i) {
    config.only_netns_origins.push_back("d.yaml:" + std::to_string(i + 3) +
                                        ":5: discover.only_netns[" + std::to_string(i) + "]");
  }
  Discoverer discoverer(config, "/proc");
  const auto first = test::unless_held(fifo, [&] { return discoverer.scan(); });
  REQUIRE(first.has_value());
  CHECK(first->found.empty());
  REQUIRE(first->problems.size() == 4);
  // Each named by where the configuration names it.
  CHECK_THAT(first->problems[0], Contains("d.yaml:3:5: discover.only_netns[0]: /etc/passwd: not a "
                                          "network namespace file"));
  CHECK_THAT(first->problems[1], Contains("/proc/self/ns/pid: not a network namespace file"));
  CHECK_THAT(first->problems[2], Contains("/nonexistent/netns: no such file (ip netns add?)"));
  CHECK_THAT(first->problems[3], Contains("d.yaml:6:5: discover.only_netns[3]: " + fifo +
                                          ": is a FIFO, not a network namespace file"));
  CHECK(discoverer.problem_count() == 4);
  const auto second = discoverer.scan();
  CHECK(second.problems.empty());  // logged once while it lasts
  CHECK(discoverer.problem_count() == 4);
}
