// The built daemon whoever starts it: its soft descriptor limit raised to the hard one, a
// configuration that does not fit its descriptors refused, accept failures logged once a minute,
// stray signals harmless, and SIGTERM heard even when the parent blocked it. Each test runs in
// its own network namespace.

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/support/daemon.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

// "Max open files  SOFT  HARD  files" of /proc/PID/limits.
std::pair<long, long> open_files_limit(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, std::regex(R"(^Max open files\s+(\d+)\s+(\d+))"))) {
      return {std::stol(m[1]), std::stol(m[2])};
    }
  }
  return {-1, -1};
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string targets_config(int n) {
  std::string yaml = "targets:\n";
  for (int i = 0; i < n; ++i) {
    yaml += "  - { name: t" + std::to_string(i) +
            ", address: 127.0.0.1:" + std::to_string(20000 + i) + " }\n";
  }
  return yaml;
}

}  // namespace

TEST_CASE("process limits: the soft descriptor limit is raised to the hard one at start",
          "[integration][limits]") {
  test::enter_private_netns();
  test::Daemon d(test::kQuietConfig, {}, {"/usr/bin/prlimit", "--nofile=256:8192", "--"});
  CHECK(open_files_limit(d.process().pid()) == std::pair<long, long>{8192, 8192});
}

TEST_CASE("process limits: 1000 targets at a limit of 1024 are refused at start and at check",
          "[integration][limits]") {
  test::TempDir dir;
  const std::string file = dir.write("many.yaml", targets_config(1000));
  for (const std::string flag : {"--check-config", "--web.listen-address=127.0.0.1:0"}) {
    INFO(flag);
    auto r = test::run_command("/usr/bin/prlimit --nofile=1024:1024 -- " + test::daemon_binary() +
                               " " + flag + " --config.file=" + file);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.output, Contains("many.yaml: 1000 targets need up to 2096 file descriptors") &&
                             Contains("the limit is 1024 (hard limit 1024)"));
  }
  // Where the hard limit allows, the same file runs.
  auto ok = test::run_command("/usr/bin/prlimit --nofile=1024:4096 -- " + test::daemon_binary() +
                              " --check-config --config.file=" + file);
  CHECK(ok.exit_code == 0);
}

TEST_CASE("process limits: out of descriptors, accept failures are logged once and HTTP recovers",
          "[integration][limits][http]") {
  test::enter_private_netns();
  test::Daemon d(test::kQuietConfig);
  d.metrics();
  // Leave the running daemon a few descriptors more than it holds, then ask for more.
  std::size_t open = 0;
  for (const auto& unused :
       std::filesystem::directory_iterator("/proc/" + std::to_string(d.process().pid()) + "/fd")) {
    (void)unused;
    ++open;
  }
  const auto limit = std::to_string(open + 4);
  REQUIRE(test::run_command("/usr/bin/prlimit --pid " + std::to_string(d.process().pid()) +
                            " --nofile=" + limit + ":" + limit)
              .exit_code == 0);
  const std::size_t mark = d.output().size();
  std::vector<int> clients;
  clients.reserve(40);
  for (int i = 0; i < 40; ++i) clients.push_back(test::connect_loopback(d.port()));
  REQUIRE(d.process().wait_for_output(std::regex("HTTP accept failed: Too many open files"), 10s,
                                      mark));
  // Failures go on while the clients stay (the pause between attempts is 100 ms), the log holds
  // one line for them.
  std::this_thread::sleep_for(2s);
  CHECK(count_of(d.output().substr(mark), "HTTP accept failed") == 1);
  for (int fd : clients) {
    if (fd >= 0) ::close(fd);
  }
  // The sessions time out or end, descriptors come back, the listener answers again.
  CHECK(test::eventually(
      [&] {
        auto r = d.get("/-/healthy");
        return r.ok() && r->status == 200;
      },
      30s));
  CHECK(d.process().running());
}

TEST_CASE("process limits: SIGUSR1, SIGUSR2, SIGALRM and SIGPIPE are ignored",
          "[integration][limits][signals]") {
  test::enter_private_netns();
  // Started with every signal at its default action, as by a careless parent.
  test::Daemon d(test::kQuietConfig, {},
                 {"/usr/bin/python3", "-c",
                  "import os, signal, sys\n"
                  "for s in (signal.SIGPIPE, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM):\n"
                  "    signal.signal(s, signal.SIG_DFL)\n"
                  "os.execv(sys.argv[1], sys.argv[1:])\n"});
  d.metrics();
  for (const int s : {SIGUSR1, SIGUSR2, SIGALRM, SIGPIPE}) d.process().signal(s);
  auto healthy = d.get("/-/healthy");
  REQUIRE(healthy.ok());
  CHECK(healthy->status == 200);
  CHECK(d.process().running());
}

TEST_CASE("process limits: SIGTERM stops the daemon even when its parent blocked it",
          "[integration][limits][signals]") {
  test::enter_private_netns();
  test::Daemon d(test::kQuietConfig, {},
                 {"/usr/bin/python3", "-c",
                  "import os, signal, sys\n"
                  "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGHUP})\n"
                  "os.execv(sys.argv[1], sys.argv[1:])\n"});
  d.metrics();
  d.process().signal(SIGTERM);
  const auto code = d.process().wait_exit(10s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
}

TEST_CASE("process limits: the sysctl collector fails when none of its files exist",
          "[integration][limits][scheduler]") {
  test::enter_private_netns();
  test::TempDir procfs;  // empty: neither netstat's nor sysctl's files
  test::Daemon d(
      "interval: 100ms\ntargets: []\ncollectors: { sockdiag: { enabled: false }, "
      "netdev: { enabled: false } }\npaths: { procfs: " +
      procfs.path() + " }\n");
  const std::string body = d.metrics();
  CHECK(test::metric_value(body, R"(mcbacklog_collector_success{collector="sysctl"})") == 0);
  CHECK(test::eventually([&] {
    return d.output().find("collector sysctl failed: none of net.core.somaxconn") !=
           std::string::npos;
  }));
}
