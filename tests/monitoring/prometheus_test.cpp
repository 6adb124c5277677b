// End to end with the real tools: two real memcached, the built daemon, a real Prometheus server
// (Debian's) scraping it every second with the shipped rules loaded, and a real Alertmanager
// running the shipped example configuration, all in the test's own network namespace. Prometheus
// must see the target, evaluate every rule without error and answer every query of the dashboard;
// connections driven past one memcached's limit must fire the matching alerts in Prometheus, and
// Alertmanager must keep the promql copy of an alert quiet while the daemon's own fires.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "tests/monitoring/prometheus_server.hpp"
#include "tests/monitoring/shipped_files.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/load.hpp"
#include "tests/support/memcached.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// Each test has its own network namespace, so the servers' usual ports are free.
using test::get_json;
using test::kPrometheusPort;
using test::ready;
using test::url_encode;
constexpr std::uint16_t kAlertmanagerPort = 9093;

void ip(const std::string& args) {
  const auto r = test::run_command("ip " + args);
  INFO("ip " << args << ": " << r.output);
  REQUIRE(r.exit_code == 0);
}

// Sockets that connect without waiting: past memcached's limit they stay in the kernel's queues.
class PendingClients {
 public:
  PendingClients(std::uint16_t port, int n) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < n; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      REQUIRE(fd >= 0);
      (void)::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);  // EINPROGRESS
      fds_.push_back(fd);
    }
  }
  ~PendingClients() {
    for (int fd : fds_) ::close(fd);
  }
  PendingClients(const PendingClients&) = delete;
  PendingClients& operator=(const PendingClients&) = delete;

 private:
  std::vector<int> fds_;
};

// memcached twice (default settings; and -c 64 -b 64 with -o no_maxconns_fast, to be driven past
// its limit), a veth pair for the NIC series, the daemon watching both, Prometheus scraping it
// every second with all shipped rules, and Alertmanager with the shipped example.
class Stack {
 public:
  Stack()
      : fast_({"-t", "2"}),
        strict_({"-c", "64", "-b", "64", "-o", "no_maxconns_fast"}),
        daemon_(daemon_config()),
        prometheus_(prometheus_argv()),
        alertmanager_(alertmanager_argv()) {
    const bool up =
        test::eventually([] { return ready(kPrometheusPort) && ready(kAlertmanagerPort); }, 30s);
    INFO("prometheus:\n" << prometheus_.output() << "\nalertmanager:\n" << alertmanager_.output());
    REQUIRE(up);
  }

  test::Memcached& strict() { return strict_; }
  test::Memcached& fast() { return fast_; }
  std::string instance() const { return "127.0.0.1:" + std::to_string(daemon_.port()); }
  // What each process logged, and the daemon's own verdicts.
  std::string logs() {
    auto alerts = daemon_.get("/alerts");
    return "daemon:\n" + daemon_.output() + "\n/alerts: " + (alerts ? alerts->body : "") +
           "\nprometheus:\n" + prometheus_.output() + "\nalertmanager:\n" + alertmanager_.output();
  }

  // The `data` of an instant query's answer, or null if the query failed.
  json query(const std::string& promql) const {
    json r = get_json(kPrometheusPort, "/api/v1/query?query=" + url_encode(promql));
    if (r.is_null() || r["status"] != "success") return nullptr;
    return r["data"];
  }
  std::string query_error(const std::string& promql) const {
    auto r = test::http_get("127.0.0.1", kPrometheusPort,
                            "/api/v1/query?query=" + url_encode(promql), {}, 10s);
    return r ? r->body : r.error().message;
  }
  json prometheus(const std::string& path) const { return get_json(kPrometheusPort, path); }
  json alertmanager(const std::string& path) const { return get_json(kAlertmanagerPort, path); }

  // Waits until Prometheus has scraped the daemon and evaluated every rule group once.
  void wait_until_evaluated() {
    const bool scraped = test::eventually(
        [&] {
          json d = query("up{job=\"mcbacklogd\"} == 1");
          return !d.is_null() && !d["result"].empty();
        },
        30s);
    INFO(logs());
    REQUIRE(scraped);
    const bool evaluated = test::eventually(
        [&] {
          json r = prometheus("/api/v1/rules");
          if (r.is_null()) return false;
          for (const auto& g : r["data"]["groups"]) {
            for (const auto& rule : g["rules"]) {
              if (rule["health"] == "unknown") return false;
            }
          }
          return true;
        },
        30s);
    REQUIRE(evaluated);
  }

 private:
  std::string daemon_config() {
    // The devices of this namespace: a veth pair, and a sysfs that shows them.
    ip("link add veth0 type veth peer name veth1");
    ip("link set veth0 up");
    ip("link set veth1 up");
    std::string yaml = "interval: 1s\ntargets:\n";
    yaml += "  - { name: fast, address: " + fast_.address() + ", probe_interval: 1s }\n";
    yaml += "  - { name: strict, address: " + strict_.address() + ", probe_interval: 1s }\n";
    yaml += "collectors:\n  netdev: { include: \"^veth\" }\n";
    yaml += "paths: { sysfs: " + sysfs_.path() + " }\n";
    yaml += "thresholds:\n  MaxConnectionsNear: { for: 1s }\n";
    return yaml;
  }

  std::vector<std::string> prometheus_argv() {
    std::string yaml = "global: { scrape_interval: 1s, evaluation_interval: 1s }\nrule_files:\n";
    for (const char* file : {"mcbacklogd.rules.yml", "mcbacklogd-alerts.rules.yml",
                             "mcbacklogd-alerts-promql.rules.yml"}) {
      yaml += "  - " + test::rules_dir() + "/" + file + "\n";
    }
    yaml += "alerting:\n  alertmanagers: [{ static_configs: [{ targets: ['127.0.0.1:" +
            std::to_string(kAlertmanagerPort) + "'] }] }]\n";
    yaml += "scrape_configs:\n  - job_name: mcbacklogd\n";
    yaml += "    static_configs: [{ targets: ['" + instance() + "'] }]\n";
    return test::prometheus_argv(dir_, yaml);
  }

  std::vector<std::string> alertmanager_argv() {
    return {"/usr/bin/prometheus-alertmanager",
            "--config.file=" + test::rules_dir() + "/alertmanager.example.yml",
            "--storage.path=" + dir_.path() + "/alertmanager",
            "--web.listen-address=127.0.0.1:" + std::to_string(kAlertmanagerPort),
            "--cluster.listen-address=",
            "--log.level=warn"};
  }

  // Declaration order is start order: the namespace first, the scrapers last.
  struct Netns {
    Netns() { test::enter_private_netns(); }
  } netns_;
  test::PrivateSysfs sysfs_;
  test::TempDir dir_;
  test::Memcached fast_;
  test::Memcached strict_;
  test::Daemon daemon_;
  test::Child prometheus_;
  test::Child alertmanager_;
};

// A dashboard query as Prometheus gets it from Grafana with every instance and target selected.
std::string as_grafana_sends(std::string expr) {
  expr = std::regex_replace(expr, std::regex(R"(\$__rate_interval)"), "5s");
  expr = std::regex_replace(expr, std::regex(R"(\$(instance|target)\b)"), ".*");
  return expr;
}

struct DashboardQuery {
  std::string panel;
  std::string expr;
};

std::vector<DashboardQuery> dashboard_queries() {
  std::vector<DashboardQuery> out;
  const json d = json::parse(test::read_text_file(test::dashboard_path()));
  for (const auto& p : d["panels"]) {
    for (const auto& t : p.value("targets", json::array())) {
      out.push_back({p["title"], t["expr"]});
    }
  }
  return out;
}

using Labels = std::map<std::string, std::string>;

// Whether an alert of Prometheus' or Alertmanager's API has these labels (and maybe more).
bool has_labels(const json& alert, const Labels& labels) {
  for (const auto& [k, v] : labels) {
    if (alert["labels"].value(k, "") != v) return false;
  }
  return true;
}

// Firing alerts in Prometheus with these labels, or none.
std::vector<json> firing(const Stack& s, const Labels& labels) {
  std::vector<json> out;
  json r = s.prometheus("/api/v1/alerts");
  if (r.is_null()) return out;
  for (const auto& a : r["data"]["alerts"]) {
    if (a["state"] == "firing" && has_labels(a, labels)) out.push_back(a);
  }
  return out;
}

}  // namespace

TEST_CASE("prometheus: it scrapes the daemon, evaluates every rule and runs every dashboard query",
          "[monitoring][prometheus][grafana]") {
  Stack s;
  // Traffic, and clients that stay, so the counters move and the client series exist.
  test::RawConnection client(s.fast().address());
  for (int i = 0; i < 20; ++i) {
    client.request("set k" + std::to_string(i) + " 0 0 5\r\nvalue\r\nget k" + std::to_string(i) +
                   "\r\n");
  }
  test::RawConnection idle(s.strict().address());
  s.wait_until_evaluated();

  // Every rule of every shipped file is loaded and evaluates without error.
  const json groups = s.prometheus("/api/v1/rules")["data"]["groups"];
  std::set<std::string> names;
  int rules = 0;
  for (const auto& g : groups) {
    names.insert(g["name"]);
    for (const auto& rule : g["rules"]) {
      INFO(g["name"] << ": " << rule.dump());
      CHECK(rule["health"] == "ok");
      CHECK(rule.value("lastError", "").empty());
      ++rules;
    }
  }
  const std::set<std::string> expected{"mcbacklogd-recording", "mcbacklogd-fleet",
                                       "mcbacklogd-self", "mcbacklogd-alerts",
                                       "mcbacklogd-alerts-promql"};
  CHECK(names == expected);
  CHECK(rules == 46);

  // The dashboard's variables find the instance and both targets.
  const json instances =
      s.prometheus("/api/v1/label/instance/values?match[]=" + url_encode("mcbacklog_build_info"));
  CHECK(instances["data"] == json::array({s.instance()}));
  const json targets = s.prometheus("/api/v1/label/target/values?match[]=" +
                                    url_encode("memcached_up{instance=~\".*\"}"));
  CHECK(targets["data"] == json::array({"fast", "strict"}));

  // Every dashboard query parses and runs; most have data on this quiet system once the rate
  // windows have two samples (the rest wait for drops, errors, failures and firing alerts).
  const auto queries = dashboard_queries();
  REQUIRE(queries.size() > 40);
  std::string failed;
  std::string empty;
  std::size_t without_data = 0;
  const bool most = test::eventually(
      [&] {
        failed.clear();
        empty.clear();
        without_data = 0;
        for (const auto& q : queries) {
          const json d = s.query(as_grafana_sends(q.expr));
          if (d.is_null())
            failed += "\n  " + q.expr + ": " + s.query_error(as_grafana_sends(q.expr));
          if (d.is_null() || d["result"].empty()) {
            empty += "\n  " + q.panel + ": " + q.expr;
            ++without_data;
          }
        }
        return failed.empty() && without_data * 10 <= queries.size();
      },
      30s);
  INFO("queries Prometheus refused:" << failed);
  INFO(without_data << " of " << queries.size() << " dashboard queries without data:" << empty);
  CHECK(failed.empty());
  CHECK(most);

  // Quiet but for one thing: strict's -b 64 is below the backlog floor.
  CHECK(firing(s, {{"alertname", "MaxConnectionsNear"}}).empty());
  CHECK(firing(s, {{"alertname", "ListenQueueOverflow"}}).empty());
  CHECK_FALSE(
      firing(s, {{"alertname", "SomaxconnTooLow"}, {"mcbacklogd", "state"}, {"target", "strict"}})
          .empty());
  CHECK(firing(s, {{"alertname", "SomaxconnTooLow"}, {"target", "fast"}}).empty());
}

TEST_CASE(
    "prometheus: clients past memcached's limit fire MaxConnectionsNear and ListenQueueOverflow, "
    "and Alertmanager mutes the promql copy",
    "[monitoring][prometheus][alertmanager]") {
  Stack s;
  s.wait_until_evaluated();
  REQUIRE(firing(s, {{"alertname", "MaxConnectionsNear"}}).empty());

  // -c 64 leaves room for about 40 clients; memcached then stops accepting (listen(fd, 0)) and
  // the kernel drops the rest of the handshakes. (With -b 64 the first burst of handshakes is
  // enough to reach the limit; a backlog smaller than the limit admits the rest only as their
  // SYNs are retransmitted, seconds apart.)
  PendingClients clients(s.strict().port(), 100);
  const Labels state_critical{{"alertname", "MaxConnectionsNear"},
                              {"mcbacklogd", "state"},
                              {"severity", "critical"},
                              {"target", "strict"}};
  const Labels promql_critical{{"alertname", "MaxConnectionsNear"},
                               {"mcbacklogd", "promql"},
                               {"severity", "critical"},
                               {"target", "strict"}};
  const Labels overflow_state{{"alertname", "ListenQueueOverflow"}, {"mcbacklogd", "state"}};
  const Labels overflow_promql{{"alertname", "ListenQueueOverflow"}, {"mcbacklogd", "promql"}};
  const bool fired = test::eventually(
      [&] {
        return !firing(s, state_critical).empty() && !firing(s, promql_critical).empty() &&
               !firing(s, overflow_state).empty() && !firing(s, overflow_promql).empty();
      },
      45s);
  INFO(s.prometheus("/api/v1/alerts").dump(2) << "\n" << s.logs());
  REQUIRE(fired);
  // Only the memcached driven past its limit.
  CHECK(firing(s, {{"alertname", "MaxConnectionsNear"}, {"target", "fast"}}).empty());

  // The annotations expanded, with the target, the instance and the value.
  const json alert = firing(s, state_critical).front();
  const std::string description = alert["annotations"]["description"];
  CHECK_THAT(description, Catch::Contains("memcached strict on " + s.instance()));
  CHECK_THAT(description,
             Catch::Matches(".* has [0-9]+ connections with -c 64, an effective limit of [0-9]+ "
                            "\\(memcached holds some descriptors itself\\).*"));
  // Its runbook link is the page the daemon serves, live.
  const std::string runbook = alert["annotations"]["runbook_url"];
  CHECK(runbook == "http://" + s.instance() + "/runbooks/MaxConnectionsNear");
  // Every memcached alert's runbook link resolves to a page of the daemon naming it.
  const auto colon = s.instance().rfind(':');
  const std::string host = s.instance().substr(0, colon);
  const auto port = static_cast<std::uint16_t>(std::stoi(s.instance().substr(colon + 1)));
  for (const auto& a : s.prometheus("/api/v1/alerts")["data"]["alerts"]) {
    const std::string url = a["annotations"].value("runbook_url", "");
    const std::string prefix = "http://" + s.instance();
    if (url.rfind(prefix, 0) != 0) continue;
    INFO(url);
    const auto page = test::http_get(host, port, url.substr(prefix.size()), {}, 10s);
    REQUIRE(page.ok());
    CHECK(page->status == 200);
    CHECK_THAT(page->body, Catch::Contains("<h1>" + a["labels"]["alertname"].get<std::string>()));
  }
  for (const auto& a : s.prometheus("/api/v1/alerts")["data"]["alerts"]) {
    INFO(a.dump());
    for (const auto& [key, value] : a["annotations"].items()) {
      CHECK(value.get<std::string>().find("error expanding template") == std::string::npos);
      CHECK(value.get<std::string>().find("<no value>") == std::string::npos);
    }
  }

  // Alertmanager holds both copies: the daemon's active, the promql one inhibited by it.
  auto am_state = [&](const Labels& labels) -> std::string {
    const json alerts = s.alertmanager("/api/v2/alerts");
    if (alerts.is_null()) return "";
    for (const auto& a : alerts) {
      if (has_labels(a, labels)) return a["status"]["state"];
    }
    return "";
  };
  const bool routed = test::eventually(
      [&] {
        return am_state(state_critical) == "active" && am_state(promql_critical) == "suppressed";
      },
      30s);
  INFO(s.alertmanager("/api/v2/alerts").dump(2));
  CHECK(routed);
}

TEST_CASE(
    "prometheus: the fleet rules rank clients over two daemons and every fleet dashboard query "
    "has data",
    "[monitoring][prometheus][grafana][fleet]") {
  // Two memcached hosts, each with its daemon; the same application host (127.0.0.2) connects
  // to both, another (127.0.0.3) to one.
  test::enter_private_netns();
  test::TempDir dir;
  test::Memcached one;
  test::Memcached two;
  auto daemon_for = [](const test::Memcached& mc) {
    return "targets: [{ name: mc, address: " + mc.address() +
           " }]\ncollectors: { sockdiag: { connections_interval: 1s } }\n";
  };
  test::Daemon first(daemon_for(one));
  test::Daemon second(daemon_for(two));
  std::vector<test::Socket> clients;
  auto connect = [&](const test::Memcached& mc, const std::string& from, int n) {
    for (int i = 0; i < n; ++i)
      clients.push_back(test::connect_tcp("127.0.0.1", mc.port(), {.source = from}));
  };
  connect(one, "127.0.0.2", 5);
  connect(one, "127.0.0.3", 2);
  connect(two, "127.0.0.2", 3);

  const std::string yaml =
      "global: { scrape_interval: 1s, evaluation_interval: 1s }\nrule_files: [" +
      test::rules_dir() + "/mcbacklogd.rules.yml]\nscrape_configs:\n  - job_name: mcbacklogd\n" +
      "    static_configs: [{ targets: ['127.0.0.1:" + std::to_string(first.port()) +
      "', '127.0.0.1:" + std::to_string(second.port()) + "'] }]\n";
  test::Child prometheus(
      {"/usr/bin/prometheus", "--config.file=" + dir.write("prometheus.yml", yaml),
       "--storage.tsdb.path=" + dir.path() + "/data",
       "--web.listen-address=127.0.0.1:" + std::to_string(kPrometheusPort), "--log.level=warn"});
  auto value = [&](const std::string& promql) -> std::optional<double> {
    json r = get_json(kPrometheusPort, "/api/v1/query?query=" + url_encode(promql));
    if (r.is_null() || r["data"]["result"].size() != 1) return std::nullopt;
    return std::stod(r["data"]["result"][0]["value"][1].get<std::string>());
  };

  // 127.0.0.2 holds 5 + 3 connections on two hosts; 127.0.0.3 holds 2 on one.
  const bool ranked = test::eventually(
      [&] {
        return value("mcbacklog:client_connections:sum_fleet{client=\"127.0.0.2\"}") == 8.0 &&
               value("mcbacklog:client_connections:sum_fleet{client=\"127.0.0.3\"}") == 2.0 &&
               value("mcbacklog:client_memcached_hosts:count_fleet{client=\"127.0.0.2\"}") == 2.0 &&
               value("mcbacklog:client_memcached_hosts:count_fleet{client=\"127.0.0.3\"}") == 1.0;
      },
      45s);
  INFO(prometheus.output() << "\n"
                           << get_json(kPrometheusPort,
                                       "/api/v1/query?query=" +
                                           url_encode("mcbacklog_client_connections"))
                                  .dump(2));
  REQUIRE(ranked);
  // The top client of the fleet is first in the dashboard's ranking.
  const json top =
      get_json(kPrometheusPort, "/api/v1/query?query=" +
                                    url_encode("topk(1, mcbacklog:client_connections:sum_fleet)"));
  CHECK(top["data"]["result"][0]["metric"]["client"] == "127.0.0.2");
  // Both hosts' states, per alert, on one screen.
  const json states =
      get_json(kPrometheusPort,
               "/api/v1/query?query=" +
                   url_encode("count by (instance) (mcbacklog:alert_state:max_by_instance)"));
  CHECK(states["data"]["result"].size() == 2);

  // Every query of the fleet dashboard runs and has data, as Grafana sends it.
  const json d = json::parse(test::read_text_file(test::fleet_dashboard_path()));
  std::string missing;
  const bool all = test::eventually(
      [&] {
        missing.clear();
        for (const auto& p : d["panels"]) {
          for (const auto& t : p.value("targets", json::array())) {
            std::string expr = std::regex_replace(t["expr"].get<std::string>(),
                                                  std::regex(R"(\$__rate_interval)"), "5s");
            expr = std::regex_replace(expr, std::regex(R"(\$job\b)"), ".*");
            const json r = get_json(kPrometheusPort, "/api/v1/query?query=" + url_encode(expr));
            if (r.is_null() || r["data"]["result"].empty()) missing += "\n  " + expr;
          }
        }
        return missing.empty();
      },
      30s);
  INFO("fleet dashboard queries without data:" << missing);
  CHECK(all);
}
