#include "daemon/alerts/runbooks.hpp"

#include <ctime>

#include <fmt/format.h>

#include "common/text.hpp"
#include "daemon/alerts/rules_doc.hpp"

namespace mcb {
namespace {

constexpr std::string_view kStyle =
    "body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em;line-height:1.4}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;"
    "vertical-align:top;text-align:left}.ok{color:#1a7f37}.warning{color:#9a6700}"
    ".critical{color:#cf222e;font-weight:bold}footer{color:#666;margin-top:2em}";

std::string utc(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string level_html(Level l) {
  const std::string_view name = level_name(l);
  return fmt::format("<span class=\"{}\">{}</span>", name, name);
}

std::string page(std::string_view title, const std::string& body, const RunbookContext& c) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>{} - mcbacklogd runbook</title><style>{}</style></head>\n<body>\n{}"
      "<footer>{} &middot; {}</footer>\n</body></html>\n",
      html_escape(title), kStyle, body, html_escape(c.footer), utc(c.now));
}

// A text of the rule table as HTML: escaped, its `code` spans as <code>.
std::string prose(std::string_view text) {
  std::string out;
  bool code = false;
  for (const char c : html_escape(text)) {
    if (c == '`') {
      out += code ? "</code>" : "<code>";
      code = !code;
    } else {
      out += c;
    }
  }
  if (code) out += "</code>";
  return out;
}

std::string subject_of(const AlertStatus& a) {
  if (a.labels.empty()) return "this host";
  std::string s;
  for (const auto& [name, value] : a.labels) s += (s.empty() ? "" : ", ") + name + " " + value;
  return s;
}

std::string value_text(const std::optional<Verdict>& v) {
  if (!v) return "no data";
  if (!v->value) return "not measured";
  return fmt::format("{} (level {})", format_number(*v->value), format_number(v->threshold));
}

}  // namespace

std::string runbook_index_html(const std::vector<AlertStatus>& statuses,
                               const RunbookContext& context) {
  std::string rows;
  for (const Rule& r : rules()) {
    Level condition = Level::kOk;
    Level state = Level::kOk;
    int subjects = 0;
    for (const AlertStatus& a : statuses) {
      if (a.name != r.name) continue;
      ++subjects;
      condition = worse(condition, a.condition);
      state = worse(state, a.state);
    }
    rows += fmt::format(
        "<tr><td><a href=\"/runbooks/{0}\">{0}</a></td><td>{1}</td><td>{2}</td><td>{3}</td>"
        "<td>{4}</td></tr>\n",
        r.name, prose(r.cause), level_html(condition), level_html(state), subjects);
  }
  return page("Runbooks",
              "<h1>mcbacklogd runbooks</h1>\n<p>Every alert of this daemon, with its worst "
              "condition (what holds now) and state (what fired) on this host. "
              "<a href=\"/alerts\">/alerts</a> has the same as JSON.</p>\n"
              "<table><tr><th>alert</th><th>cause</th><th>condition</th><th>state</th>"
              "<th>subjects</th></tr>\n" +
                  rows + "</table>\n",
              context);
}

std::optional<std::string> runbook_html(std::string_view name,
                                        const std::vector<AlertStatus>& statuses,
                                        const Evaluator& evaluator, const RunbookContext& context) {
  const auto alert = find_alert(name);
  if (!alert) return std::nullopt;
  const Rule& r = rule(*alert);
  const AlertThreshold& th = evaluator.threshold(*alert);

  std::string live;
  for (const AlertStatus& a : statuses) {
    if (a.name != r.name) continue;
    live += fmt::format(
        "<tr><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "</tr>\n",
        html_escape(subject_of(a)), level_html(a.condition), a.pending() ? " (pending)" : "",
        level_html(a.state), a.active_since ? utc(*a.active_since) : "&mdash;",
        html_escape(value_text(a.verdict)),
        html_escape(a.verdict ? a.verdict->evidence : "no data this cycle"),
        html_escape(a.remediation));
  }
  if (live.empty()) live = "<tr><td colspan=\"7\">no subject on this host</td></tr>\n";

  const std::string extra = extra_levels_text(r, th);
  const std::string levels = fmt::format(
      "<table><tr><th>value</th><th>warning</th><th>critical</th><th>clear</th><th>for</th>"
      "<th>window</th><th>other levels</th></tr>\n<tr><td>{}{}</td><td>{}</td><td>{}</td>"
      "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>\n",
      html_escape(r.unit), r.lower_is_worse ? " (lower is worse)" : "", format_level(th.warning),
      format_level(th.critical), format_level(th.clear), format_duration(th.for_),
      format_duration(th.window), extra.empty() ? "&mdash;" : html_escape(extra));

  const std::string body = fmt::format(
      "<p><a href=\"/runbooks/\">All runbooks</a></p>\n<h1>{0}</h1>\n<p>{1}</p>\n"
      "<h2>On this host now</h2>\n<table><tr><th>subject</th><th>condition</th><th>state</th>"
      "<th>holding since</th><th>value</th><th>evidence</th><th>fix</th></tr>\n{2}</table>\n"
      "<h2>What it means</h2>\n<p>{3}</p>\n"
      "<h2>How it is decided</h2>\n<p>{4}</p>\n<p>Levels in force here:</p>\n{5}"
      "<h2>When it fires</h2>\n<p>{6}</p>\n"
      "<h2>Check first</h2>\n<p>{7}</p>\n"
      "<h2>Fix</h2>\n<p>{8}</p>\n",
      r.name, prose(r.cause), live, prose(r.meaning), prose(r.decided), levels, prose(r.severity),
      prose(r.check_first), prose(r.remediation));
  return page(r.name, body, context);
}

}  // namespace mcb
