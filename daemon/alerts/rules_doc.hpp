#pragma once
// Texts about the alerts made from the rule table (rules.hpp), so the docs, the runbooks and
// /alerts cannot disagree: the Markdown reference in docs/alerts.md between its "generated"
// markers and the README's alert list (a test holds both files to this) and the parts a runbook
// page is made of. Pure;
// thread-safe.

#include <string>

#include "config/config.hpp"
#include "daemon/alerts/rules.hpp"

namespace mcb {

// "0.8", "5s", "—": a level as the docs write it.
std::string format_level(double v);

// The alert table and one section per alert, with anchors "alert-<name in lower case>".
std::string rules_markdown();

// The README's alert list: one row per alert (name linking its reference in docs/alerts.md, the
// cause, what it means).
std::string readme_alert_table();

// The extra level keys of an alert and their defaults, e.g. "connections_warning 0.25,
// connections_critical 0.5"; empty when it has none.
std::string extra_levels_text(const Rule& rule, const AlertThreshold& levels);

}  // namespace mcb
