// mcbacklogd in memcached_exporter's place, end to end: a real Prometheus (Debian's, started as
// prometheus_test.cpp starts it, tests/monitoring/prometheus_server.hpp) scrapes the
// daemon's per-target view /scrape?target=NAME with memcached_exporter's multi-target relabelling,
// one `instance` per memcached, and runs the kinds of queries memcached dashboards and alerts run
// (hit rate from memcached_commands_total, items, evictions, connections against
// memcached_max_connections, memcached_slab_items_outofmemory_total). Two real memcached behind
// one daemon: each query must answer per memcached, and a memcached driven out of memory (-M with
// a small -m) must make its out-of-memory counter rise, and only its own.

#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "tests/monitoring/prometheus_server.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/memcached.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

using test::kPrometheusPort;
using test::url_encode;

// The Prometheus scrape configuration docs/memcached-exporter.md gives, for `daemon`.
std::string scrape_config(const std::string& daemon, const std::vector<std::string>& targets) {
  std::string list;
  for (const std::string& t : targets) list += (list.empty() ? "'" : ", '") + t + "'";
  return "  - job_name: memcached\n"
         "    metrics_path: /scrape\n"
         "    static_configs:\n"
         "      - targets: [" +
         list +
         "]\n"
         "    relabel_configs:\n"
         "      - source_labels: [__address__]\n"
         "        target_label: __param_target\n"
         "      - source_labels: [__param_target]\n"
         "        target_label: instance\n"
         "      - target_label: __address__\n"
         "        replacement: " +
         daemon + "\n";
}

// memcached twice behind one daemon: `cache` with default settings, `small` with -M -m 8, which
// refuses stores once its memory is full instead of evicting. Prometheus scrapes each through
// /scrape every second.
class Stack {
 public:
  Stack() : small_({"-M", "-m", "8"}), daemon_(daemon_config()), prometheus_(prometheus_argv()) {
    const bool ready = test::eventually([] { return test::ready(kPrometheusPort); }, 30s);
    INFO(prometheus_.output());
    REQUIRE(ready);
  }

  test::Memcached& cache() { return cache_; }
  test::Memcached& small() { return small_; }

  // The result vector of an instant query: {instance: value}, without the series whose value is
  // not a number (a rate of nothing, 0/0); empty if the query failed.
  std::map<std::string, double> by_instance(const std::string& promql) const {
    std::map<std::string, double> out;
    auto r = test::http_get("127.0.0.1", kPrometheusPort,
                            "/api/v1/query?query=" + url_encode(promql), {}, 10s);
    if (!r || r->status != 200) return out;
    const json j = json::parse(r->body, nullptr, false);
    if (j.is_discarded() || j["status"] != "success") return out;
    for (const auto& s : j["data"]["result"]) {
      const double v = std::stod(s["value"][1].get<std::string>());
      if (!std::isnan(v)) out[s["metric"].value("instance", "")] = v;
    }
    return out;
  }

  std::string logs() const {
    return "daemon:\n" + daemon_.output() + "\nprometheus:\n" + prometheus_.output();
  }

 private:
  std::string daemon_config() {
    return "interval: 1s\n"
           "collectors: { sockdiag: { enabled: false }, netdev: { enabled: false } }\n"
           "targets:\n"
           "  - { name: cache, address: \"" +
           cache_.address() +
           "\", slab_stats_interval: 1s }\n"
           "  - { name: small, address: \"" +
           small_.address() + "\", slab_stats_interval: 1s }\n";
  }

  std::vector<std::string> prometheus_argv() {
    const std::string yaml =
        "global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n" +
        scrape_config("127.0.0.1:" + std::to_string(daemon_.port()), {"cache", "small"});
    return test::prometheus_argv(dir_, yaml);
  }

  // Declaration order is start order: the namespace first, Prometheus last.
  struct Netns {
    Netns() { test::enter_private_netns(); }
  } netns_;
  test::TempDir dir_;
  test::Memcached cache_;
  test::Memcached small_;
  test::Daemon daemon_;
  test::Child prometheus_;
};

// Gets that hit and miss on both, so the command counters move between scrapes.
void traffic(Stack& s) {
  for (test::Memcached* mc : {&s.cache(), &s.small()}) {
    test::memcached_request(mc->address(), "get key0 key1 missing\r\n");
  }
}

}  // namespace

TEST_CASE(
    "memcached_exporter's place: Prometheus scrapes one instance per memcached and the dashboards' "
    "and alerts' queries answer per memcached, the out-of-memory counter rising on the full one",
    "[monitoring][prometheus][exporter]") {
  Stack s;
  for (test::Memcached* mc : {&s.cache(), &s.small()}) {
    test::store_items(mc->address(), "key", 2, 10);
  }
  const std::set<std::string> both{"cache", "small"};
  auto instances = [](const std::map<std::string, double>& result) {
    std::set<std::string> out;
    for (const auto& [instance, value] : result) out.insert(instance);
    return out;
  };

  // The scrape targets are the memcached themselves.
  REQUIRE(test::eventually(
      [&] { return instances(s.by_instance("up{job=\"memcached\"} == 1")) == both; }, 30s));
  CHECK(instances(s.by_instance("memcached_up == 1")) == both);

  // Queries of the kinds the memcached dashboards and alerts run, each with data per memcached.
  const std::vector<std::string> queries{
      // hit rate, from memcached_commands_total
      "sum by (instance) (rate(memcached_commands_total{command=\"get\", status=\"hit\"}[5s]))"
      " / sum by (instance) (rate(memcached_commands_total{command=\"get\"}[5s]))",
      // commands
      "sum by (instance, command) (rate(memcached_commands_total[5s]))",
      // items
      "sum by (instance) (memcached_current_items)",
      // evictions
      "sum by (instance) (rate(memcached_items_evicted_total[5s]))",
      // connections against the limit
      "sum by (instance) (memcached_current_connections)"
      " / sum by (instance) (memcached_max_connections)",
      // the out-of-memory alert's series
      "sum by (instance) (memcached_slab_items_outofmemory_total)",
  };
  std::string missing;
  const bool answered = test::eventually(
      [&] {
        traffic(s);
        missing.clear();
        for (const std::string& q : queries) {
          if (instances(s.by_instance(q)) != both) missing += "\n  " + q;
        }
        return missing.empty();
      },
      60s);
  INFO("queries without data for both memcached:" << missing << "\n" << s.logs());
  REQUIRE(answered);
  const auto hit_rate = s.by_instance(queries.front());
  // Two hits and a miss per round (a round that a sample splits moves it a little).
  CHECK(hit_rate.at("cache") > 0.5);
  CHECK(hit_rate.at("cache") < 0.8);
  const auto usage = s.by_instance(queries[4]);
  CHECK(usage.at("cache") > 0);
  CHECK(usage.at("cache") <= 1);
  CHECK(s.by_instance(queries[5]) == std::map<std::string, double>{{"cache", 0}, {"small", 0}});

  // -M with -m 8: memcached refuses stores once its 8 pages are full. The counter rises on that
  // memcached alone, and the out-of-memory alert's expression holds for it alone.
  test::store_items(s.small().address(), "fill", 200000, 10);
  REQUIRE(std::stol(s.small().stats().at("store_no_memory")) > 0);
  const std::string rising =
      "sum without (slab) (rate(memcached_slab_items_outofmemory_total[10s])) > 0";
  std::map<std::string, double> firing;
  const bool rose = test::eventually(
      [&] {
        firing = s.by_instance(rising);
        return !firing.empty();
      },
      60s);
  INFO(s.logs());
  REQUIRE(rose);
  CHECK(instances(firing) == std::set<std::string>{"small"});
  const auto total = s.by_instance("sum by (instance) (memcached_slab_items_outofmemory_total)");
  CHECK(total.at("small") > 0);
  CHECK(total.at("cache") == 0);
}
