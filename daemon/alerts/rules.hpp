#pragma once
// The alert rule table: one entry per alert of the catalogue, holding everything about it: its
// name, the cause it stands for, what it means, how it is decided and when it fires at once,
// what to check first, the fix, the default levels and which way they run, `for`, window, the
// subject it is judged for, and the one check function that reads the observation and the
// windows. /alerts, `mcbacklogd diagnose`, the runbooks, the configuration loader (names and
// defaults) and the docs' alert table all read this table, so they cannot disagree.
//
// In code an alert is an `Alert` value, so a misspelt name does not compile; in the configuration
// it is a name the loader checks against this table (alert_schemas()).
//
// Check functions are pure: they read their RuleInput and return a verdict, or nullopt when the
// subject has no data for them this evaluation. Thread-safe (the table is immutable).

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "config/config.hpp"
#include "daemon/alerts/alert_state.hpp"
#include "daemon/alerts/observation.hpp"
#include "daemon/alerts/windows.hpp"

namespace mcb {

enum class Alert : std::uint8_t {
  kMemcachedDown,
  kListenQueueOverflow,
  kAcceptQueueFilling,
  kProbeSlow,
  kConnectionSprawl,
  kMaxConnectionsNear,
  kMemcachedCpuSaturated,
  kNetworkSaturated,
  kSomaxconnTooLow,
  kSlowClients,
  kMemcachedMemoryFull,
};
inline constexpr std::size_t kAlertCount = 11;

// What an alert is judged for: the host's network namespace as a whole, each memcached target,
// or each watched NIC.
enum class Subject { kHost, kTarget, kDevice };

// What a check reads: the observation, the windows (fed before any check runs), the alert's
// levels and its condition at the last evaluation (for hysteresis), and its subject.
struct RuleInput {
  const Observation& observation;
  const Windows& windows;
  const AlertThreshold& threshold;
  Level current = Level::kOk;
  const TargetView* target = nullptr;    // Subject::kTarget
  const NetdevDevice* device = nullptr;  // Subject::kDevice
};

using Check = std::optional<Verdict> (*)(const RuleInput&);

struct Rule {
  Alert alert;
  std::string_view name;
  std::string_view cause;        // the cause it stands for, in a line
  std::string_view meaning;      // what it means when it fires
  std::string_view decided;      // the value, its levels and what else makes it fire
  std::string_view severity;     // when it fires at once instead of after `for`
  std::string_view check_first;  // where a person looks first
  std::string_view remediation;  // the general fix; a verdict may carry a more precise one
  std::string_view unit;         // what `value` measures
  Subject subject;
  bool lower_is_worse;
  AlertThreshold defaults;
  std::span<const ThresholdKey> extra_keys;
  Check check;
};

// Every rule, in catalogue order: rules()[i].alert == Alert(i).
const std::array<Rule, kAlertCount>& rules();
const Rule& rule(Alert alert);
std::optional<Alert> find_alert(std::string_view name);

// The alerts' names, defaults and extra keys, for the configuration loader.
AlertSchemas alert_schemas();

// Config::defaults with every alert of the table (what the daemon runs without a file).
Config default_config();

// Words for people, shared by every text about an alert.
std::string format_number(double v);                 // 850, 0.123, 12.5
std::string format_percent(double ratio);            // "85%"
std::string plural(double n, std::string_view one);  // "1 client", "3 clients"

}  // namespace mcb
