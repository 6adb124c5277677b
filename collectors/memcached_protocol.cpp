#include "collectors/memcached_protocol.hpp"

#include <charconv>
#include <cmath>

#include "common/text.hpp"

namespace mcb {
namespace {

enum class LineKind { kStat, kEnd, kError, kBad };

struct Line {
  LineKind kind = LineKind::kBad;
  std::string_view name;   // kStat
  std::string_view value;  // kStat
};

bool printable(std::string_view s) {
  for (const char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

bool starts_with_word(std::string_view line, std::string_view word) {
  return line.substr(0, word.size()) == word &&
         (line.size() == word.size() || line[word.size()] == ' ');
}

// `line` without its "\r\n".
Line classify(std::string_view line) {
  Line out;
  if (!printable(line)) return out;
  if (line == "END") {
    out.kind = LineKind::kEnd;
  } else if (starts_with_word(line, "ERROR") || starts_with_word(line, "CLIENT_ERROR") ||
             starts_with_word(line, "SERVER_ERROR")) {
    out.kind = LineKind::kError;
  } else if (line.substr(0, 5) == "STAT ") {
    const std::string_view rest = line.substr(5);
    const auto space = rest.find(' ');
    if (space != 0 && space != std::string_view::npos && space + 1 < rest.size()) {
      out.kind = LineKind::kStat;
      out.name = rest.substr(0, space);
      out.value = rest.substr(space + 1);
    }
  }
  return out;
}

// The line starting at `pos` without its newline and "\r", or nullopt if no newline follows.
std::optional<std::string_view> line_at(std::string_view text, std::size_t pos, std::size_t& next) {
  const auto nl = text.find('\n', pos);
  if (nl == std::string_view::npos) return std::nullopt;
  next = nl + 1;
  std::string_view line = text.substr(pos, nl - pos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// Quotes bytes from a peer for a log line.
std::string quote(std::string_view bytes) { return quote_untrusted(bytes, 60); }

template <class T>
std::optional<T> number(const std::string& s) {
  T v{};
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// std::from_chars also reads "inf" and "nan", which are no number of seconds.
std::optional<double> seconds(const std::string& s) {
  auto v = number<double>(s);
  return v && std::isfinite(*v) && *v >= 0 ? v : std::nullopt;
}

std::optional<bool> yes_no(const std::string& s) {
  if (s == "yes") return true;
  if (s == "no") return false;
  return std::nullopt;
}

// Reads the stats of one reply into typed fields; a value of the wrong form is left absent and
// recorded.
class Reader {
 public:
  Reader(const StatsMap& m, std::string_view command, std::vector<UnreadableStat>& unreadable)
      : m_(m), command_(command), unreadable_(unreadable) {}

  // Sets `out` from stat `name` when it is present; `convert` gives nullopt for a value of the
  // wrong form.
  template <class T, class Convert>
  void read(std::string_view name, std::optional<T>& out, Convert convert) {
    const auto it = m_.find(name);
    if (it == m_.end()) return;
    out = convert(it->second);
    if (!out) unreadable_.push_back({std::string(command_), std::string(name), it->second});
  }
  void integer(std::string_view name, std::optional<std::int64_t>& out) {
    read(name, out, number<std::int64_t>);
  }

 private:
  const StatsMap& m_;
  std::string_view command_;
  std::vector<UnreadableStat>& unreadable_;
};

}  // namespace

ReplyEnd find_reply_end(std::string_view buffered, std::size_t max_line) {
  ReplyEnd out;
  std::size_t pos = 0;
  for (;;) {
    std::size_t next = 0;
    const auto line = line_at(buffered, pos, next);
    if (!line ? buffered.size() - pos > max_line : next - pos > max_line + 1) {
      out.kind = ReplyEnd::Kind::kMalformed;
      out.error = "a line longer than " + std::to_string(max_line) + " bytes";
      return out;
    }
    if (!line) return out;  // incomplete
    switch (classify(*line).kind) {
      case LineKind::kStat:
        pos = next;
        continue;
      case LineKind::kEnd:
      case LineKind::kError:
        out.kind = ReplyEnd::Kind::kComplete;
        out.length = next;
        return out;
      case LineKind::kBad:
        out.kind = ReplyEnd::Kind::kMalformed;
        out.error = "unexpected line " + quote(*line);
        return out;
    }
  }
}

Result<StatsMap> parse_stats(std::string_view reply) {
  StatsMap stats;
  std::size_t pos = 0;
  for (int number = 1; pos < reply.size(); ++number) {
    std::size_t next = 0;
    const auto line = line_at(reply, pos, next);
    if (!line) break;
    const Line l = classify(*line);
    switch (l.kind) {
      case LineKind::kStat:
        if (!stats.emplace(l.name, l.value).second) {
          return fail("stat " + quote(l.name) + " given twice");
        }
        break;
      case LineKind::kEnd:
        if (next != reply.size()) return fail("bytes after END: " + quote(reply.substr(next)));
        return stats;
      case LineKind::kError:
        return fail("memcached replied " + quote(*line));
      case LineKind::kBad:
        return fail("line " + std::to_string(number) + ": unexpected " + quote(*line));
    }
    pos = next;
  }
  return fail("the reply ends without END");
}

Result<std::string> parse_version_reply(std::string_view line) {
  std::string_view text = line;
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  constexpr std::string_view kPrefix = "VERSION ";
  if (text.substr(0, kPrefix.size()) != kPrefix || text.size() == kPrefix.size() ||
      !printable(text)) {
    return fail("unexpected reply to version: " + quote(text));
  }
  return std::string(text.substr(kPrefix.size()));
}

bool at_connection_limit(std::string_view reply) {
  constexpr std::string_view kTooMany = "ERROR Too many open connections";
  return reply.substr(0, kTooMany.size()) == kTooMany;
}

MemcachedStats memcached_stats(const StatsMap& m, std::vector<UnreadableStat>& unreadable) {
  MemcachedStats s;
  if (auto v = m.find("version"); v != m.end()) s.version = v->second;
  Reader r(m, "stats", unreadable);
  r.integer("pid", s.pid);
  r.integer("uptime", s.uptime);
  r.read("rusage_user", s.rusage_user, seconds);
  r.read("rusage_system", s.rusage_system, seconds);
  r.integer("threads", s.threads);
  r.integer("curr_connections", s.curr_connections);
  r.integer("max_connections", s.max_connections);
  r.integer("total_connections", s.total_connections);
  r.integer("rejected_connections", s.rejected_connections);
  r.integer("connection_structures", s.connection_structures);
  r.integer("reserved_fds", s.reserved_fds);
  r.integer("listen_disabled_num", s.listen_disabled_num);
  r.integer("time_in_listen_disabled_us", s.time_in_listen_disabled_us);
  r.integer("accepting_conns", s.accepting_conns);
  r.integer("conn_yields", s.conn_yields);
  r.integer("bytes", s.bytes);
  r.integer("limit_maxbytes", s.limit_maxbytes);
  r.integer("evictions", s.evictions);
  r.integer("bytes_read", s.bytes_read);
  r.integer("bytes_written", s.bytes_written);
  return s;
}

MemcachedSettings memcached_settings(const StatsMap& m, std::vector<UnreadableStat>& unreadable) {
  MemcachedSettings s;
  Reader r(m, "stats settings", unreadable);
  r.integer("maxconns", s.maxconns);
  r.integer("tcp_backlog", s.tcp_backlog);
  r.read("maxconns_fast", s.maxconns_fast, yes_no);
  r.integer("num_threads", s.num_threads);
  r.integer("reqs_per_event", s.reqs_per_event);
  return s;
}

}  // namespace mcb
