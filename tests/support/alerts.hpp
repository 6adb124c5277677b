#pragma once
// A running daemon's /alerts as tests read it: through the same reader `diagnose --from-daemon`
// uses (daemon/alerts/alerts_json.hpp), polled until an alert reaches a level, plus `diagnose`
// run against a daemon's configuration. Test threads only.

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "daemon/alerts/alerts_json.hpp"
#include "tests/support/daemon.hpp"

namespace mcb::test {

// One target's view of /alerts by alert name: its own alerts and the host's of its network
// namespace (device alerts are left out).
using Alerts = std::map<std::string, AlertStatus>;

// GET /alerts, parsed; fails the test if the daemon does not answer or the body does not parse.
std::vector<AlertStatus> alerts(Daemon& d);
Alerts alerts_of(const std::vector<AlertStatus>& all, const std::string& target);

std::string describe(const Alerts& view);
std::string evidence(const AlertStatus& a);

// Polls /alerts until `alert` of `target` is at least `level` (its state, or its condition when
// `condition` is true) with every one of `evidence` in its evidence; returns that view.
Alerts wait_for_alert(Daemon& d, const std::string& alert, Level level,
                      const std::vector<std::string>& evidence = {},
                      const std::string& target = "mc", bool condition = false,
                      std::chrono::milliseconds timeout = std::chrono::seconds(15));

// Every alert of `names` is ok in `view`.
void check_ok(const Alerts& view, const std::vector<std::string>& names);

struct Report {
  int exit_code = -1;
  std::string output;
};

// `mcbacklogd diagnose --wait=1s` with the daemon's configuration and `extra` flags.
Report diagnose(const Daemon& d, const std::vector<std::string>& extra = {});

// Whether the report names `alert` for `target` at warning or critical.
bool reports_firing(const Report& r, const std::string& alert, const std::string& target = "mc");

}  // namespace mcb::test
