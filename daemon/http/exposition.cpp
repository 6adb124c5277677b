#include "daemon/http/exposition.hpp"

#include "common/families.hpp"
#include "daemon/http/gzip.hpp"

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
    if (on_render_) on_render_();
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

}  // namespace mcb
