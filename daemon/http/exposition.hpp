#pragma once
// Exposition: turns the snapshots of every source into the /metrics body, once per sample.
//
// Sources are prometheus::Collectable objects (collectors, the scheduler, process metrics) plus a
// prometheus::Registry for long-lived instruments (build info, histograms). text() renders them
// in the Prometheus text format, sorted by family name, and caches the result until the next
// invalidate(), so a scrape costs a copy of a string however slow a target is; gzip() caches the
// compressed body the same way, computed on the first scrape that asks for it.
// A rendering gives the heap pages its transient families used back to the kernel (malloc_trim),
// so resident memory does not stay at the peak of the largest scrape.
//
// Loop thread only; not thread-safe.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/registry.h>

namespace mcb {

class Exposition {
 public:
  Exposition() = default;

  prometheus::Registry& registry() { return registry_; }

  // Runs before each rendering: for the daemon's own process metrics, read when someone scrapes
  // rather than every sample (reading /proc/self costs microseconds and cannot stall).
  void on_render(std::function<void()> hook) { on_render_ = std::move(hook); }

  // Replaces the per-sample sources (on start and on reload).
  void set_sources(std::vector<std::shared_ptr<const prometheus::Collectable>> sources);

  // A new sample is complete: the next text() renders again.
  void invalidate();

  const std::string& text();
  const std::string& gzip();

 private:
  void render();  // text_ from the sources, without giving the heap back

  prometheus::Registry registry_;
  std::function<void()> on_render_;
  std::vector<std::shared_ptr<const prometheus::Collectable>> sources_;
  std::string text_;
  std::string gzip_;
  bool text_valid_ = false;
  bool gzip_valid_ = false;
};

}  // namespace mcb
