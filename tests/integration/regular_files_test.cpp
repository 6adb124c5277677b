// A FIFO named where the daemon expects a file (the configuration, the web configuration, a TLS
// file of a target or of the endpoint) or a network namespace file: refused at once by
// --check-config, at a reload and at the start, naming the path and where it is set; opening it
// used to wait for a writer for ever. Each command runs under `timeout -s KILL 30`, a bound on a
// hang and no timing assertion. Each daemon test runs in its own network namespace.

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "tests/support/daemon.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"
#include "tests/support/tls.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

test::CommandResult check_config(const std::string& args) {
  return test::run_daemon("--check-config " + args);
}

std::string refused(const std::string& path) { return path + ": is a FIFO, not a regular file"; }

}  // namespace

TEST_CASE("regular files: --check-config refuses a FIFO as the configuration or web configuration",
          "[integration][config][files]") {
  test::TempDir dir;
  const std::string fifo = test::make_fifo(dir, "fifo.yaml");
  const std::string good = dir.write("good.yaml", test::kQuietConfig);

  auto config = check_config("--config.file=" + fifo);
  CHECK(config.exit_code == 1);
  CHECK_THAT(config.output, Contains(refused(fifo)));

  auto web_flag = check_config("--config.file=" + good + " --web.config.file=" + fifo);
  CHECK(web_flag.exit_code == 1);
  CHECK_THAT(web_flag.output, Contains(refused(fifo)));

  // Named in the configuration: the message says where.
  const std::string names_web = dir.write(
      "names-web.yaml", std::string(test::kQuietConfig) + "web:\n  config_file: fifo.yaml\n");
  auto web_key = check_config("--config.file=" + names_web);
  CHECK(web_key.exit_code == 1);
  CHECK_THAT(web_key.output, Contains(names_web + ":5:16: web.config_file: " + refused(fifo)));
}

TEST_CASE("regular files: --check-config refuses a FIFO as a target's CA, certificate or key",
          "[integration][config][files][tls]") {
  test::TempDir dir;
  const auto pki = test::make_test_pki(dir);
  const std::string fifo = test::make_fifo(dir, "fifo.pem");
  const struct {
    std::string key;
    std::string tls;  // the other keys of the block; `key` is added last
  } cases[] = {
      {"ca_file", ""},
      {"cert_file", "      ca_file: " + pki.ca_cert + "\n      key_file: " + pki.client_key + "\n"},
      {"key_file",
       "      ca_file: " + pki.ca_cert + "\n      cert_file: " + pki.client_cert + "\n"},
  };
  for (const auto& c : cases) {
    INFO(c.key);
    const std::string yaml = "targets:\n  - address: \"127.0.0.1:11211\"\n    tls:\n" + c.tls +
                             "      " + c.key + ": fifo.pem\n";
    const std::string file = dir.write(c.key + ".yaml", yaml);
    const int line = 4 + (c.tls.empty() ? 0 : 2);
    const std::size_t column = 6 + c.key.size() + 2 + 1;
    auto checked = check_config("--config.file=" + file);
    CHECK(checked.exit_code == 1);
    CHECK_THAT(checked.output,
               Contains(file + ":" + std::to_string(line) + ":" + std::to_string(column) +
                        ": targets[0].tls." + c.key + ": " + refused(fifo)));
    CHECK_THAT(checked.output, !Contains("configuration is valid"));
  }
  // A missing file says why, not only that OpenSSL failed.
  const std::string absent =
      dir.write("absent.yaml",
                "targets:\n  - address: \"127.0.0.1:11211\"\n    tls: { ca_file: none.pem }\n");
  auto missing = check_config("--config.file=" + absent);
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.output, Contains(absent + ":3:21: targets[0].tls.ca_file: " + dir.path() +
                                      "/none.pem: cannot open: No such file or directory"));
}

TEST_CASE("regular files: --check-config refuses a FIFO as the endpoint's certificate, key or CAs",
          "[integration][config][files][tls]") {
  test::TempDir dir;
  const auto pki = test::make_test_pki(dir);
  const std::string fifo = test::make_fifo(dir, "fifo.pem");
  const std::string good = dir.write("good.yaml", test::kQuietConfig);
  for (const std::string key : {"cert_file", "key_file", "client_ca_file"}) {
    INFO(key);
    std::string yaml = "tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n";
    int line = 3;
    for (const auto& [k, file] : {std::pair<std::string, std::string>{"cert_file", pki.server_cert},
                                  {"key_file", pki.server_key},
                                  {"client_ca_file", pki.ca_cert}}) {
      if (k == key) continue;
      yaml += "  " + k + ": " + file + "\n";
      ++line;
    }
    yaml += "  " + key + ": fifo.pem\n";
    const std::string web = dir.write(key + ".yml", yaml);
    auto checked = check_config("--config.file=" + good + " --web.config.file=" + web);
    CHECK(checked.exit_code == 1);
    CHECK_THAT(checked.output, Contains(web + ":" + std::to_string(line) + ":" +
                                        std::to_string(2 + key.size() + 2 + 1) +
                                        ": tls_server_config." + key + ": " + refused(fifo)));
  }
}

TEST_CASE("regular files: --check-config refuses a FIFO or a regular file as a network namespace",
          "[integration][config][files][netns]") {
  test::TempDir dir;
  const std::string fifo = test::make_fifo(dir, "netns");
  const std::string target = dir.write(
      "netns.yaml", "targets:\n  - address: \"127.0.0.1:11211\"\n    netns: " + fifo + "\n");
  auto checked = check_config("--config.file=" + target);
  CHECK(checked.exit_code == 1);
  CHECK_THAT(checked.output, Contains(target + ":3:12: targets[0].netns: network namespace " +
                                      fifo + ": is a FIFO, not a network namespace file"));
  CHECK_THAT(checked.output, !Contains("configuration is valid"));

  // discover.only_netns too, and a regular file that is not a namespace.
  const std::string only = dir.write(
      "only.yaml", "discover:\n  enabled: true\n  only_netns: [/etc/hosts, " + fifo + "]\n");
  checked = check_config("--config.file=" + only);
  CHECK(checked.exit_code == 1);
  CHECK_THAT(checked.output, Contains(only + ":3:16: discover.only_netns[0]: network namespace "
                                             "/etc/hosts: not a network namespace file"));
  CHECK_THAT(checked.output, Contains(only + ":3:28: discover.only_netns[1]: network namespace " +
                                      fifo + ": is a FIFO, not a network namespace file"));

  // One not there yet is a warning; one that is there is taken as it is (discovery compares
  // inodes, it never enters).
  const std::string later =
      dir.write("later.yaml", "discover:\n  enabled: true\n  only_netns: [/proc/self/ns/net, " +
                                  dir.path() + "/pod1]\n");
  checked = check_config("--config.file=" + later);
  CHECK(checked.exit_code == 0);
  CHECK_THAT(checked.output, Contains(later +
                                      ":3:35: discover.only_netns[1]: warning: network "
                                      "namespace " +
                                      dir.path() + "/pod1: no such file (ip netns add?)"));
  CHECK_THAT(checked.output, !Contains("only_netns[0]"));
  CHECK_THAT(checked.output, Contains("configuration is valid"));
}

TEST_CASE(
    "regular files: SIGHUP with a FIFO as the configuration or the web configuration keeps the "
    "running configuration and the loop answering",
    "[integration][config][files][reload]") {
  test::enter_private_netns();
  test::Daemon d(test::kQuietConfig);
  d.metrics();
  const std::string config = d.config_path();

  // The configuration file replaced by a FIFO.
  std::filesystem::remove(config);
  test::TempDir dir;
  REQUIRE(::mkfifo(config.c_str(), 0600) == 0);
  std::size_t mark = d.output().size();
  d.process().signal(SIGHUP);
  auto logged = d.process().wait_for_output(
      std::regex("reload failed, keeping the running configuration: [^\\n]*mcbacklogd.yaml: is a "
                 "FIFO, not a regular file"),
      30s, mark);
  CHECK(logged.has_value());
  auto healthy = d.get("/-/healthy");
  REQUIRE(healthy.ok());
  CHECK(healthy->status == 200);
  CHECK(d.get("/metrics").ok());

  // A good configuration naming a FIFO as its web configuration.
  const std::string web_fifo = test::make_fifo(dir, "web.yml");
  std::filesystem::remove(config);
  std::ofstream(config) << test::kQuietConfig << "web: { config_file: " << web_fifo << " }\n";
  mark = d.output().size();
  d.process().signal(SIGHUP);
  logged = d.process().wait_for_output(
      std::regex("reload failed, keeping the running configuration: [^\\n]*mcbacklogd.yaml:4:21: "
                 "web.config_file: .*web.yml: is a "
                 "FIFO, not a regular file"),
      30s, mark);
  CHECK(logged.has_value());
  healthy = d.get("/-/healthy");
  REQUIRE(healthy.ok());
  CHECK(healthy->status == 200);

  // A good file again applies.
  std::ofstream(config) << test::kQuietConfig;
  mark = d.output().size();
  d.process().signal(SIGHUP);
  CHECK(d.process().wait_for_output(std::regex("configuration reloaded from"), 30s, mark));
  CHECK(d.process().running());
}

TEST_CASE(
    "regular files: the start and a reload refuse what --check-config refuses: a target's TLS file "
    "that does not load, a FIFO as a network namespace",
    "[integration][files][netns][tls][reload]") {
  test::enter_private_netns();
  test::TempDir dir;
  const std::string fifo = test::make_fifo(dir, "netns");
  const std::string base = "interval: 100ms\ncollectors: { sockdiag: { enabled: false } }\n";
  const std::string netns_yaml =
      base + "targets:\n  - { name: a, address: \"127.0.0.1:11211\", netns: " + fifo + " }\n";
  const std::string tls_yaml =
      base + "targets:\n  - address: \"127.0.0.1:11211\"\n    tls: { ca_file: " + dir.path() +
      "/none.pem }\n";

  // The start: refused at once, as by --check-config.
  const std::string netns_file = dir.write("netns.yaml", netns_yaml);
  auto started = test::run_daemon("--web.listen-address=127.0.0.1:0 --config.file=" + netns_file);
  CHECK(started.exit_code == 1);
  CHECK_THAT(started.output, Contains(netns_file + ":4:51: targets[0].netns: network namespace " +
                                      fifo + ": is a FIFO, not a network namespace file"));
  const std::string tls_file = dir.write("tls.yaml", tls_yaml);
  started = test::run_daemon("--web.listen-address=127.0.0.1:0 --config.file=" + tls_file);
  CHECK(started.exit_code == 1);
  CHECK_THAT(started.output, Contains(tls_file + ":5:21: targets[0].tls.ca_file: " + dir.path() +
                                      "/none.pem: cannot open: No such file or directory"));

  // A reload: refused, the running configuration kept, the loop answering, the stop prompt.
  test::Daemon d(test::kQuietConfig);
  d.metrics();
  for (const std::string& yaml : {netns_yaml, tls_yaml}) {
    std::ofstream(d.config_path()) << yaml;
    const std::size_t mark = d.output().size();
    d.process().signal(SIGHUP);
    CHECK(d.process().wait_for_output(
        std::regex("reload failed, keeping the running configuration: [^\\n]*mcbacklogd.yaml:[45]:"
                   "[0-9]+: targets\\[0\\]\\.(netns|tls\\.ca_file): "),
        30s, mark));
    auto healthy = d.get("/-/healthy");
    REQUIRE(healthy.ok());
    CHECK(healthy->status == 200);
  }
  d.process().signal(SIGTERM);
  CHECK(d.process().wait_exit(30s) == 0);
}

TEST_CASE(
    "regular files: --check-config and the start refuse a paths.procfs or paths.sysfs that is not "
    "a "
    "directory",
    "[integration][config][files]") {
  test::TempDir dir;
  const std::string fifo = test::make_fifo(dir, "proc");
  const struct {
    std::string yaml;
    std::string says;
  } cases[] = {
      // each after the three lines of kQuietConfig
      {"paths: { procfs: /etc/hosts }\n",
       ":4:18: paths.procfs: /etc/hosts: is a regular file, not a directory"},
      {"paths: { sysfs: " + fifo + " }\n",
       ":4:17: paths.sysfs: " + fifo + ": is a FIFO, not a directory"},
      {"paths: { procfs: " + dir.path() + "/none }\n",
       ":4:18: paths.procfs: " + dir.path() + "/none: No such file or directory"},
  };
  int i = 0;
  for (const auto& c : cases) {
    INFO(c.yaml);
    const std::string file = dir.write("paths" + std::to_string(i++) + ".yaml",
                                       std::string(test::kQuietConfig) + c.yaml);
    auto checked = check_config("--config.file=" + file);
    CHECK(checked.exit_code == 1);
    CHECK_THAT(checked.output, Contains(file + c.says));
    auto started = test::run_daemon("--web.listen-address=127.0.0.1:0 --config.file=" + file);
    CHECK(started.exit_code == 1);
    CHECK_THAT(started.output, Contains(file + c.says));
  }
}
