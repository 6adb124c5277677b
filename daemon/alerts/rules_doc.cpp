#include "daemon/alerts/rules_doc.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace mcb {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view subject_name(Subject s) {
  switch (s) {
    case Subject::kHost:
      return "host";
    case Subject::kTarget:
      return "target";
    case Subject::kDevice:
      return "NIC";
  }
  return "";
}

}  // namespace

std::string format_level(double v) { return format_number(v); }

std::string extra_levels_text(const Rule& rule, const AlertThreshold& levels) {
  std::string out;
  for (const ThresholdKey& k : rule.extra_keys) {
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", k.key, format_level(levels.*k.field));
  }
  return out;
}

std::string rules_markdown() {
  std::string out =
      "| alert | cause | judged per | value | warning | critical | clear | for | window | other "
      "levels |\n"
      "|-------|-------|------------|-------|---------|----------|-------|-----|--------|-------"
      "-------|\n";
  for (const Rule& r : rules()) {
    const AlertThreshold& d = r.defaults;
    const std::string extra = extra_levels_text(r, d);
    out += fmt::format("| [{}](#alert-{}) | {} | {} | {}{} | {} | {} | {} | {} | {} | {} |\n",
                       r.name, lower(r.name), r.cause, subject_name(r.subject), r.unit,
                       r.lower_is_worse ? " (lower is worse)" : "", format_level(d.warning),
                       format_level(d.critical), format_level(d.clear), format_duration(d.for_),
                       format_duration(d.window), extra.empty() ? "—" : extra);
  }
  for (const Rule& r : rules()) {
    out += fmt::format(
        "\n### Alert: {}\n\n"
        "{}. {}\n\n"
        "- **How it is decided.** {}\n"
        "- **When it fires.** {}\n"
        "- **Check first.** {}\n"
        "- **Fix.** {}\n",
        r.name, r.cause, r.meaning, r.decided, r.severity, r.check_first, r.remediation);
  }
  return out;
}

std::string readme_alert_table() {
  std::string out = "| alert | cause | what it means |\n|-------|-------|---------------|\n";
  for (const Rule& r : rules()) {
    out += fmt::format("| [{}](docs/alerts.md#alert-{}) | {} | {} |\n", r.name, lower(r.name),
                       r.cause, r.meaning);
  }
  return out;
}

}  // namespace mcb
