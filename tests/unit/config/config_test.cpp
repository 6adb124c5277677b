#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "config/web_config_file.hpp"
#include "daemon/alerts/rules.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/process.hpp"
#include "tests/unit/config/loader.hpp"

using namespace mcb;
using Catch::Matchers::Contains;

namespace {

using test::error_of;
using test::load_config;
using test::parse_config;

}  // namespace

TEST_CASE("config: no file means the built-in defaults", "[config]") {
  const Config c = default_config();
  CHECK(c.interval == std::chrono::seconds(1));
  REQUIRE(c.targets.size() == 1);
  CHECK(c.targets[0].name == "127.0.0.1:11211");
  CHECK(c.targets[0].address.port == 11211);
  CHECK(c.targets[0].probe_interval == std::chrono::seconds(5));
  CHECK(c.targets[0].slab_stats_interval == std::chrono::seconds(15));
  CHECK(c.web.listen_address == ":9741");
  CHECK(c.netdev.exclude == "^lo$");
  CHECK(c.sockdiag.sample_interval == std::chrono::milliseconds(100));
  CHECK(c.sockdiag.connections_interval == std::chrono::seconds(30));
  CHECK(c.netstat.interval == std::chrono::seconds(15));
  CHECK(c.cpu.interval == std::chrono::seconds(15));
  CHECK(c.memcached_threads.interval == std::chrono::seconds(15));
  CHECK(c.thresholds.size() == alert_schemas().size());
  CHECK(c.watched_ports() == std::vector<std::uint16_t>{11211});
}

TEST_CASE("config: an empty file gives the defaults", "[config]") {
  auto c = parse_config("", "empty.yaml");
  REQUIRE(c.ok());
  CHECK(c->targets.size() == 1);
  CHECK(c->source == "empty.yaml");
}

TEST_CASE("config: the shipped example parses and matches the documented values", "[config]") {
  auto c = load_config(test::source_dir() + "/config/mcbacklogd.example.yaml");
  REQUIRE(c.ok());
  REQUIRE(c->targets.size() == 1);
  CHECK(c->targets[0].name == "main");
  CHECK(c->targets[0].slab_stats_interval == std::chrono::seconds(15));
  CHECK(c->sockdiag.top_clients == 10);
  CHECK(c->sockdiag.peak_window == std::chrono::seconds(15));
  CHECK(c->thresholds.at("AcceptQueueFilling").critical == 0.8);
  CHECK(c->thresholds.at("AcceptQueueFilling").for_ == std::chrono::seconds(5));
}

TEST_CASE("config: every key is read into its field", "[config]") {
  auto c = parse_config(R"(
interval: 250ms
targets:
  - address: "[::1]:11311"
    probe_interval: 0
    slab_stats_interval: 1m
  - name: sock
    slab_stats_interval: 0
    address: unix:/run/memcached/memcached.sock
collectors:
  netstat: { enabled: false, interval: 5m }
  sysctl: { enabled: false }
  sockdiag: { ports: [11211, 11311], top_clients: 3, sample_interval: 50ms, peak_window: 30s,
              send_queue_threshold_bytes: 1024, connections_interval: 2m }
  netdev: { include: "^eth", exclude: "^veth", speeds: { eth0: 10Gbit, ens5: 2.5Gbps },
            driver_stats: false }
  cpu: { enabled: false, interval: 30s }
  softnet: { enabled: false }
  memcached_threads: { enabled: false, interval: 0 }
thresholds:
  SlowClients: { warning: 2, critical: 20, clear: 1, for: 1m, window: 2m }
  NetworkSaturated: { retransmit_warning: 0.02, rtt_critical: 0.5, softnet_drops_warning: 10 }
  MemcachedCpuSaturated: { steal_warning: 0.2 }
paths: { procfs: /tmp/proc, sysfs: /tmp/sys }
web: { listen_address: "127.0.0.1:9999" }
log: { level: debug, format: json }
)",
                        "full.yaml");
  REQUIRE(c.ok());
  CHECK(c->interval == std::chrono::milliseconds(250));
  REQUIRE(c->targets.size() == 2);
  CHECK(c->targets[0].name == "[::1]:11311");
  CHECK(c->targets[0].address.host == "::1");
  CHECK(c->targets[0].probe_interval == Duration{0});
  CHECK(c->targets[0].slab_stats_interval == std::chrono::minutes(1));
  CHECK(c->targets[1].slab_stats_interval == Duration{0});
  CHECK(c->targets[1].address.is_unix());
  CHECK(c->targets[1].address.path == "/run/memcached/memcached.sock");
  CHECK_FALSE(c->netstat.enabled);
  CHECK(c->netstat.interval == std::chrono::minutes(5));
  CHECK_FALSE(c->sysctl.enabled);
  CHECK(c->sockdiag.connections_interval == std::chrono::minutes(2));
  CHECK(c->sockdiag.ports == std::vector<std::uint16_t>{11211, 11311});
  CHECK(c->sockdiag.top_clients == 3);
  CHECK(c->sockdiag.send_queue_threshold_bytes == 1024);
  CHECK(c->netdev.include == "^eth");
  CHECK(c->netdev.speeds.at("eth0") == 10e9);
  CHECK(c->netdev.speeds.at("ens5") == 2.5e9);
  CHECK_FALSE(c->netdev.driver_stats);
  CHECK_FALSE(c->cpu.enabled);
  CHECK(c->cpu.interval == std::chrono::seconds(30));
  CHECK(c->memcached_threads.interval == Duration{0});
  CHECK_FALSE(c->softnet.enabled);
  CHECK_FALSE(c->memcached_threads.enabled);
  const AlertThreshold& net = c->thresholds.at("NetworkSaturated");
  CHECK(net.retransmit_warning == 0.02);
  CHECK(net.retransmit_critical == 0.05);  // the default stays
  CHECK(net.rtt_critical == 0.5);
  CHECK(net.softnet_drops_warning == 10);
  CHECK(c->thresholds.at("MemcachedCpuSaturated").steal_warning == 0.2);
  CHECK(c->thresholds.at("SlowClients").window == std::chrono::minutes(2));
  CHECK(c->thresholds.at("SlowClients").for_ == std::chrono::minutes(1));
  CHECK(c->paths.procfs == "/tmp/proc");
  CHECK(c->web.listen_address == "127.0.0.1:9999");
  CHECK(c->log.format == "json");
}

TEST_CASE("config: watched ports default to the TCP targets' ports", "[config]") {
  auto c = parse_config(
      "targets:\n  - address: 127.0.0.1:11211\n  - address: 10.0.0.1:11211\n"
      "  - address: 127.0.0.1:11212\n  - address: unix:/tmp/m.sock\n",
      "t.yaml");
  REQUIRE(c.ok());
  CHECK(c->watched_ports() == std::vector<std::uint16_t>{11211, 11212});
}

TEST_CASE(
    "config: targets on more ports than one kernel-side filter holds are refused unless the ports "
    "are listed",
    "[config]") {
  std::string many = "targets:\n";
  for (int port = 1; port <= 4097; ++port) {
    many += "  - { name: t" + std::to_string(port) +
            ", address: \"127.0.0.1:" + std::to_string(port) + "\" }\n";
  }
  CHECK_THAT(error_of(many),
             Contains("test.yaml:2:3: targets: the targets here listen on 4097 ports; at most 4096 "
                      "fit in the kernel-side filter of the sockdiag collector: list the ports to "
                      "watch in collectors.sockdiag.ports"));
  CHECK(parse_config(many + "collectors: { sockdiag: { ports: [11211] } }\n", "t.yaml").ok());
  CHECK(parse_config(many + "collectors: { sockdiag: { enabled: false } }\n", "t.yaml").ok());
  // Counted per network namespace: 4097 ports over two are two filters.
  std::string split = "targets:\n";
  for (int port = 1; port <= 4097; ++port) {
    split += "  - { name: t" + std::to_string(port) +
             ", address: \"127.0.0.1:" + std::to_string(port) + "\"" +
             (port > 4000 ? ", netns: /run/netns/b" : "") + " }\n";
  }
  CHECK(parse_config(split, "t.yaml").ok());
}

TEST_CASE("config: paths.procfs and paths.sysfs are absolute paths, and where they are set is kept",
          "[config]") {
  CHECK_THAT(error_of("paths: { procfs: proc }\n"),
             Contains("test.yaml:1:18: paths.procfs: a directory needs an absolute path, such as "
                      "\"/host/proc\", not \"proc\""));
  CHECK_THAT(error_of("paths:\n  sysfs: \"\"\n"),
             Contains("test.yaml:2:10: paths.sysfs: a directory needs an absolute path"));
  auto c = parse_config("paths:\n  procfs: /host/proc\n  sysfs: /host/sys\n", "/etc/m.yaml");
  REQUIRE(c.ok());
  CHECK(c->paths.procfs_origin == "/etc/m.yaml:2:11: paths.procfs");
  CHECK(c->paths.sysfs_origin == "/etc/m.yaml:3:10: paths.sysfs");
}

TEST_CASE("config: an empty target list watches no memcached", "[config]") {
  auto c = parse_config("targets: []\n", "t.yaml");
  REQUIRE(c.ok());
  CHECK(c->targets.empty());
  CHECK(c->watched_ports().empty());
}

TEST_CASE("config: an unknown key is an error with file, line, column and the known keys",
          "[config]") {
  const auto e = error_of("interval: 1s\ncollectors:\n  netstat:\n    enabeld: true\n");
  CHECK_THAT(e, Contains("test.yaml:4:5: collectors.netstat.enabeld: unknown key"));
  CHECK_THAT(e, Contains("known here: enabled"));
}

TEST_CASE("config: a wrong type is an error at the value's position", "[config]") {
  CHECK_THAT(error_of("interval: [1, 2]\n"),
             Contains("test.yaml:1:11: interval: expected a duration"));
  CHECK_THAT(error_of("collectors:\n  netstat:\n    enabled: maybe\n"),
             Contains("test.yaml:3:14: collectors.netstat.enabled: expected true or false"));
  CHECK_THAT(error_of("collectors:\n  sockdiag:\n    top_clients: ten\n"),
             Contains("test.yaml:3:18: collectors.sockdiag.top_clients: expected an integer"));
  CHECK_THAT(error_of("targets: 127.0.0.1:11211\n"),
             Contains("test.yaml:1:10: targets: expected a list"));
  CHECK_THAT(error_of("collectors: true\n"),
             Contains("test.yaml:1:13: collectors: expected a mapping"));
  CHECK_THAT(error_of("- a\n- b\n"), Contains("test.yaml:1:1: expected a mapping"));
}

TEST_CASE("config: an out-of-range value is an error naming the range", "[config]") {
  CHECK_THAT(
      error_of("collectors:\n  sockdiag:\n    top_clients: 0\n"),
      Contains("test.yaml:3:18: collectors.sockdiag.top_clients: 0 is out of range (1 to 1000)"));
  CHECK_THAT(error_of("collectors:\n  sockdiag:\n    ports: [11211, 70000]\n"),
             Contains("test.yaml:3:20: collectors.sockdiag.ports[1]: 70000 is out of range"));
  std::string many = "collectors:\n  sockdiag:\n    ports: [1";
  for (int p = 2; p <= 4097; ++p) many += ", " + std::to_string(p);
  CHECK_THAT(error_of(many + "]\n"),
             Contains("test.yaml:3:12: collectors.sockdiag.ports: 4097 ports; at most 4096 fit"));
  CHECK_THAT(error_of("interval: 10ms\n"),
             Contains("test.yaml:1:11: interval: 10ms is out of range"));
  CHECK_THAT(error_of("thresholds:\n  MaxConnectionsNear: { warning: -1 }\n"),
             Contains("thresholds.MaxConnectionsNear.warning: -1 is out of range"));
  CHECK_THAT(
      error_of("targets:\n  - { address: \"127.0.0.1:11211\", slab_stats_interval: 2h }\n"),
      Contains("test.yaml:2:56: targets[0].slab_stats_interval: 2h is out of range (0 to 1h)"));
}

TEST_CASE("config: bad durations, addresses and regexes say what is wrong", "[config]") {
  CHECK_THAT(error_of("collectors:\n  cpu: { interval: 2h }\n"),
             Contains("test.yaml:2:20: collectors.cpu.interval: 2h is out of range (0 to 1h)"));
  CHECK_THAT(error_of("interval: 5x\n"),
             Contains("test.yaml:1:11: interval: invalid duration \"5x\""));
  CHECK_THAT(error_of("interval: 1s1m\n"), Contains("largest to smallest"));
  CHECK_THAT(
      error_of("targets:\n  - address: localhost\n"),
      Contains(
          "test.yaml:2:14: targets[0].address: address \"localhost\": expected \"host:port\""));
  CHECK_THAT(error_of("targets:\n  - address: ::1:11211\n"), Contains("brackets"));
  CHECK_THAT(error_of("targets:\n  - address: unix:relative.sock\n"), Contains("absolute path"));
  CHECK_THAT(error_of("targets:\n  - name: x\n"),
             Contains("test.yaml:2:5: targets[0]: missing key \"address\""));
  CHECK_THAT(error_of("collectors:\n  netdev: { include: \"(eth\" }\n"),
             Contains("collectors.netdev.include: invalid regular expression"));
  CHECK_THAT(error_of("web: { listen_address: \"9741\" }\n"), Contains("web.listen_address"));
  CHECK_THAT(error_of("log: { level: verbose }\n"),
             Contains("log.level: \"verbose\" is not one of: debug, info, warn, error"));
}

TEST_CASE("config: the levels of a ratio are refused above 1, with what was meant", "[config]") {
  // 80 meant as 80 % would never be reached, and the alert would be off without a word.
  CHECK_THAT(
      error_of("thresholds:\n  MaxConnectionsNear: { warning: 80, critical: 95, clear: 75 }\n"),
      Contains("test.yaml:2:34: thresholds.MaxConnectionsNear.warning: 80 is out of range "
               "(0 to 1): the levels of MaxConnectionsNear are ratios (0.8 for 80 %)"));
  for (const char* alert :
       {"AcceptQueueFilling", "MemcachedCpuSaturated", "NetworkSaturated", "MemcachedMemoryFull"}) {
    CHECK_THAT(error_of("thresholds: { " + std::string(alert) + ": { critical: 1.5 } }\n"),
               Contains(std::string(alert) + ".critical: 1.5 is out of range (0 to 1)"));
  }
  CHECK_THAT(error_of("thresholds: { MemcachedMemoryFull: { clear: 50 } }\n"),
             Contains("MemcachedMemoryFull.clear: 50 is out of range (0 to 1)"));
  // Counts, rates and seconds keep their range.
  const auto c = parse_config(
      "thresholds:\n  ConnectionSprawl: { warning: 200, critical: 500, clear: 150 }\n"
      "  ProbeSlow: { warning: 2, critical: 5, clear: 1 }\n"
      "  MaxConnectionsNear: { warning: 1, critical: 1, clear: 0.9 }\n",
      "t");
  REQUIRE(c.ok());
  CHECK(c->thresholds.at("ConnectionSprawl").warning == 200);
  CHECK(c->thresholds.at("MaxConnectionsNear").warning == 1);
}

TEST_CASE("config: a YAML syntax error names line and column", "[config]") {
  CHECK_THAT(error_of("interval: 1s\ntargets: [\n"), Contains("test.yaml:3:1: YAML syntax error"));
  CHECK_THAT(error_of("a: b: c\n"), Contains("test.yaml:1:5: YAML syntax error"));
  // Nesting past yaml-cpp's guard says so, not yaml-cpp's "bad file".
  const std::string deep = error_of("targets: " + std::string(600, '[') + std::string(600, ']'));
  CHECK_THAT(deep, Contains("test.yaml:1:") && Contains("levels deep, more than yaml-cpp reads"));
  CHECK_THAT(deep, !Contains("bad file"));
}

TEST_CASE("config: what yaml-cpp reads but YAML forbids is an error, not a lost key", "[config]") {
  // A quote never closed: yaml-cpp takes the rest of the file as the string, and the web block
  // after it would be silently dropped (the daemon listening on its default address instead).
  const std::string unclosed =
      "collectors:\n  netdev:\n    include: \"eth0\nweb:\n  listen_address: 127.0.0.1:9999\n";
  CHECK_THAT(error_of(unclosed),
             Contains("test.yaml:3:14: this double-quoted string is never closed"));
  CHECK_THAT(error_of("log: { level: 'info }\ninterval: 2s\n"),
             Contains("test.yaml:1:15: this single-quoted string is never closed"));
  // The same in a key, in a list and after an escaped quote.
  CHECK_THAT(error_of("? \"interval\n"), Contains("test.yaml:1:3: this double-quoted"));
  CHECK_THAT(error_of("targets:\n  - \"a\n"), Contains("test.yaml:2:5: this double-quoted"));
  CHECK_THAT(error_of("log: { level: \"info\\\" }\n"), Contains("test.yaml:1:15: this double"));
  CHECK_THAT(error_of("log: { level: 'it''s }\n"), Contains("test.yaml:1:15: this single"));
  // Closed ones, with escaped quotes and a string over two lines, load.
  CHECK(parse_config("targets:\n  - { name: \"a\\\"b\", address: \"127.0.0.1:\\\n  1\" }\n"
                     "  - { name: 'it''s', address: '127.0.0.1:2' }\n",
                     "t")
            .ok());
  // A second document: YAML::Load reads the first only.
  CHECK_THAT(error_of("interval: 2s\n---\nweb: { listen_address: 127.0.0.1:9999 }\n"),
             Contains("test.yaml:2:1: a second YAML document starts here"));
  CHECK(parse_config("---\ninterval: 2s\n...\n", "t").ok());
  // Control characters, raw in the file: an escape sequence of a terminal in a quoted string,
  // NUL, DEL, a C1 control and U+FFFE; after a byte order mark the column is yaml-cpp's.
  CHECK_THAT(error_of("interval: 1s\nlog: { level: \"in\x1b[2Jfo\" }\n"),
             Contains("test.yaml:2:18: character \"\\x1b\" is not allowed in YAML"));
  CHECK_THAT(error_of(std::string("interval: 1s\0\n", 15)), Contains("test.yaml:1:13: character"));
  CHECK_THAT(error_of("# a comment \x7f\n"), Contains("test.yaml:1:13: character \"\\x7f\""));
  CHECK_THAT(error_of("a: \xc2\x9b\n"), Contains("test.yaml:1:4: character \"\\u{009b}\""));
  CHECK_THAT(error_of("a: \xef\xbf\xbe\n"), Contains("test.yaml:1:4: character"));
  CHECK_THAT(error_of("\xef\xbb\xbf\x01"), Contains("test.yaml:1:1: character"));
  // A tag would be ignored: !!binary bWFpbg== would name the target "bWFpbg==", not "main".
  CHECK_THAT(error_of("targets:\n  - { name: !!binary bWFpbg==, address: \"127.0.0.1:1\" }\n"),
             Contains("test.yaml:2:13: targets[0].name: the tag \"tag:yaml.org,2002:binary\" is "
                      "not read"));
  CHECK_THAT(error_of("interval: !!float 5s\n"), Contains("test.yaml:1:11: interval: the tag"));
  CHECK_THAT(error_of("interval: !mine 5s\n"), Contains("the tag \"!mine\" is not read"));
  CHECK_THAT(error_of("log: !!set { level: info }\n"), Contains("test.yaml:1:6: log: the tag"));
  CHECK_THAT(error_of("!!str interval: 2s\n!!binary log: {}\n"),
             Contains("test.yaml:2:1: the tag"));
  CHECK(parse_config("interval: !!str 2s\nlog: !!map { level: !!str \"info\" }\n", "t").ok());
  // A merge key, which yaml-cpp reads as a key named "<<".
  CHECK_THAT(error_of("defaults: &d { probe_interval: 2s }\ntargets:\n  - <<: *d\n"),
             Contains("test.yaml:3:5: targets[0].<<: merge keys (<<) are not supported"));
  // Tab, carriage return, NEL and a byte order mark are allowed.
  CHECK(parse_config("\xef\xbb\xbfinterval:\t2s\r\n# \xc2\x85\n", "t").ok());
}

TEST_CASE("config: repeated keys and repeated target names are errors", "[config]") {
  CHECK_THAT(error_of("interval: 1s\ninterval: 2s\n"),
             Contains("test.yaml:2:1: interval: key given twice"));
  CHECK_THAT(error_of("targets:\n  - { name: a, address: \"1.2.3.4:1\" }\n  - { name: a, address: "
                      "\"1.2.3.4:2\" }\n"),
             Contains("test.yaml:3:5: targets[1]: target name \"a\" is used twice"));
  // /scrape?target= takes a name or an address: a name that is another target's address would
  // get that target's series.
  CHECK_THAT(
      error_of("targets:\n  - { name: a, address: \"127.0.0.1:11211\" }\n  - { name: "
               "\"127.0.0.1:11211\", address: \"127.0.0.1:11500\" }\n"),
      Contains("test.yaml:3:5: targets[1]: target name \"127.0.0.1:11211\" is the address of "
               "targets[0]"));
  CHECK(parse_config("targets:\n  - { name: \"127.0.0.1:11211\", address: \"127.0.0.1:11211\" }\n",
                     "t")
            .ok());
}

TEST_CASE(
    "config: outside bytes in a namespace file, a TLS server name or the file's own name "
    "are refused or escaped",
    "[config][quoting]") {
  // A namespace file's last part labels series and log lines: CR LF would forge a log line.
  CHECK_THAT(error_of("targets:\n  - { address: \"127.0.0.1:11211\", netns: "
                      "\"/run/netns/x\\e[31mRED\\r\\nFAKE\" }\n"),
             Contains("test.yaml:2:42: targets[0].netns: \"/run/netns/x\\x1b[31mRED\\r\\nFAKE\": "
                      "a network namespace file's name must not hold control characters"));
  CHECK_THAT(error_of("discover: { only_netns: [\"/run/netns/a\\tb\"] }\n"),
             Contains("discover.only_netns[0]: \"/run/netns/a\\tb\": a network namespace file's "
                      "name must not hold control characters"));
  // SNI: over 255 bytes OpenSSL silently sends none; a NUL cut the name the certificate was
  // checked against; CR LF went on the wire.
  const auto sni = [](const std::string& name) {
    return "targets:\n  - address: \"127.0.0.1:11211\"\n    tls: { server_name: \"" + name +
           "\" }\n";
  };
  for (const std::string& bad :
       {std::string(300, 'a'), std::string("good.example\\0anything"),
        std::string("evil\\r\\nforged"), std::string("two words"), std::string()}) {
    CAPTURE(bad);
    CHECK_THAT(error_of(sni(bad)), Contains("test.yaml:3:25: targets[0].tls.server_name: ") &&
                                       Contains("a host name or IP address of 1 to 253 bytes"));
  }
  CHECK(parse_config(sni("mc0.example.com"), "t").ok());
  CHECK(parse_config(sni("10.0.0.1"), "t").ok());
  CHECK(parse_config(sni(std::string(253, 'a')), "t").ok());
  // The configuration file's own name is escaped where messages name it.
  auto c = parse_config("interval: 1x\n", "/etc/e\x1b[31mvil\r2026 error forged.yaml");
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().message.rfind("/etc/e\\x1b[31mvil\\r2026 error forged.yaml:1:11: interval: ",
                                0) == 0);
}

TEST_CASE("config: threshold blocks are checked for unknown alerts and level order", "[config]") {
  CHECK_THAT(error_of("thresholds:\n  CpuHot: { warning: 1 }\n"),
             Contains("test.yaml:2:3: thresholds.CpuHot: unknown key (known here: MemcachedDown"));
  CHECK_THAT(error_of("thresholds:\n  MaxConnectionsNear: { warning: 0.9, critical: 0.5 }\n"),
             Contains("thresholds.MaxConnectionsNear: critical (0.5) must not be below warning "
                      "(0.9)"));
  CHECK_THAT(error_of("thresholds:\n  MaxConnectionsNear: { warning: 0.9, clear: 0.95 }\n"),
             Contains("clear (0.95) must not be above warning (0.9)"));
  // A level lowered alone meets a default: the message says which.
  CHECK_THAT(error_of("thresholds:\n  MaxConnectionsNear: { warning: 0.5 }\n"),
             Contains("clear (0.75, the default) must not be above warning (0.5); set clear below "
                      "warning too"));
  CHECK_THAT(error_of("thresholds:\n  SlowClients: { connections_warning: 5 }\n"),
             Contains("thresholds.SlowClients.connections_warning: unknown key"));
  auto sprawl = parse_config(
      "thresholds:\n  ConnectionSprawl: { warning: 50, clear: 40, connections_warning: 0.3, "
      "connections_critical: 0.6 }\n",
      "t.yaml");
  REQUIRE(sprawl.ok());
  CHECK(sprawl->thresholds.at("ConnectionSprawl").warning == 50);
  CHECK(sprawl->thresholds.at("ConnectionSprawl").connections_warning == 0.3);
  CHECK(sprawl->thresholds.at("ConnectionSprawl").connections_critical == 0.6);
  // Connections held are a share of the effective limit, not a count.
  CHECK_THAT(error_of("thresholds:\n  ConnectionSprawl: { connections_warning: 300 }\n"),
             Contains("thresholds.ConnectionSprawl.connections_warning"));
  auto time_left =
      parse_config("thresholds:\n  MaxConnectionsNear: { time_left_critical: 30 }\n", "t.yaml");
  REQUIRE(time_left.ok());
  CHECK(time_left->thresholds.at("MaxConnectionsNear").time_left_critical == 30);
  CHECK(time_left->thresholds.at("MaxConnectionsNear").time_left_warning == 300);
  auto partial = parse_config("thresholds:\n  MaxConnectionsNear: { warning: 0.85 }\n", "t.yaml");
  REQUIRE(partial.ok());
  CHECK(partial->thresholds.at("MaxConnectionsNear").warning == 0.85);
  CHECK(partial->thresholds.at("MaxConnectionsNear").critical == 0.95);  // default kept
}

TEST_CASE("config: all errors of a file are reported at once", "[config]") {
  const auto e = error_of("interval: 5x\nbogus: 1\nlog: { level: loud }\n");
  CHECK_THAT(e, Contains("test.yaml:1:11"));
  CHECK_THAT(e, Contains("test.yaml:2:1"));
  CHECK_THAT(e, Contains("test.yaml:3:15"));
}

TEST_CASE("config: a missing file is an error naming it", "[config]") {
  auto c = load_config("/nonexistent/mcbacklogd.yaml");
  REQUIRE_FALSE(c.ok());
  CHECK_THAT(c.error().message, Contains("/nonexistent/mcbacklogd.yaml: cannot open"));
}

TEST_CASE("config: a FIFO given as the file is refused at once, naming it", "[config]") {
  test::TempDir dir;
  const std::string fifo = test::make_fifo(dir, "mcbacklogd.yaml");
  auto c = test::unless_held(fifo, [&] { return load_config(fifo); });
  REQUIRE(c.has_value());
  REQUIRE_FALSE(c->ok());
  CHECK(c->error().message == fifo + ": is a FIFO, not a regular file");
  auto web = test::unless_held(fifo, [&] { return load_web_config_file(fifo); });
  REQUIRE(web.has_value());
  REQUIRE_FALSE(web->ok());
  CHECK(web->error().message == fifo + ": is a FIFO, not a regular file");
  // Named by the configuration, the web configuration's error says where.
  auto from_file = test::unless_held(
      fifo, [&] { return load_web_config_file(fifo, "m.yaml:3:17: web.config_file"); });
  REQUIRE(from_file.has_value());
  REQUIRE_FALSE(from_file->ok());
  CHECK(from_file->error().message ==
        "m.yaml:3:17: web.config_file: " + fifo + ": is a FIFO, not a regular file");
}

TEST_CASE("config: where each file and namespace is named is kept for the messages about it",
          "[config]") {
  auto c = parse_config(
      "web: { config_file: web.yml }\n"
      "targets:\n"
      "  - address: \"127.0.0.1:11211\"\n"
      "    netns: /run/netns/a\n"
      "    tls: { ca_file: ca.pem, cert_file: c.pem, key_file: c.key }\n"
      "  - { address: \"127.0.0.1:11212\", netns_pid: 7 }\n",
      "/etc/m.yaml");
  REQUIRE(c.ok());
  CHECK(c->web.config_file_origin == "/etc/m.yaml:1:21: web.config_file");
  CHECK(c->targets[0].netns_origin == "/etc/m.yaml:4:12: targets[0].netns");
  CHECK(c->targets[1].netns_origin == "/etc/m.yaml:6:46: targets[1].netns_pid");
  REQUIRE(c->targets[0].tls);
  CHECK(c->targets[0].tls->ca_file_origin == "/etc/m.yaml:5:21: targets[0].tls.ca_file");
  CHECK(c->targets[0].tls->cert_file_origin == "/etc/m.yaml:5:40: targets[0].tls.cert_file");
  CHECK(c->targets[0].tls->key_file_origin == "/etc/m.yaml:5:57: targets[0].tls.key_file");
}

TEST_CASE("config: NIC speeds are bits per second with the usual units", "[config]") {
  auto c = parse_config(
      "collectors:\n  netdev:\n    speeds: { eth0: 10Gbit, eth1: 100Mbit, eth2: 25G, eth3: "
      "1000000000, eth4: 1.5gbit, eth5: 100kbps, eth6: 1Tbit/s }\n",
      "speeds.yaml");
  REQUIRE(c.ok());
  const auto& s = c->netdev.speeds;
  CHECK(s.at("eth0") == 10e9);
  CHECK(s.at("eth1") == 100e6);
  CHECK(s.at("eth2") == 25e9);
  CHECK(s.at("eth3") == 1e9);
  CHECK(s.at("eth4") == 1.5e9);
  CHECK(s.at("eth5") == 100e3);
  CHECK(s.at("eth6") == 1e12);
  CHECK(default_config().netdev.speeds.empty());
  CHECK(default_config().netdev.driver_stats);
}

TEST_CASE("config: a speed in bytes, without a number, or out of range is refused", "[config]") {
  auto speeds = [](const std::string& value) {
    return error_of("collectors:\n  netdev:\n    speeds: { eth0: \"" + value + "\" }\n");
  };
  CHECK_THAT(speeds("10GB"), Contains("test.yaml:3:21: collectors.netdev.speeds.eth0: a speed in "
                                      "bytes: write it in bits per second"));
  CHECK_THAT(speeds("10GBps"), Contains("a speed in bytes"));
  CHECK_THAT(speeds("1Mbyte"), Contains("a speed in bytes"));
  CHECK_THAT(speeds("fast"), Contains("not a speed: expected bits per second"));
  CHECK_THAT(speeds("10 Gbit"), Contains("unknown unit of speed"));
  CHECK_THAT(speeds("10Gfurlongs"), Contains("unknown unit of speed"));
  CHECK_THAT(speeds("0"), Contains("a speed must be above 0"));
  CHECK_THAT(speeds("11Tbit"), Contains("a speed above 10Tbit"));
  CHECK_THAT(error_of("collectors:\n  netdev:\n    speeds: { eth0: [1] }\n"),
             Contains("expected a speed such as \"10Gbit\""));
  CHECK_THAT(error_of("collectors:\n  netdev:\n    speeds: { a/b: 1Gbit }\n"),
             Contains("not a network device name"));
  CHECK_THAT(error_of("collectors:\n  netdev:\n    speeds: { averyveryverylongname: 1Gbit }\n"),
             Contains("not a network device name"));
  CHECK_THAT(error_of("collectors:\n  netdev:\n    speeds: 10Gbit\n"),
             Contains("expected a mapping of keys"));
}

TEST_CASE("config: a target may live in another network namespace, by file or by process",
          "[config]") {
  auto c = parse_config(
      "targets:\n"
      "  - { name: a, address: \"127.0.0.1:11211\", netns: /run/netns/pod1 }\n"
      "  - { name: b, address: \"127.0.0.1:11212\", netns_pid: 4242 }\n"
      "  - { name: c, address: \"127.0.0.1:11213\", netns: /run/netns/pod1 }\n"
      "  - { name: d, address: \"127.0.0.1:11214\" }\n"
      "  - { name: e, address: \"unix:/run/m.sock\", netns: /run/netns/pod1 }\n",
      "t.yaml");
  REQUIRE(c.ok());
  REQUIRE(c->targets.size() == 5);
  REQUIRE(c->targets[0].netns);
  CHECK(c->targets[0].netns->path == "/run/netns/pod1");
  REQUIRE(c->targets[1].netns);
  CHECK(c->targets[1].netns->pid == 4242);
  CHECK_FALSE(c->targets[3].netns);
  const auto namespaces = c->namespaces();
  REQUIRE(namespaces.size() == 2);
  CHECK(namespaces[0].describe() == "/run/netns/pod1");
  CHECK(namespaces[1].describe() == "pid 4242");
  // Each namespace watches the ports of its own TCP targets.
  CHECK(c->watched_ports() == std::vector<std::uint16_t>{11214});
  CHECK(c->watched_ports(namespaces[0]) == std::vector<std::uint16_t>{11211, 11213});
  CHECK(c->watched_ports(namespaces[1]) == std::vector<std::uint16_t>{11212});
}

TEST_CASE("config: bad network namespaces are errors with file, line, column and reason",
          "[config]") {
  CHECK_THAT(error_of("targets:\n  - { address: \"127.0.0.1:1\", netns: pod1 }\n"),
             Contains("test.yaml:2:38: targets[0].netns: a network namespace file needs an "
                      "absolute path"));
  CHECK_THAT(error_of("targets:\n  - { address: \"127.0.0.1:1\", netns_pid: 0 }\n"),
             Contains("test.yaml:2:42: targets[0].netns_pid: 0 is out of range (1 to 4194304)"));
  CHECK_THAT(error_of("targets:\n  - { address: \"127.0.0.1:1\", netns_pid: abc }\n"),
             Contains("targets[0].netns_pid: expected an integer, got \"abc\""));
  CHECK_THAT(error_of("targets:\n  - { address: \"127.0.0.1:1\", netns: [a] }\n"),
             Contains("targets[0].netns: expected a network namespace file"));
  CHECK_THAT(
      error_of("targets:\n  - address: \"127.0.0.1:1\"\n    netns: /run/netns/a\n"
               "    netns_pid: 7\n"),
      Contains("test.yaml:4:16: targets[0].netns_pid: netns and netns_pid name the same thing"));
}

TEST_CASE("config: a target's tls block is read, files relative to the config file", "[config]") {
  auto c = parse_config(
      "targets:\n"
      "  - address: \"127.0.0.1:11211\"\n"
      "    tls: { ca_file: ca.pem, cert_file: /etc/c.pem, key_file: /etc/c.key,\n"
      "           server_name: memcached.example, insecure_skip_verify: true }\n"
      "  - address: \"127.0.0.1:11212\"\n",
      "/etc/mcbacklogd/t.yaml");
  REQUIRE(c.ok());
  REQUIRE(c->targets[0].tls);
  CHECK(c->targets[0].tls->ca_file == "/etc/mcbacklogd/ca.pem");
  CHECK(c->targets[0].tls->cert_file == "/etc/c.pem");
  CHECK(c->targets[0].tls->key_file == "/etc/c.key");
  CHECK(c->targets[0].tls->server_name == "memcached.example");
  CHECK(c->targets[0].tls->insecure_skip_verify);
  CHECK_FALSE(c->targets[1].tls);
  CHECK_THAT(error_of("targets:\n  - { address: \"127.0.0.1:1\", tls: { cert_file: /c.pem } }\n"),
             Contains("test.yaml:2:36: targets[0].tls: cert_file and key_file go together"));
  CHECK_THAT(error_of("targets:\n  - { address: \"127.0.0.1:1\", tls: { ca: x } }\n"),
             Contains("targets[0].tls.ca: unknown key"));
}

TEST_CASE("config: discovery is off by default, and on it replaces the built-in target",
          "[config]") {
  auto c = parse_config("interval: 1s\n", "t.yaml");
  REQUIRE(c.ok());
  CHECK_FALSE(c->discover.enabled);
  CHECK(c->targets.size() == 1);

  c = parse_config(
      "discover:\n  enabled: true\n  interval: 10s\n  grace: 1m\n  process_name: mc\n"
      "  only_netns: [/run/netns/pod1, /proc/self/ns/net]\n",
      "t.yaml");
  REQUIRE(c.ok());
  CHECK(c->discover.enabled);
  CHECK(c->discover.interval == std::chrono::seconds(10));
  CHECK(c->discover.grace == std::chrono::minutes(1));
  CHECK(c->discover.process_name == "mc");
  CHECK(c->discover.only_netns == std::vector<std::string>{"/run/netns/pod1", "/proc/self/ns/net"});
  CHECK(c->discover.only_netns_origins ==
        std::vector<std::string>{"t.yaml:6:16: discover.only_netns[0]",
                                 "t.yaml:6:33: discover.only_netns[1]"});
  CHECK(c->targets.empty());  // discovery finds them

  // Configured targets stay beside discovery.
  c = parse_config("discover: { enabled: true }\ntargets:\n  - { address: \"127.0.0.1:11311\" }\n",
                   "t.yaml");
  REQUIRE(c.ok());
  REQUIRE(c->targets.size() == 1);
  CHECK(c->targets[0].address.port == 11311);
  CHECK(c->discover.interval == std::chrono::seconds(30));
  CHECK(c->discover.grace == std::chrono::minutes(5));
}

TEST_CASE("config: bad discovery settings are errors with file, line, column and reason",
          "[config]") {
  CHECK_THAT(error_of("discover:\n  interval: 50ms\n"),
             Contains("test.yaml:2:13: discover.interval:"));
  CHECK_THAT(error_of("discover:\n  process_name: memcached-server-1\n"),
             Contains("test.yaml:2:17: discover.process_name: at most 15 bytes"));
  CHECK_THAT(error_of("discover:\n  only_netns: [pod1]\n"),
             Contains("test.yaml:2:16: discover.only_netns[0]: a network namespace file needs an "
                      "absolute path"));
  CHECK_THAT(error_of("discover:\n  enabeld: true\n"), Contains("test.yaml:2:3: discover"));
}
