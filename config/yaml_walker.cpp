#include "config/yaml_walker.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace mcb {

Result<std::string> read_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return fail(path + ": cannot read: " + std::strerror(errno));
  return text.str();
}

Status YamlWalker::parse(std::string_view text,
                         const std::function<void(const YAML::Node&)>& walk) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    error(e.mark, "", "YAML syntax error: " + e.msg);
    return fail(errors_.front());
  }
  try {
    walk(root);
  } catch (const YAML::Exception& e) {
    error(e.mark, "", e.msg);
  }
  if (errors_.empty()) return ok_status();
  std::string all;
  for (const std::string& e : errors_) all += (all.empty() ? "" : "\n") + e;
  return fail(all);
}

void YamlWalker::error(const YAML::Mark& mark, const std::string& path, const std::string& reason) {
  std::ostringstream out;
  out << file_ << ':' << (mark.line + 1) << ':' << (mark.column + 1) << ": ";
  if (!path.empty()) out << path << ": ";
  out << reason;
  errors_.push_back(out.str());
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
  if (node.IsScalar()) return true;
  error(node.Mark(), path, std::string("expected ") + what + ", got " + kind(node));
  return false;
}

void YamlWalker::boolean(const YAML::Node& node, const std::string& path, bool& out) {
  if (!scalar(node, path, "true or false")) return;
  const std::string& s = node.Scalar();
  if (s == "true") {
    out = true;
  } else if (s == "false") {
    out = false;
  } else {
    error(node.Mark(), path, "expected true or false, got \"" + s + "\"");
  }
}

void YamlWalker::text(const YAML::Node& node, const std::string& path, std::string& out) {
  if (scalar(node, path, "a string")) out = node.Scalar();
}

void YamlWalker::file_path(const YAML::Node& node, const std::string& path, std::string& out) {
  if (!scalar(node, path, "a file name")) return;
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
  error(node.Mark(), path, "\"" + node.Scalar() + "\" is not one of: " + list);
}

void YamlWalker::number(const YAML::Node& node, const std::string& path, double& out, double min,
                        double max) {
  if (!scalar(node, path, "a number")) return;
  const std::string& s = node.Scalar();
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ptr != s.data() + s.size() || ec != std::errc()) {
    error(node.Mark(), path, "expected a number, got \"" + s + "\"");
  } else if (v < min || v > max) {
    std::ostringstream range;
    range << s << " is out of range (" << min << " to " << max << ")";
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
  try {
    std::regex check(node.Scalar(), std::regex::ECMAScript);
    out = node.Scalar();
  } catch (const std::regex_error& e) {
    error(node.Mark(), path, std::string("invalid regular expression: ") + e.what());
  }
}

std::string YamlWalker::kind(const YAML::Node& node) {
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  if (node.IsNull()) return "nothing";
  return "\"" + node.Scalar() + "\"";
}

}  // namespace mcb
