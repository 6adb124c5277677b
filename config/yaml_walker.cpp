#include "config/yaml_walker.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "config/bounded_regex.hpp"
#include "config/limits.hpp"

namespace mcb {

Result<std::string> read_config_file(const std::string& path) {
  const std::string name = escape_untrusted(path, kMaxPathBytes);
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(name + ": cannot open: " + std::strerror(errno));
  // One byte past the limit tells a file that is too large from one that fits exactly.
  std::string text(kMaxConfigFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return fail(name + ": cannot read: " + std::strerror(errno));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxConfigFileBytes) {
    return fail(name + ": larger than " + std::to_string(kMaxConfigFileBytes >> 10) +
                " KiB; a configuration file is at most " + std::to_string(kMaxConfigFileBytes) +
                " bytes");
  }
  return text;
}

Status YamlWalker::parse(std::string_view text,
                         const std::function<void(const YAML::Node&)>& walk) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    error(e.mark, "", "YAML syntax error: " + escape_untrusted(e.msg));
    return fail(errors_.front());
  }
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
    all += "\n" + file_ + ": more errors not shown; at most " + std::to_string(kMaxReportedErrors) +
           " are reported";
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
  std::ostringstream out;
  out << file_ << ':' << (mark.line + 1) << ':' << (mark.column + 1) << ": ";
  if (!path.empty()) out << escape_untrusted(path, 2 * kQuoteMax) << ": ";
  out << reason;
  return out.str();
}

void YamlWalker::mapping(const YAML::Node& node, const std::string& path, const Table& table) {
  entries(node, path, [&](const YAML::Node& key, const YAML::Node& value, const std::string& p) {
    auto it = std::find_if(table.begin(), table.end(),
                           [&](const auto& entry) { return entry.first == key.Scalar(); });
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
  std::set<std::string> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      error(kv.first.Mark(), path, "keys must be plain words");
      continue;
    }
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

bool YamlWalker::scalar(const YAML::Node& node, const std::string& path, const char* what) {
  if (!node.IsScalar()) {
    error(node.Mark(), path, std::string("expected ") + what + ", got " + kind(node));
    return false;
  }
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

void YamlWalker::directory(const YAML::Node& node, const std::string& path, std::string& out) {
  if (!scalar(node, path, "a directory name")) return;
  if (node.Scalar().size() > kMaxPathBytes) {
    error(node.Mark(), path,
          "a name of " + std::to_string(node.Scalar().size()) + " bytes; at most " +
              std::to_string(kMaxPathBytes) + " are allowed");
    return;
  }
  out = node.Scalar();
}

void YamlWalker::file_path(const YAML::Node& node, const std::string& path, std::string& out) {
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
