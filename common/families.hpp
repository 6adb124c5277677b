#pragma once
// Small builders for prometheus::MetricFamily, so collectors turn their plain sample structs into
// families in a few declarative lines, and the one serializer to the text format. Pure;
// thread-safe.

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>

namespace mcb {

using Families = std::vector<prometheus::MetricFamily>;
using Labels = std::vector<prometheus::ClientMetric::Label>;

class FamilyBuilder {
 public:
  FamilyBuilder(std::string name, std::string help, prometheus::MetricType type) {
    f_.name = std::move(name);
    f_.help = std::move(help);
    f_.type = type;
  }

  // Adds one series; the value goes to the field matching the family type.
  FamilyBuilder& add(double value, Labels labels = {}) {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    switch (f_.type) {
      case prometheus::MetricType::Counter:
        m.counter.value = value;
        break;
      case prometheus::MetricType::Gauge:
        m.gauge.value = value;
        break;
      default:
        m.untyped.value = value;
        break;
    }
    f_.metric.push_back(std::move(m));
    return *this;
  }

  bool empty() const { return f_.metric.empty(); }

  // Moves the family into `out` unless it has no series (an empty family says nothing and
  // confuses some parsers). The builder is spent afterwards.
  void into(Families& out) {
    if (!f_.metric.empty()) out.push_back(std::move(f_));
  }

 private:
  prometheus::MetricFamily f_;
};

inline FamilyBuilder counter(std::string name, std::string help) {
  return {std::move(name), std::move(help), prometheus::MetricType::Counter};
}
inline FamilyBuilder gauge(std::string name, std::string help) {
  return {std::move(name), std::move(help), prometheus::MetricType::Gauge};
}

// Adds the label `name`="`value`" to every series of `families`.
void add_label(Families& families, const std::string& name, const std::string& value);

// Adds the label `name` to each series whose label `key` has a value found in `values`, with the
// value it maps to; other series are left as they are.
void add_label_by(Families& families, std::string_view key,
                  const std::map<std::string, std::string, std::less<>>& values,
                  const std::string& name);

// Pure: sorts families by name, merges families that share a name, drops empty ones and
// serializes them in the text format (version 0.0.4). The text is valid UTF-8 whatever the label
// values and help hold: bytes that are not UTF-8 become U+FFFD.
std::string render_families(std::vector<prometheus::MetricFamily> families);

}  // namespace mcb
