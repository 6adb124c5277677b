#pragma once
// The runbook pages the daemon serves at /runbooks/ and /runbooks/<Alert>: plain HTML without
// scripts, made from the rule table (what the alert means, how it is decided with the levels in
// force on this host, when it fires at once, what to check first, the fix) and, live, this host's
// condition, state, evidence and values for the alert. Every text a peer or the configuration
// supplied (target names, evidence) is HTML-escaped. Pure; thread-safe.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/alerts/evaluator.hpp"

namespace mcb {

// What a page says about where it comes from: "mcbacklogd 0.1.0 on host:9741".
struct RunbookContext {
  std::string footer;
  std::chrono::system_clock::time_point now;
};

// The index: every alert with its worst condition and state on this host.
std::string runbook_index_html(const std::vector<AlertStatus>& statuses,
                               const RunbookContext& context);

// The page of the alert named `name`, or nullopt when there is no such alert.
// `levels(alert)`: the levels in force.
std::optional<std::string> runbook_html(std::string_view name,
                                        const std::vector<AlertStatus>& statuses,
                                        const Evaluator& evaluator, const RunbookContext& context);

}  // namespace mcb
