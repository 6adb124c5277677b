#pragma once
// Where the shipped Prometheus rules and Grafana dashboard live in the source tree, and what the
// monitoring tests need to read them.

#include <string>

#include "tests/support/daemon.hpp"

namespace mcb::test {

// The base of every runbook_url annotation: the README as the package installs it.
inline const std::string kRunbookBase = "file:///usr/share/doc/mcbacklogd/README.md";

inline std::string rules_dir() { return source_dir() + "/packaging/prometheus"; }
inline std::string dashboard_path() { return source_dir() + "/packaging/grafana/mcbacklogd.json"; }

}  // namespace mcb::test
