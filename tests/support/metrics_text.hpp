#pragma once
// Reading the Prometheus text format in tests: series as written ("name{a=\"b\"}") to value.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mcb::test {

// Every sample line; comments and blank lines skipped. Label order is kept as written.
std::map<std::string, double> parse_metrics(std::string_view text);

// The value of one series, e.g. value(text, "mcbacklog_somaxconn") or
// value(text, R"(mcbacklog_collector_success{collector="netstat"})").
std::optional<double> metric_value(std::string_view text, const std::string& series);

// Drops every line (samples and their HELP/TYPE) of the families whose name matches one of the
// prefixes: for golden comparisons without volatile series.
std::string drop_families(std::string_view text, const std::vector<std::string>& prefixes);

}  // namespace mcb::test
