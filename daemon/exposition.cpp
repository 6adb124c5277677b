#include "daemon/exposition.hpp"

#include <algorithm>

#include <prometheus/text_serializer.h>

#include "daemon/gzip.hpp"

namespace mcb {

void Exposition::set_sources(std::vector<std::shared_ptr<const prometheus::Collectable>> sources) {
  sources_ = std::move(sources);
  invalidate();
}

void Exposition::invalidate() {
  text_valid_ = false;
  gzip_valid_ = false;
}

const std::string& Exposition::text() {
  if (!text_valid_) {
    std::vector<prometheus::MetricFamily> all = registry_.Collect();
    for (const auto& source : sources_) {
      auto families = source->Collect();
      std::move(families.begin(), families.end(), std::back_inserter(all));
    }
    text_ = render_families(std::move(all));
    text_valid_ = true;
  }
  return text_;
}

const std::string& Exposition::gzip() {
  if (!gzip_valid_ || !text_valid_) {
    gzip_ = gzip_compress(text());
    gzip_valid_ = true;
  }
  return gzip_;
}

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
