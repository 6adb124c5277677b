#include "tests/support/memcached_exporter_families.hpp"

#include <map>
#include <regex>
#include <sstream>

namespace mcb::test {
namespace {

const char* type_name(prometheus::MetricType type) {
  switch (type) {
    case prometheus::MetricType::Counter:
      return "counter";
    case prometheus::MetricType::Gauge:
      return "gauge";
    case prometheus::MetricType::Histogram:
      return "histogram";
    case prometheus::MetricType::Summary:
      return "summary";
    default:
      return "untyped";
  }
}

struct Shape {
  std::string type;
  std::set<std::string> labels;
};

std::string join(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return "{" + out + "}";
}

// The memcached_* families of a text format body: type from # TYPE, label names from the series.
std::map<std::string, Shape> shapes(std::string_view text) {
  std::map<std::string, Shape> out;
  static const std::regex kTypeLine(R"(# TYPE (memcached_\w+) (\w+))");
  static const std::regex kLabel(R"((\w+)=")");
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, kTypeLine)) {
      out[m[1]].type = m[2];
      continue;
    }
    if (line.rfind("memcached_", 0) != 0) continue;
    const auto brace = line.find('{');
    const std::string name = line.substr(0, std::min(brace, line.find(' ')));
    if (brace == std::string::npos) continue;
    const std::string labels = line.substr(brace, line.find('}') - brace);
    for (auto it = std::sregex_iterator(labels.begin(), labels.end(), kLabel);
         it != std::sregex_iterator(); ++it) {
      if ((*it)[1] != "target") out[name].labels.insert((*it)[1]);
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> exporter_differences(std::string_view metrics_text,
                                              const std::set<ExporterSource>& sources) {
  std::vector<std::string> out;
  const auto ours = shapes(metrics_text);
  std::set<std::string_view> theirs;
  for (const ExporterFamily& f : kMemcachedExporterFamilies) {
    theirs.insert(f.name);
    const auto it = ours.find(std::string(f.name));
    if (it == ours.end()) {
      if (sources.contains(f.source)) out.push_back("missing: " + std::string(f.name));
      continue;
    }
    if (it->second.type != type_name(f.type)) {
      out.push_back(std::string(f.name) + ": type " + it->second.type + ", memcached_exporter " +
                    type_name(f.type));
    }
    std::set<std::string> labels;
    for (std::string_view l : f.labels) {
      if (!l.empty()) labels.emplace(l);
    }
    if (it->second.labels != labels) {
      out.push_back(std::string(f.name) + ": labels " + join(it->second.labels) +
                    ", memcached_exporter " + join(labels));
    }
  }
  for (const auto& [name, shape] : ours) {
    if (!theirs.contains(name)) out.push_back("not memcached_exporter's: " + name);
  }
  return out;
}

std::vector<std::string> promtool_problems(std::string_view output) {
  std::set<std::string> expected;
  for (const ExporterFamily& f : kMemcachedExporterFamilies) {
    if (f.type == prometheus::MetricType::Counter && !f.name.ends_with("_total")) {
      expected.insert(std::string(f.name) + " counter metrics should have \"_total\" suffix");
    }
  }
  std::vector<std::string> out;
  std::istringstream in{std::string(output)};
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && !expected.contains(line)) out.push_back(line);
  }
  return out;
}

}  // namespace mcb::test
