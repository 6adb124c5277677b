#pragma once
// `mcbacklogd diagnose`: the one-shot report for a person at a terminal, and a check for scripts
// (exit code 0 ok, 1 warning, 2 critical, 3 unknown: the Nagios convention).
//
// It runs the daemon's own collectors twice, `--wait` apart, evaluates with every `for` set to
// zero (two samples are all the history it has), and prints each signal, each alert's verdict
// with its evidence, and the fix for what fires. Its own connections may be refused or time out
// when memcached is saturated: that is reported as evidence, never a crash. With --from-daemon
// it reads the alert states of a running daemon instead, which has the persistent connection
// and the history. Runs its own io_context on the calling thread.

#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/alerts/evaluator.hpp"
#include "daemon/alerts/signals.hpp"
#include "daemon/flags.hpp"

namespace mcb {

// Pure: the signals section (what was measured), the verdicts section (every alert, the fix for
// what fires), what the counters say about saturation before this run, and the result line.
// `color` adds ANSI colours to the states.
std::string render_report(const Signals& signals, const std::vector<AlertStatus>& statuses,
                          bool color);

// Pure: only the verdicts and the result line (what --from-daemon can show).
std::string render_verdicts(const std::vector<AlertStatus>& statuses, bool color);

// Pure: parses the daemon's /alerts JSON back into statuses.
Result<std::vector<AlertStatus>> parse_alerts_json(const std::string& json);

// 0 ok, 1 warning, 2 critical.
int exit_code(const std::vector<AlertStatus>& statuses);

// Runs the command; returns the process exit code.
int run_diagnose(const Flags& flags, const Config& config);

}  // namespace mcb
