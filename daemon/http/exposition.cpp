#include "daemon/http/exposition.hpp"

#include <malloc.h>

#include "common/families.hpp"
#include "daemon/http/gzip.hpp"

namespace mcb {

namespace {

// The families a rendering frees are the largest transient allocation of a cycle, hundreds of
// small blocks: without this the heap keeps their pages (about 0.3 MiB) until the daemon exits.
void give_back_heap() { malloc_trim(0); }

}  // namespace

void Exposition::set_sources(std::vector<std::shared_ptr<const prometheus::Collectable>> sources) {
  sources_ = std::move(sources);
  invalidate();
}

void Exposition::invalidate() {
  text_valid_ = false;
  gzip_valid_ = false;
}

void Exposition::render() {
  if (on_render_) on_render_();
  std::vector<prometheus::MetricFamily> all = registry_.Collect();
  for (const auto& source : sources_) {
    auto families = source->Collect();
    std::move(families.begin(), families.end(), std::back_inserter(all));
  }
  text_ = render_families(std::move(all));
  text_valid_ = true;
}

const std::string& Exposition::text() {
  if (!text_valid_) {
    render();
    give_back_heap();
  }
  return text_;
}

const std::string& Exposition::gzip() {
  if (!gzip_valid_ || !text_valid_) {
    if (!text_valid_) render();
    gzip_ = gzip_compress(text_);
    gzip_valid_ = true;
    give_back_heap();  // the families' and deflate's tables, once a scrape
  }
  return gzip_;
}

}  // namespace mcb
