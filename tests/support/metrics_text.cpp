#include "tests/support/metrics_text.hpp"

#include <cstdlib>
#include <sstream>

namespace mcb::test {

std::map<std::string, double> parse_metrics(std::string_view text) {
  std::map<std::string, double> out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    // The value follows the last space outside the label set.
    const auto brace = line.rfind('}');
    const auto space = line.find(' ', brace == std::string::npos ? 0 : brace);
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return out;
}

std::optional<double> metric_value(std::string_view text, const std::string& series) {
  const auto all = parse_metrics(text);
  const auto it = all.find(series);
  if (it == all.end()) return std::nullopt;
  return it->second;
}

std::string drop_families(std::string_view text, const std::vector<std::string>& prefixes) {
  std::istringstream in{std::string(text)};
  std::string line;
  std::string out;
  while (std::getline(in, line)) {
    std::string_view name = line;
    if (name.rfind("# HELP ", 0) == 0 || name.rfind("# TYPE ", 0) == 0) name.remove_prefix(7);
    bool drop = false;
    for (const auto& p : prefixes) drop = drop || name.rfind(p, 0) == 0;
    if (!drop) out += line + "\n";
  }
  return out;
}

}  // namespace mcb::test
