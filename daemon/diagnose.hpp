#pragma once
// `mcbacklogd diagnose`: the one-shot report for a person at a terminal, and a check for scripts
// (exit code 0 ok, 1 warning, 2 critical, 3 unknown: the Nagios convention).
//
// It runs the daemon's own collectors twice, `--wait` apart, evaluates them with the daemon's own
// rules, and prints each signal (from the same observation the rules read), each alert's verdict
// with its evidence, and the fix for what holds. Two samples are all the history it has, so an
// alert whose condition holds but whose `for` has not run out is named as PENDING, and the exit
// code follows the conditions. Exit 3 when a target could not be evaluated (stats failed in both
// samples and nothing else says what is wrong). Its own connections may be refused or time out
// when memcached is saturated: that is reported as evidence, never a crash.
//
// With --from-daemon it reads the alert states of a running daemon's /alerts instead (which has
// the persistent connection and the history), with a deadline on the whole exchange. Runs its own
// io_context on the calling thread.

#include <span>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/alerts/evaluator.hpp"
#include "daemon/alerts/observation.hpp"
#include "daemon/flags.hpp"

namespace mcb {

// How long --from-daemon waits for the whole exchange with the daemon.
inline constexpr Duration kFromDaemonTimeout = std::chrono::seconds(5);

// Pure: the signals section (what was measured), what the counters say about saturation before
// this run, the verdicts section (every alert, the fix for what holds), and the result line.
// `color` adds ANSI colours to the states.
std::string render_report(const Observation& observation, const std::vector<AlertStatus>& statuses,
                          bool color);
// The same over every network namespace's observation, the daemon's own first.
std::string render_report(std::span<const Observation> observations,
                          const std::vector<AlertStatus>& statuses, bool color);

// Pure: only the verdicts and the result line (what --from-daemon can show).
std::string render_verdicts(const std::vector<AlertStatus>& statuses, bool color,
                            int unknown_targets = 0);

// 0 ok, 1 warning, 2 critical from the worse of each alert's state and condition; 3 when
// `unknown_targets` > 0 and nothing is critical.
int exit_code(const std::vector<AlertStatus>& statuses, int unknown_targets = 0);

// Targets whose `stats` failed and that no alert judged critical: they could not be evaluated.
int unknown_targets(const Observation& observation, const std::vector<AlertStatus>& statuses);
int unknown_targets(std::span<const Observation> observations,
                    const std::vector<AlertStatus>& statuses);

// Runs the command; returns the process exit code.
int run_diagnose(const Flags& flags, const Config& config);

}  // namespace mcb
