#include "config/yaml_walker.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <sstream>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

#include "common/files.hpp"
#include "config/bounded_regex.hpp"
#include "config/limits.hpp"

namespace mcb {

namespace {

constexpr std::string_view kByteOrderMark = "\xef\xbb\xbf";

// The bytes of the first character YAML does not allow in a stream (YAML 1.2, 5.1 c-printable):
// a C0 control but tab, line feed and carriage return; DEL; a C1 control but NEL (U+0085); U+FFFE
// and U+FFFF. yaml-cpp 0.7 reads them, even an escape sequence of a terminal in a quoted string.
// Bytes that are not UTF-8 are left to the checks of the values that hold them.
std::optional<std::string_view> first_forbidden_character(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const auto next = [&](std::size_t k) {
      return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0u;
    };
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return text.substr(i, 1);
    if (c == 0xc2 && next(1) >= 0x80 && next(1) <= 0x9f && next(1) != 0x85) {
      return text.substr(i, 2);
    }
    if (c == 0xef && next(1) == 0xbf && (next(2) == 0xbe || next(2) == 0xbf)) {
      return text.substr(i, 3);
    }
  }
  return std::nullopt;
}

// The mark of a byte offset of `text`, lines and columns counted from 0 as yaml-cpp counts them.
YAML::Mark mark_at(std::string_view text, std::size_t offset) {
  YAML::Mark mark;
  mark.pos = static_cast<int>(offset);
  const std::string_view before = text.substr(0, offset);
  mark.line = static_cast<int>(std::count(before.begin(), before.end(), '\n'));
  const auto line_start = before.rfind('\n');
  mark.column =
      static_cast<int>(line_start == std::string_view::npos ? offset : offset - line_start - 1);
  return mark;
}

// True if the quoted scalar whose opening quote is at `open` is closed before the end of `text`:
// in double quotes a backslash escapes the next character, in single quotes '' is a quote.
bool quoted_scalar_closed(std::string_view text, std::size_t open) {
  const char quote = text[open];
  for (std::size_t i = open + 1; i < text.size(); ++i) {
    if (quote == '"' && text[i] == '\\') {
      ++i;
    } else if (text[i] == quote) {
      if (quote == '"' || i + 1 == text.size() || text[i + 1] != '\'') return true;
      ++i;
    }
  }
  return false;
}

// What yaml-cpp 0.7 accepts that YAML does not, found from the parser's events: a quoted scalar
// never closed (yaml-cpp ends it at the end of the file, so the rest of the file becomes its
// value and every key after it is silently lost) and a second document (YAML::Load reads the
// first only).
class StructureCheck : public YAML::EventHandler {
 public:
  // `text`: the file after its byte order mark, if any, where yaml-cpp's positions count from.
  StructureCheck(YamlWalker& walker, std::string_view text) : walker_(walker), text_(text) {}

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ == 2) {
      walker_.error(mark, "",
                    "a second YAML document starts here; a configuration file holds one (remove "
                    "the \"---\" or \"...\" line before it)");
    }
  }
  void OnScalar(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                const std::string& /*value*/) override {
    const auto open = static_cast<std::size_t>(mark.pos);
    if (open >= text_.size() || (text_[open] != '"' && text_[open] != '\'')) return;
    if (!quoted_scalar_closed(text_, open)) {
      const std::string quote = text_[open] == '"' ? "double" : "single";
      walker_.error(mark, "",
                    "this " + quote + "-quoted string is never closed: it would run to the end " +
                        "of the file and take every key after it; add the closing " +
                        (text_[open] == '"' ? "\"" : "'"));
    }
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  YamlWalker& walker_;
  std::string_view text_;
  int documents_ = 0;
};

}  // namespace

Result<std::string> read_config_file(const std::string& path) {
  auto text = read_regular_file(path, kMaxConfigFileBytes, "a configuration file");
  if (!text) return fail(escape_untrusted(path, kMaxPathBytes) + ": " + text.error().message);
  return text;
}

Status YamlWalker::parse(std::string_view text,
                         const std::function<void(const YAML::Node&)>& walk) {
  // yaml-cpp counts lines, columns and positions after a byte order mark.
  std::string_view body = text;
  if (body.starts_with(kByteOrderMark)) body.remove_prefix(kByteOrderMark.size());
  if (const auto forbidden = first_forbidden_character(body)) {
    error(mark_at(body, static_cast<std::size_t>(forbidden->data() - body.data())), "",
          "character " + quote_untrusted(*forbidden) +
              " is not allowed in YAML (control characters but tab and line breaks); write it "
              "as an escape in a double-quoted string, or save the file as UTF-8 text");
    return fail(errors_.front());
  }
  // The structure is checked first: a quote never closed also ends in a syntax error further on
  // (a flow mapping's '}' swallowed), and the quote is what to fix.
  const std::string copy(text);
  YAML::Node root;
  try {
    std::istringstream events(copy);
    YAML::Parser parser(events);
    StructureCheck check(*this, body);
    while (errors_.empty() && parser.HandleNextDocument(check)) {
    }
    if (errors_.empty()) root = YAML::Load(copy);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp gives it the message of a file it could not open ("bad file").
    if (errors_.empty()) {
      error(e.mark, "",
            "YAML nested " + std::to_string(e.depth()) +
                " levels deep, more than yaml-cpp reads; a configuration needs a few");
    }
  } catch (const YAML::ParserException& e) {
    if (errors_.empty()) error(e.mark, "", "YAML syntax error: " + escape_untrusted(e.msg));
  }
  if (!errors_.empty()) return fail(errors_.front());
  bool stopped = false;
  try {
    walk(root);
  } catch (const TooManyErrors&) {
    stopped = true;
  } catch (const YAML::Exception& e) {
    try {
      error(e.mark, "", escape_untrusted(e.msg));
    } catch (const TooManyErrors&) {
      stopped = true;
    }
  }
  if (errors_.empty()) return ok_status();
  std::string all;
  for (const std::string& e : errors_) all += (all.empty() ? "" : "\n") + e;
  if (stopped) {
    all += "\n" + shown_file_ + ": more errors not shown; at most " +
           std::to_string(kMaxReportedErrors) + " are reported";
  }
  return fail(all);
}

void YamlWalker::error(const YAML::Mark& mark, const std::string& path, const std::string& reason) {
  if (errors_.size() >= kMaxReportedErrors) throw TooManyErrors{};
  errors_.push_back(at(mark, path, reason));
}

void YamlWalker::warning(const YAML::Mark& mark, const std::string& path,
                         const std::string& reason) {
  if (warnings_.size() < kMaxReportedErrors) warnings_.push_back(at(mark, path, reason));
}

std::string YamlWalker::at(const YAML::Mark& mark, const std::string& path,
                           const std::string& reason) const {
  return origin(mark, path) + ": " + reason;
}

std::string YamlWalker::origin(const YAML::Mark& mark, const std::string& path) const {
  std::ostringstream out;
  out << shown_file_ << ':' << (mark.line + 1) << ':' << (mark.column + 1);
  if (!path.empty()) out << ": " << escape_untrusted(path, 2 * kQuoteMax);
  return out.str();
}

void YamlWalker::mapping(const YAML::Node& node, const std::string& path, const Table& table) {
  entries(node, path, [&](const YAML::Node& key, const YAML::Node& value, const std::string& p) {
    auto it = std::find_if(table.begin(), table.end(),
                           [&](const auto& entry) { return entry.first == key.Scalar(); });
    if (it == table.end() && key.Scalar() == "<<") {
      error(key.Mark(), p,
            "merge keys (<<) are not supported by the YAML library mcbacklogd uses (yaml-cpp "
            "0.7); write the keys out, or repeat a whole mapping with an alias (*name)");
      return;
    }
    if (it == table.end()) {
      std::string known;
      for (const auto& entry : table)
        known += (known.empty() ? "" : ", ") + std::string(entry.first);
      error(key.Mark(), p, "unknown key (known here: " + known + ")");
      return;
    }
    it->second(value, p);
  });
}

void YamlWalker::entries(
    const YAML::Node& node, const std::string& path,
    const std::function<void(const YAML::Node&, const YAML::Node&, const std::string&)>& each) {
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    error(node.Mark(), path, "expected a mapping of keys, got " + kind(node));
    return;
  }
  if (!untagged(node, path)) return;
  std::set<std::string> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      error(kv.first.Mark(), path, "keys must be plain words");
      continue;
    }
    if (!untagged(kv.first, path)) continue;
    if (!is_valid_utf8(kv.first.Scalar())) {
      error(kv.first.Mark(), path, "key " + quote_untrusted(kv.first.Scalar()) + " is not UTF-8");
      continue;
    }
    const std::string key = kv.first.Scalar();
    const std::string child = path.empty() ? key : path + "." + key;
    if (!seen.insert(key).second) {
      error(kv.first.Mark(), child, "key given twice");
      continue;
    }
    each(kv.first, kv.second, child);
  }
}

bool YamlWalker::untagged(const YAML::Node& node, const std::string& path) {
  // "?" a plain scalar or a collection, "!" a quoted one; !!str on a scalar and !!map on a
  // mapping say what it is read as. Any other tag (!!binary, !!int, !custom) would be ignored:
  // the value read as written.
  const std::string& tag = node.Tag();
  if (tag.empty() || tag == "?" || tag == "!" ||
      tag == (node.IsMap() ? "tag:yaml.org,2002:map" : "tag:yaml.org,2002:str")) {
    return true;
  }
  error(node.Mark(), path,
        "the tag " + quote_untrusted(tag) +
            " is not read (values are read as written); remove it and write the value itself");
  return false;
}

bool YamlWalker::scalar(const YAML::Node& node, const std::string& path, const char* what) {
  if (!node.IsScalar()) {
    error(node.Mark(), path, std::string("expected ") + what + ", got " + kind(node));
    return false;
  }
  if (!untagged(node, path)) return false;
  if (!is_valid_utf8(node.Scalar())) {
    error(node.Mark(), path, quote_untrusted(node.Scalar()) + " is not UTF-8");
    return false;
  }
  return true;
}

void YamlWalker::boolean(const YAML::Node& node, const std::string& path, bool& out) {
  if (!scalar(node, path, "true or false")) return;
  const std::string& s = node.Scalar();
  if (s == "true") {
    out = true;
  } else if (s == "false") {
    out = false;
  } else {
    error(node.Mark(), path, "expected true or false, got " + quote_untrusted(s));
  }
}

void YamlWalker::text(const YAML::Node& node, const std::string& path, std::string& out) {
  if (scalar(node, path, "a string")) out = node.Scalar();
}

void YamlWalker::name(const YAML::Node& node, const std::string& path, std::string& out) {
  if (!scalar(node, path, "a name")) return;
  const std::string& s = node.Scalar();
  if (s.empty()) {
    error(node.Mark(), path, "a name must not be empty");
  } else if (s.size() > kMaxNameBytes) {
    error(node.Mark(), path,
          "a name of " + std::to_string(s.size()) + " bytes; at most " +
              std::to_string(kMaxNameBytes) + " are allowed");
  } else if (!is_printable_utf8(s)) {
    error(node.Mark(), path,
          quote_untrusted(s) +
              ": a name must not hold control characters nor characters that "
              "reorder text (bidirectional overrides)");
  } else {
    out = s;
  }
}

void YamlWalker::directory(const YAML::Node& node, const std::string& path, std::string& out,
                           std::string* origin_out) {
  if (!scalar(node, path, "a directory name")) return;
  if (node.Scalar().size() > kMaxPathBytes) {
    error(node.Mark(), path,
          "a name of " + std::to_string(node.Scalar().size()) + " bytes; at most " +
              std::to_string(kMaxPathBytes) + " are allowed");
    return;
  }
  // Relative to what? The daemon's working directory is the service manager's choice.
  if (node.Scalar().empty() || node.Scalar().front() != '/') {
    error(node.Mark(), path,
          "a directory needs an absolute path, such as \"/host/proc\", not " +
              quote_untrusted(node.Scalar()));
    return;
  }
  out = node.Scalar();
  if (origin_out != nullptr) *origin_out = origin(node.Mark(), path);
}

void YamlWalker::file_path(const YAML::Node& node, const std::string& path, std::string& out,
                           std::string* origin_out) {
  if (!scalar(node, path, "a file name")) return;
  if (node.Scalar().size() > kMaxPathBytes) {
    error(node.Mark(), path,
          "a file name of " + std::to_string(node.Scalar().size()) + " bytes; at most " +
              std::to_string(kMaxPathBytes) + " are allowed");
    return;
  }
  out = node.Scalar();
  const auto slash = file_.rfind('/');
  if (!out.empty() && out.front() != '/' && slash != std::string::npos) {
    out.insert(0, file_, 0, slash + 1);
  }
  if (origin_out != nullptr) *origin_out = origin(node.Mark(), path);
}

void YamlWalker::word(const YAML::Node& node, const std::string& path, std::string& out,
                      std::span<const std::string_view> choices) {
  if (!scalar(node, path, "a string")) return;
  std::string list;
  for (std::string_view c : choices) {
    if (node.Scalar() == c) {
      out = node.Scalar();
      return;
    }
    list += (list.empty() ? "" : ", ") + std::string(c);
  }
  error(node.Mark(), path, quote_untrusted(node.Scalar()) + " is not one of: " + list);
}

void YamlWalker::number(const YAML::Node& node, const std::string& path, double& out, double min,
                        double max) {
  if (!scalar(node, path, "a number")) return;
  const std::string& s = node.Scalar();
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ptr != s.data() + s.size() || ec != std::errc()) {
    error(node.Mark(), path, "expected a number, got " + quote_untrusted(s));
  } else if (!std::isfinite(v)) {
    // from_chars reads "nan" and "inf": a threshold of nan compares false with everything and
    // would silently switch its alert off.
    error(node.Mark(), path, "expected a finite number, got " + quote_untrusted(s));
  } else if (v < min || v > max) {
    std::ostringstream range;
    range << escape_untrusted(s) << " is out of range (" << min << " to " << max << ")";
    error(node.Mark(), path, range.str());
  } else {
    out = v;
  }
}

void YamlWalker::duration(const YAML::Node& node, const std::string& path, Duration& out,
                          Duration min, Duration max) {
  if (!scalar(node, path, "a duration such as \"1s\"")) return;
  auto d = parse_duration(node.Scalar());
  if (!d) {
    error(node.Mark(), path, d.error().message);
  } else if (*d < min || *d > max) {
    error(node.Mark(), path,
          format_duration(*d) + " is out of range (" +
              (min.count() == 0 ? "0" : format_duration(min)) + " to " + format_duration(max) +
              ")");
  } else {
    out = *d;
  }
}

void YamlWalker::regex(const YAML::Node& node, const std::string& path, std::string& out) {
  if (!scalar(node, path, "a regular expression")) return;
  auto compiled = compile_bounded_regex(node.Scalar());
  if (compiled) {
    out = node.Scalar();
  } else {
    error(node.Mark(), path, compiled.error().message);
  }
}

std::string YamlWalker::kind(const YAML::Node& node) {
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  if (node.IsNull()) return "nothing";
  return quote_untrusted(node.Scalar());
}

}  // namespace mcb
