#include "common/families.hpp"

#include <algorithm>

#include <prometheus/text_serializer.h>

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
  return prometheus::TextSerializer().Serialize(merged);
}

}  // namespace mcb
