#pragma once
// Where the shipped Prometheus rules and Grafana dashboard live in the source tree, and what the
// monitoring tests need to read them.

#include <string>

#include "tests/support/daemon.hpp"

namespace mcb::test {

// The runbook_url of a memcached alert: the page of the daemon that raised it, unless the
// external label mcbacklogd_runbooks says where they are.
inline std::string runbook_url_template(const std::string& alert) {
  return "{{ with $externalLabels.mcbacklogd_runbooks }}{{ . }}{{ else }}http://{{ "
         "$labels.instance }}/runbooks{{ end }}/" +
         alert;
}
// The runbook_url of an alert about the daemon itself: a section of docs/operations.md.
inline std::string docs_url_template(const std::string& anchor) {
  return "{{ with $externalLabels.mcbacklogd_docs }}{{ . }}{{ else "
         "}}file:///usr/share/doc/mcbacklogd/docs{{ end }}/operations.md#" +
         anchor;
}

inline std::string rules_dir() { return source_dir() + "/packaging/prometheus"; }
inline std::string dashboard_path() { return source_dir() + "/packaging/grafana/mcbacklogd.json"; }
inline std::string fleet_dashboard_path() {
  return source_dir() + "/packaging/grafana/mcbacklogd-fleet.json";
}

}  // namespace mcb::test
