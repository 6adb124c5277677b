// The shipped Prometheus rules and Grafana dashboard read as files, against the daemon's own
// alert catalogue: every alert in both alert sets with its labels and annotations, promtool unit
// tests that see each alert fire and stay silent, runbook links that land on the daemon's pages
// and docs/operations.md, and a dashboard with the variables, rows and panels operators expect.
// What Prometheus makes of them is prometheus_test.cpp's business.

#include <catch2/catch.hpp>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "daemon/alerts/rules.hpp"
#include "tests/monitoring/shipped_files.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/process.hpp"

using namespace mcb;

namespace {

// The alerts about the daemon itself, in mcbacklogd.rules.yml.
const std::set<std::string>& self_alerts() {
  static const std::set<std::string> kSelf{"McbacklogdDown", "McbacklogdCollectorFailing"};
  return kSelf;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Alerting rules of a rule file by alert name.
std::multimap<std::string, YAML::Node> alerting_rules(const std::string& file) {
  std::multimap<std::string, YAML::Node> out;
  for (const auto& group : YAML::LoadFile(test::rules_dir() + "/" + file)["groups"]) {
    for (const auto& rule : group["rules"]) {
      if (rule["alert"]) out.emplace(rule["alert"].as<std::string>(), rule);
    }
  }
  return out;
}

std::string text(const YAML::Node& node, const char* key) {
  return node[key] ? node[key].as<std::string>() : "";
}

// The anchors of a Markdown file of the source tree: its headings as GitHub slugs them, and
// explicit <a id> or <a name>.
std::set<std::string> markdown_anchors(const std::string& file) {
  std::set<std::string> anchors;
  const std::string readme = test::read_text_file(test::source_dir() + "/" + file);
  static const std::regex kHeading(R"(^#+ +(.+)$)", std::regex::multiline);
  for (std::sregex_iterator it(readme.begin(), readme.end(), kHeading), end; it != end; ++it) {
    std::string slug;
    for (unsigned char c : lower((*it)[1].str())) {
      if (std::isalnum(c) || c == '-' || c == '_') slug += static_cast<char>(c);
      if (c == ' ') slug += '-';
    }
    anchors.insert(slug);
  }
  static const std::regex kExplicitAnchor(R"re(<a (?:id|name)="([^"]+)")re");
  for (std::sregex_iterator it(readme.begin(), readme.end(), kExplicitAnchor), end; it != end;
       ++it) {
    anchors.insert((*it)[1].str());
  }
  return anchors;
}

// Every `expr` of the dashboard's panels, rows' collapsed panels included.
void collect_exprs(const nlohmann::json& panels, std::vector<std::string>& out) {
  for (const auto& p : panels) {
    if (p.contains("panels")) collect_exprs(p["panels"], out);
    for (const auto& t : p.value("targets", nlohmann::json::array())) out.push_back(t["expr"]);
  }
}

}  // namespace

TEST_CASE("rules: both alert sets have every alert of the catalogue, labelled and annotated",
          "[monitoring][rules]") {
  const auto state = alerting_rules("mcbacklogd-alerts.rules.yml");
  const auto promql = alerting_rules("mcbacklogd-alerts-promql.rules.yml");
  const auto self = alerting_rules("mcbacklogd.rules.yml");

  std::set<std::string> catalogue;
  for (const Rule& rule : rules()) catalogue.emplace(rule.name);
  REQUIRE(catalogue.size() == 11);

  auto check_rule = [](const std::string& name, const YAML::Node& rule, const std::string& set) {
    INFO(set << " " << name << ": " << YAML::Dump(rule));
    CHECK(text(rule["labels"], "mcbacklogd") == set);
    const std::string severity = text(rule["labels"], "severity");
    CHECK((severity == "warning" || severity == "critical" ||
           severity == "{{ if ge $value 2.0 }}critical{{ else }}warning{{ end }}"));
    const YAML::Node ann = rule["annotations"];
    CHECK_FALSE(text(ann, "summary").empty());
    CHECK_THAT(text(ann, "summary"), Catch::Contains("$labels.instance"));
    // The description quotes the value: $value, or a query of the raw metrics. (The daemon's
    // own health is up or down.)
    const std::string description = text(ann, "description");
    if (set != "self") {
      CHECK((description.find("$value") != std::string::npos ||
             description.find("| query") != std::string::npos));
    }
    CHECK_THAT(description, Catch::Contains("$labels.instance"));
    CHECK(text(ann, "runbook_url") == (set == "self"
                                           ? test::docs_url_template("alert-" + lower(name))
                                           : test::runbook_url_template(name)));
  };

  for (const std::string& name : catalogue) {
    CHECK(state.count(name) == 1);
    CHECK(promql.count(name) >= 1);
    std::set<std::string> severities;
    for (auto [it, end] = state.equal_range(name); it != end; ++it) {
      check_rule(name, it->second, "state");
      CHECK(it->second["expr"].as<std::string>().find("mcbacklog_alert_state{alert=\"" + name +
                                                      "\"}") != std::string::npos);
    }
    for (auto [it, end] = promql.equal_range(name); it != end; ++it) {
      check_rule(name, it->second, "promql");
      CHECK(it->second["expr"].as<std::string>().find("mcbacklog_alert_state") ==
            std::string::npos);
      severities.insert(text(it->second["labels"], "severity"));
    }
    // Both levels in PromQL, as the daemon grades them; memcached down is only ever critical.
    INFO(name);
    CHECK(severities == (name == "MemcachedDown" ? std::set<std::string>{"critical"}
                                                 : std::set<std::string>{"warning", "critical"}));
  }
  for (const auto& [name, rule] : self) {
    CHECK(self_alerts().count(name) == 1);
    check_rule(name, rule, "self");
  }
  CHECK(self.size() == self_alerts().size());
  // Nothing outside the catalogue.
  for (const auto* set : {&state, &promql}) {
    for (const auto& [name, rule] : *set) CHECK(catalogue.count(name) == 1);
  }
}

TEST_CASE("rules: the promtool tests see every alert fire and stay silent", "[monitoring][rules]") {
  const std::vector<std::pair<std::string, std::vector<std::string>>> suites{
      {"tests/state.test.yml", {"mcbacklogd.rules.yml", "mcbacklogd-alerts.rules.yml"}},
      {"tests/promql.test.yml", {"mcbacklogd-alerts-promql.rules.yml"}}};
  for (const auto& [test_file, rule_files] : suites) {
    std::map<std::string, std::pair<int, int>> seen;  // alert -> (firing, silent) evaluations
    for (const auto& test : YAML::LoadFile(test::rules_dir() + "/" + test_file)["tests"]) {
      for (const auto& eval : test["alert_rule_test"]) {
        auto& [firing, silent] = seen[eval["alertname"].as<std::string>()];
        ++(eval["exp_alerts"].size() > 0 ? firing : silent);
      }
    }
    for (const std::string& rule_file : rule_files) {
      for (const auto& [name, rule] : alerting_rules(rule_file)) {
        INFO(test_file << ": " << name);
        CHECK(seen[name].first > 0);
        CHECK(seen[name].second > 0);
      }
    }
  }
}

TEST_CASE("rules: every runbook_url is a runbook page of the daemon or a section of the docs",
          "[monitoring][rules]") {
  // The memcached alerts' pages are served by the daemon (the integration tests fetch each); the
  // daemon's own alerts link docs/operations.md.
  const std::set<std::string> anchors = markdown_anchors("docs/operations.md");
  for (const std::string& name : self_alerts()) {
    INFO("docs/operations.md needs a section with anchor #alert-" << lower(name));
    CHECK(anchors.count("alert-" + lower(name)) == 1);
  }
  for (const char* file : {"mcbacklogd-alerts.rules.yml", "mcbacklogd-alerts-promql.rules.yml"}) {
    for (const auto& [name, rule] : alerting_rules(file)) {
      INFO(file << " " << name);
      REQUIRE(find_alert(name).has_value());
      CHECK(text(rule["annotations"], "runbook_url") == test::runbook_url_template(name));
    }
  }
}

TEST_CASE("dashboard: variables, a top row of alert states, a row per cause, every panel on them",
          "[monitoring][grafana]") {
  const nlohmann::json d = nlohmann::json::parse(test::read_text_file(test::dashboard_path()));
  CHECK(d["schemaVersion"] == 41);  // Grafana 12
  CHECK(d["uid"] == "mcbacklogd");

  std::map<std::string, nlohmann::json> vars;
  for (const auto& v : d["templating"]["list"]) vars[v["name"]] = v;
  REQUIRE(vars.count("datasource") == 1);
  CHECK(vars["datasource"]["type"] == "datasource");
  CHECK(vars["datasource"]["query"] == "prometheus");
  for (const char* name : {"instance", "target"}) {
    INFO(name);
    REQUIRE(vars.count(name) == 1);
    CHECK(vars[name]["type"] == "query");
    CHECK(vars[name]["datasource"]["uid"] == "${datasource}");
    CHECK(vars[name]["multi"] == true);
    CHECK(vars[name]["includeAll"] == true);
  }

  const nlohmann::json& panels = d["panels"];
  std::vector<std::string> rows;
  std::set<int> ids;
  struct Box {
    int x, y, w, h;
  };
  std::vector<Box> boxes;
  for (const auto& p : panels) {
    INFO(p["title"]);
    CHECK(ids.insert(p["id"].get<int>()).second);
    const Box b{p["gridPos"]["x"], p["gridPos"]["y"], p["gridPos"]["w"], p["gridPos"]["h"]};
    CHECK(b.x + b.w <= 24);
    for (const Box& o : boxes) {
      const bool overlap = b.x < o.x + o.w && o.x < b.x + b.w && b.y < o.y + o.h && o.y < b.y + b.h;
      CHECK_FALSE(overlap);
    }
    boxes.push_back(b);
    if (p["type"] == "row") {
      rows.push_back(p["title"]);
      continue;
    }
    CHECK_FALSE(p.value("description", "").empty());
    CHECK(p["datasource"]["uid"] == "${datasource}");
    REQUIRE_FALSE(p["targets"].empty());
    for (const auto& t : p["targets"]) {
      CHECK(t["datasource"]["uid"] == "${datasource}");
      CHECK_THAT(t["expr"].get<std::string>(), Catch::Contains("$instance"));
    }
  }
  REQUIRE(rows.size() >= 7);
  CHECK(rows[0] == "Alerts");
  CHECK_THAT(panels[1]["targets"][0]["expr"].get<std::string>(),
             Catch::Contains("mcbacklog_alert_state"));
  // A click on an alert's row opens that host's runbook page of it.
  CHECK(panels[1]["fieldConfig"]["defaults"]["links"][0]["url"] ==
        "http://${__field.labels.instance}/runbooks/${__field.labels.alert}");
  std::string all_rows;
  for (const std::string& r : rows) all_rows += r + "\n";
  for (const char* cause :
       {"Symptom", "Cause 1", "Cause 2", "Cause 3", "Cause 4", "Cause 5", "cause 6", "Memory"}) {
    CHECK_THAT(all_rows, Catch::Contains(cause));
  }

  // What each cause is seen by.
  std::vector<std::string> exprs;
  collect_exprs(panels, exprs);
  std::string all;
  for (const std::string& e : exprs) all += e + "\n";
  for (const char* metric :
       {"mcbacklog_accept_queue_length", "mcbacklog_accept_queue_peak",
        "mcbacklog_accept_queue_max", "mcbacklog_listen_overflows_total",
        "memcached_current_connections", "mcbacklog:memcached_connections_limit:effective",
        "memcached_connections_rejected_total",
        "mcbacklog_memcached_connections_listener_disabled_seconds_total",
        "mcbacklog_probe_latency_seconds_bucket", "mcbacklog_client_connections",
        "mcbacklog_memcached_cpu_utilization_ratio", "mcbacklog_network_utilization_ratio",
        "mcbacklog_somaxconn", "mcbacklog_memcached_listen_backlog",
        "mcbacklog_connections_send_queue_blocked", "memcached_current_bytes",
        "memcached_limit_bytes", "memcached_items_evicted_total"}) {
    CHECK_THAT(all, Catch::Contains(metric));
  }
}

TEST_CASE(
    "dashboard: the fleet dashboard shows every host's alerts with runbook links and the "
    "clients across hosts",
    "[monitoring][grafana][fleet]") {
  const nlohmann::json d =
      nlohmann::json::parse(test::read_text_file(test::fleet_dashboard_path()));
  CHECK(d["schemaVersion"] == 41);
  CHECK(d["uid"] == "mcbacklogd-fleet");
  std::set<int> ids;
  std::vector<std::string> exprs;
  collect_exprs(d["panels"], exprs);
  int linked = 0;
  for (const auto& p : d["panels"]) {
    INFO(p["title"]);
    CHECK(ids.insert(p["id"].get<int>()).second);
    if (p["type"] == "row") continue;
    CHECK_FALSE(p.value("description", "").empty());
    CHECK(p["datasource"]["uid"] == "${datasource}");
    for (const auto& link : p["fieldConfig"]["defaults"].value("links", nlohmann::json::array())) {
      if (link["url"] == "http://${__field.labels.instance}/runbooks/${__field.labels.alert}") {
        ++linked;
      }
    }
  }
  // Both the state and the condition panels open the host's runbook of the alert clicked.
  CHECK(linked == 2);
  std::string all;
  for (const std::string& e : exprs) all += e + "\n";
  for (const char* series :
       {"mcbacklog:alert_state:max_by_instance", "mcbacklog:alert_condition:max_by_instance",
        "mcbacklog:client_connections:sum_fleet", "mcbacklog:client_memcached_hosts:count_fleet",
        "mcbacklog:memcached_connections:usage_ratio"}) {
    CHECK_THAT(all, Catch::Contains(series));
  }
}
