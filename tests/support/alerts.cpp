#include "tests/support/alerts.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

#include "tests/support/process.hpp"

namespace mcb::test {

std::vector<AlertStatus> alerts(Daemon& d) {
  const auto r = d.get("/alerts");
  REQUIRE(r.ok());
  REQUIRE(r->status == 200);
  auto parsed = parse_alerts_json(r->body);
  INFO(r->body);
  REQUIRE(parsed.ok());
  return std::move(*parsed);
}

Alerts alerts_of(const std::vector<AlertStatus>& all, const std::string& target) {
  auto own = [&](const AlertStatus& a) {
    return !a.labels.empty() && a.labels.front().first == "target" &&
           a.labels.front().second == target;
  };
  // The host alerts of the target's network namespace: unlabelled for the daemon's own, labelled
  // with the namespace alone for another.
  AlertLabels host;
  for (const AlertStatus& a : all) {
    if (!own(a)) continue;
    for (const auto& label : a.labels) {
      if (label.first == "netns") host = {label};
    }
    break;
  }
  Alerts out;
  for (const AlertStatus& a : all) {
    if (a.labels == host || own(a)) out[a.name] = a;
  }
  return out;
}

std::string evidence(const AlertStatus& a) { return a.verdict ? a.verdict->evidence : ""; }

std::string describe(const Alerts& view) {
  std::string out;
  for (const auto& [name, a] : view) {
    out += name + " " + std::string(level_name(a.state)) + " (condition " +
           std::string(level_name(a.condition)) + "): " + evidence(a) + "\n";
  }
  return out;
}

Alerts wait_for_alert(Daemon& d, const std::string& alert, Level level,
                      const std::vector<std::string>& wanted, const std::string& target,
                      bool condition, std::chrono::milliseconds timeout) {
  Alerts view;
  const bool reached = eventually(
      [&] {
        view = alerts_of(alerts(d), target);
        const auto it = view.find(alert);
        if (it == view.end()) return false;
        if ((condition ? it->second.condition : it->second.state) < level) return false;
        const std::string e = evidence(it->second);
        return std::all_of(wanted.begin(), wanted.end(),
                           [&](const std::string& w) { return e.find(w) != std::string::npos; });
      },
      timeout);
  INFO("last /alerts of " << target << ":\n" << describe(view) << "daemon log:\n" << d.output());
  REQUIRE(reached);
  return view;
}

void check_ok(const Alerts& view, const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    INFO(name << ": " << (view.count(name) ? evidence(view.at(name)) : "missing"));
    REQUIRE(view.count(name) == 1);
    CHECK(view.at(name).state == Level::kOk);
  }
}

Report diagnose(const Daemon& d, const std::vector<std::string>& extra) {
  std::vector<std::string> argv{daemon_binary(), "diagnose", "--wait=1s",
                                "--config.file=" + d.config_path()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  Child c(argv);
  const auto code = c.wait_exit(std::chrono::seconds(30));
  INFO(c.output());
  REQUIRE(code.has_value());
  return {*code, c.output()};
}

bool reports_firing(const Report& r, const std::string& alert, const std::string& target) {
  for (const char* level : {"WARNING  ", "CRITICAL "}) {
    if (r.output.find(level + alert + " [" + target + "]") != std::string::npos) return true;
  }
  return false;
}

}  // namespace mcb::test
