// The configuration examples that once crashed, stalled or misled the built daemon: each is
// refused by --check-config, at start and on SIGHUP with its position, and a reload never ends
// the process nor holds its loop. Each daemon test runs in its own network namespace.

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>

#include "tests/support/daemon.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

std::string nested_include(std::size_t depth) {
  return "interval: 100ms\ntargets: []\ncollectors:\n  netdev:\n    include: \"" +
         std::string(depth, '(') + "a" + std::string(depth, ')') + "\"\n";
}

}  // namespace

TEST_CASE("config limits: --check-config and the start refuse each example with its position",
          "[integration][config][limits]") {
  test::TempDir dir;
  const struct {
    const char* what;
    std::string yaml;
    std::string says;
  } examples[] = {
      {"20,000 nested groups", nested_include(20000),
       ".yaml:5:14: collectors.netdev.include: a regular expression of 40001 bytes; at most 256"},
      {"17 nested groups", nested_include(17),
       ".yaml:5:14: collectors.netdev.include: groups and bracket expressions nested deeper"},
      {"a nan threshold", "thresholds: { MaxConnectionsNear: { warning: nan } }\n",
       ".yaml:1:46: thresholds.MaxConnectionsNear.warning: expected a finite number"},
      {"a name that is not UTF-8", "targets:\n  - { name: \"x\xc3(\", address: 127.0.0.1:1 }\n",
       ".yaml:2:13: targets[0].name: \"x\\xc3(\" is not UTF-8"},
      {"a 1ms probe", "targets:\n  - { address: 127.0.0.1:1, probe_interval: 1ms }\n",
       ".yaml:2:45: targets[0].probe_interval: 1ms is too short"},
      {"a unix path too long for sun_path",
       "targets:\n  - { name: s, address: \"unix:/" + std::string(107, 's') + "\" }\n",
       "a unix socket path of 108 bytes; at most 107"},
  };
  int i = 0;
  for (const auto& e : examples) {
    INFO(e.what);
    const std::string file = dir.write("example" + std::to_string(i++) + ".yaml", e.yaml);
    auto check = test::run_daemon("--check-config --config.file=" + file);
    CHECK(check.exit_code == 1);
    CHECK_THAT(check.output, Contains(file.substr(file.rfind('/') + 1, 8)) && Contains(e.says));
    auto start = test::run_daemon("--web.listen-address=127.0.0.1:0 --config.file=" + file);
    CHECK(start.exit_code == 1);
    CHECK_THAT(start.output, Contains(e.says));
  }
}

TEST_CASE("config limits: SIGHUP with 20,000 nested groups keeps the daemon and its configuration",
          "[integration][config][limits][reload]") {
  test::enter_private_netns();
  test::Daemon d(test::kQuietConfig);
  d.metrics();
  std::ofstream(d.config_path()) << nested_include(20000);
  const std::size_t mark = d.output().size();
  d.process().signal(SIGHUP);
  auto logged = d.process().wait_for_output(
      std::regex("reload failed, keeping the running configuration: [^\\n]*mcbacklogd.yaml:5:14: "
                 "collectors.netdev.include: a regular "
                 "expression of 40001 bytes"),
      15s, mark);
  CHECK(logged.has_value());
  CHECK(d.process().running());
  auto healthy = d.get("/-/healthy");
  REQUIRE(healthy.ok());
  CHECK(healthy->status == 200);
}

TEST_CASE(
    "config limits: SIGHUP with a 41 MB bad file or 256 KiB of errors logs a bounded message and "
    "the loop keeps answering",
    "[integration][config][limits][reload]") {
  test::enter_private_netns();
  test::Daemon d(test::kQuietConfig);
  d.metrics();

  // 41 MB of bad targets: refused by its size, before yaml-cpp reads it.
  {
    std::ofstream out(d.config_path());
    out << "targets:\n";
    const std::string line = "  - { name: t, address: bad, probe_interval: 1ms, x: 1 }\n";
    for (std::size_t written = 0; written < 41'000'000; written += line.size()) out << line;
  }
  std::size_t mark = d.output().size();
  d.process().signal(SIGHUP);
  auto too_large =
      d.process().wait_for_output(std::regex("reload failed, keeping the running configuration: "
                                             "[^\\n]*mcbacklogd.yaml: larger than 256 KiB"),
                                  15s, mark);
  CHECK(too_large.has_value());
  auto healthy = d.get("/-/healthy");
  REQUIRE(healthy.ok());
  CHECK(healthy->status == 200);
  CHECK(d.output().size() - mark < 1000);

  // Just under 256 KiB, an error on every line: 50 of them, and a line saying there are more.
  {
    std::ofstream out(d.config_path());
    out << "targets:\n";
    const std::string line = "  - { name: t, address: bad, probe_interval: 1ms, x: 1 }\n";
    for (std::size_t written = 10; written + line.size() < (256 << 10); written += line.size()) {
      out << line;
    }
  }
  mark = d.output().size();
  d.process().signal(SIGHUP);
  auto bounded = d.process().wait_for_output(
      std::regex("mcbacklogd.yaml: more errors not shown; at most 50 are reported"), 30s, mark);
  CHECK(bounded.has_value());
  const std::size_t logged = d.output().size() - mark;
  INFO("logged " << logged << " bytes");
  CHECK(logged < 20000);
  healthy = d.get("/-/healthy");
  REQUIRE(healthy.ok());
  CHECK(healthy->status == 200);
  CHECK(d.process().running());
}
