#pragma once
// YamlWalker: reads a YAML document into typed fields and collects every error with its position,
// "file:line:col: key.path: reason", so that a file's errors are all reported at once. The
// configuration files (config.cpp, web_config_file.cpp) describe their keys as tables of
// handlers; unknown and repeated keys, wrong types and out-of-range values are errors.
//
// Internal to the config library (it exposes yaml-cpp types). One walker per parse; not
// thread-safe.

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "common/text.hpp"
#include "config/duration.hpp"
#include "config/limits.hpp"

namespace mcb {

// Reads a whole configuration file. A missing or unreadable file is an error naming it, and so
// are one that is not a regular file (a FIFO, a device: opened without blocking and refused, so
// none can hold the caller; common/files.hpp) and one larger than kMaxConfigFileBytes (read no
// further than that).
Result<std::string> read_config_file(const std::string& path);

class YamlWalker {
 public:
  // `file` resolves the relative file names the YAML holds; messages name it escaped.
  explicit YamlWalker(std::string file)
      : file_(std::move(file)), shown_file_(escape_untrusted(file_, kMaxPathBytes)) {}

  // Each handler receives the value node and the dotted key path used in messages.
  using Handler = std::function<void(const YAML::Node&, const std::string&)>;
  using Table = std::vector<std::pair<std::string_view, Handler>>;

  // Parses `text` and runs `walk` over its root. Returns every error found, one per line, up to
  // kMaxReportedErrors (the walk stops at the next one, and a last line says so); a YAML syntax
  // error stops at once.
  Status parse(std::string_view text, const std::function<void(const YAML::Node&)>& walk);

  // Records an error. `path` (keys from the file) is escaped here; `reason` must already quote
  // what it repeats of the file (quote_untrusted).
  void error(const YAML::Mark& mark, const std::string& path, const std::string& reason);
  // "file:line:col: path: reason", the form of every error and warning.
  std::string at(const YAML::Mark& mark, const std::string& path, const std::string& reason) const;
  // "file:line:col: path": where a value is set, for the messages about it that come after the
  // walk (a file it names that cannot be opened).
  std::string origin(const YAML::Mark& mark, const std::string& path) const;
  bool has_errors() const { return !errors_.empty(); }

  // Records a warning, in the same form; the file still loads.
  void warning(const YAML::Mark& mark, const std::string& path, const std::string& reason);
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Dispatches each key of a mapping to its handler; unknown and repeated keys are errors. A null
  // node (the key given without a value) is an empty mapping.
  void mapping(const YAML::Node& node, const std::string& path, const Table& table);

  // Calls `each(key, value, path)` for every key of a mapping whose keys are data (user names),
  // not a fixed set. Keys that are not scalars and repeated keys are errors.
  void entries(
      const YAML::Node& node, const std::string& path,
      const std::function<void(const YAML::Node&, const YAML::Node&, const std::string&)>& each);

  // True if the node carries no tag but !!str (a scalar) or !!map (a mapping); otherwise reports
  // the tag, which would be ignored.
  bool untagged(const YAML::Node& node, const std::string& path);

  // True if the node is an untagged scalar of valid UTF-8; otherwise reports "expected <what>",
  // the tag or the bytes that are not UTF-8.
  bool scalar(const YAML::Node& node, const std::string& path, const char* what);

  void boolean(const YAML::Node& node, const std::string& path, bool& out);
  void text(const YAML::Node& node, const std::string& path, std::string& out);
  // A name that labels series and log lines (a target, a user): non-empty printable UTF-8 of at
  // most kMaxNameBytes.
  void name(const YAML::Node& node, const std::string& path, std::string& out);
  // A directory's absolute path of at most kMaxPathBytes; `origin_out`, when given, says where it
  // is set.
  void directory(const YAML::Node& node, const std::string& path, std::string& out,
                 std::string* origin_out = nullptr);
  // A file name; a relative one is made relative to the directory of the file being walked.
  // `origin`, when given, receives where it is set (origin()).
  void file_path(const YAML::Node& node, const std::string& path, std::string& out,
                 std::string* origin = nullptr);
  // One of `choices`.
  void word(const YAML::Node& node, const std::string& path, std::string& out,
            std::span<const std::string_view> choices);
  void word(const YAML::Node& node, const std::string& path, std::string& out,
            std::initializer_list<std::string_view> choices) {
    word(node, path, out, std::span(choices.begin(), choices.size()));
  }
  // A finite number (not nan or inf) from `min` to `max`.
  void number(const YAML::Node& node, const std::string& path, double& out, double min, double max);
  void duration(const YAML::Node& node, const std::string& path, Duration& out, Duration min,
                Duration max);
  // An RE2 regular expression within the bounds of config/limits.hpp that compiles.
  void regex(const YAML::Node& node, const std::string& path, std::string& out);

  template <class Int>
  void integer(const YAML::Node& node, const std::string& path, Int& out, Int min, Int max) {
    if (!scalar(node, path, "an integer")) return;
    const std::string& s = node.Scalar();
    Int v{};
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ptr != s.data() + s.size() || ec == std::errc::invalid_argument) {
      error(node.Mark(), path, "expected an integer, got " + quote_untrusted(s));
    } else if (ec == std::errc::result_out_of_range || v < min || v > max) {
      error(node.Mark(), path,
            escape_untrusted(s) + " is out of range (" + std::to_string(min) + " to " +
                std::to_string(max) + ")");
    } else {
      out = v;
    }
  }

  template <class F>
  void sequence(const YAML::Node& node, const std::string& path, F&& each) {
    if (node.IsNull()) return;
    if (!node.IsSequence()) {
      error(node.Mark(), path, "expected a list, got " + kind(node));
      return;
    }
    for (std::size_t i = 0; i < node.size(); ++i)
      each(node[i], path + "[" + std::to_string(i) + "]");
  }

  // "a mapping", "a list", "nothing" or the scalar in quotes: for "expected X, got Y".
  static std::string kind(const YAML::Node& node);

 private:
  struct TooManyErrors {};  // thrown by error() to end a walk that has reported enough

  std::string file_;
  std::string shown_file_;  // file_ as messages name it (escape_untrusted)
  std::vector<std::string> errors_;
  std::vector<std::string> warnings_;
};

}  // namespace mcb
