#include "common/families.hpp"

#include <algorithm>

#include <prometheus/text_serializer.h>

#include "common/text.hpp"

namespace mcb {

std::string render_families(std::vector<prometheus::MetricFamily> families) {
  std::stable_sort(families.begin(), families.end(),
                   [](const auto& a, const auto& b) { return a.name < b.name; });
  std::vector<prometheus::MetricFamily> merged;
  merged.reserve(families.size());
  for (auto& f : families) {
    if (f.metric.empty()) continue;
    if (!merged.empty() && merged.back().name == f.name) {
      auto& into = merged.back().metric;
      std::move(f.metric.begin(), f.metric.end(), std::back_inserter(into));
    } else {
      merged.push_back(std::move(f));
    }
  }
  // Label values name what the daemon was told or found (targets, devices, versions a peer
  // reports): the text format is UTF-8, and one invalid byte would fail a scrape of every series.
  for (auto& f : merged) {
    if (!is_valid_utf8(f.help)) f.help = to_valid_utf8(f.help);
    for (auto& m : f.metric) {
      for (auto& label : m.label) {
        if (!is_valid_utf8(label.value)) label.value = to_valid_utf8(label.value);
      }
    }
  }
  return prometheus::TextSerializer().Serialize(merged);
}

void add_label(Families& families, const std::string& name, const std::string& value) {
  for (prometheus::MetricFamily& f : families) {
    for (prometheus::ClientMetric& m : f.metric) m.label.push_back({name, value});
  }
}

void add_label_by(Families& families, std::string_view key,
                  const std::map<std::string, std::string, std::less<>>& values,
                  const std::string& name) {
  for (prometheus::MetricFamily& f : families) {
    for (prometheus::ClientMetric& m : f.metric) {
      for (const auto& l : m.label) {
        if (l.name != key) continue;
        const auto it = values.find(l.value);
        if (it != values.end()) m.label.push_back({name, it->second});
        break;
      }
    }
  }
}

}  // namespace mcb
