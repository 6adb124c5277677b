#include "daemon/alerts/alerts_json.hpp"

#include <algorithm>
#include <ctime>

#include <nlohmann/json.hpp>

#include "common/text.hpp"

namespace mcb {
namespace {

using nlohmann::json;

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

json number_or_null(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) return nullptr;
  return *v;
}

// A string of the peer's, as diagnose may print it: the daemon's own text (printable UTF-8) as it
// is, anything else escaped whole, so that another program answering at the daemon's address
// cannot steer the terminal.
std::string printable(std::string s) { return printable_or_escaped(std::move(s)); }

// The parser's message quotes the bytes it stopped at: escaped.
std::string reason(const std::exception& e) { return escape_untrusted(e.what(), 200); }

}  // namespace

std::string alerts_json(const std::vector<AlertStatus>& statuses) {
  json alerts = json::array();
  for (const AlertStatus& a : statuses) {
    json labels = json::object();
    for (const auto& [name, value] : a.labels) labels[name] = value;
    // The subject: the first label (target or device), unless only a network namespace names it.
    const bool subject = !a.labels.empty() && a.labels.front().first != "netns";
    const std::optional<Verdict>& v = a.verdict;
    alerts.push_back(json{
        {"name", a.name},
        {"state", level_name(a.state)},
        {"condition", level_name(a.condition)},
        {"target", subject ? json(a.labels.front().second) : json(nullptr)},
        {"labels", std::move(labels)},
        {"since", rfc3339(a.since)},
        {"active_since", a.active_since ? json(rfc3339(*a.active_since)) : json(nullptr)},
        {"value", v ? number_or_null(v->value) : json(nullptr)},
        {"threshold", v ? number_or_null(v->threshold) : json(nullptr)},
        {"cause", a.cause},
        {"evidence", v ? v->evidence : "no data this cycle"},
        {"remediation", a.remediation},
    });
  }
  // Invalid UTF-8 in a name (a target name from the configuration) becomes U+FFFD, never a
  // body that is not JSON.
  return json{{"alerts", std::move(alerts)}}.dump(-1, ' ', false, json::error_handler_t::replace) +
         "\n";
}

Result<std::vector<AlertStatus>> parse_alerts_json(std::string_view text) {
  if (text.size() > kMaxAlertsJsonBytes) {
    return fail("the /alerts body is larger than " + std::to_string(kMaxAlertsJsonBytes) +
                " bytes");
  }
  json tree;
  try {
    tree = json::parse(text, [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxAlertsJsonDepth) {
        throw std::length_error("nested deeper than " + std::to_string(kMaxAlertsJsonDepth) +
                                " levels");
      }
      return true;
    });
  } catch (const std::exception& e) {
    return fail("not the /alerts format: " + reason(e));
  }
  std::vector<AlertStatus> out;
  std::string field;
  try {
    field = "alerts";
    for (const json& a : tree.at("alerts")) {
      AlertStatus s;
      field = "name";
      const auto raw_name = a.at("name").get<std::string>();
      s.name = printable(raw_name);
      field = "state";
      const auto state = parse_level(a.at("state").get<std::string>());
      field = "condition";
      const auto condition = parse_level(a.value("condition", std::string("ok")));
      if (!state || !condition) {
        return fail("not the /alerts format: unknown level in " + quote_untrusted(raw_name));
      }
      s.state = *state;
      s.condition = std::max(*condition, *state);
      field = "labels";
      for (const auto& [name, value] : a.at("labels").items()) {
        s.labels.emplace_back(printable(name), printable(value.get<std::string>()));
      }
      // A JSON object has no order: the subject's label first, the network namespace's after, as
      // the evaluator makes them.
      std::stable_partition(s.labels.begin(), s.labels.end(),
                            [](const auto& label) { return label.first != "netns"; });
      field = "since";
      if (auto t = parse_rfc3339(a.at("since").get<std::string>())) s.since = *t;
      field = "active_since";
      if (a.contains("active_since") && a.at("active_since").is_string()) {
        s.active_since = parse_rfc3339(a.at("active_since").get<std::string>());
      }
      field = "cause";
      s.cause = printable(a.at("cause").get<std::string>());
      field = "remediation";
      s.remediation = printable(a.at("remediation").get<std::string>());
      Verdict v;
      v.level = s.condition;
      field = "evidence";
      v.evidence = printable(a.at("evidence").get<std::string>());
      field = "value";
      if (a.contains("value") && a.at("value").is_number()) v.value = a.at("value").get<double>();
      field = "threshold";
      if (a.contains("threshold") && a.at("threshold").is_number()) {
        v.threshold = a.at("threshold").get<double>();
      }
      s.verdict = std::move(v);
      out.push_back(std::move(s));
    }
  } catch (const json::exception& e) {
    return fail("not the /alerts format: field \"" + field + "\": " + reason(e));
  }
  return out;
}

}  // namespace mcb
