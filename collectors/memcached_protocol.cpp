#include "collectors/memcached_protocol.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <span>
#include <stdexcept>

#include "common/text.hpp"

namespace mcb {
namespace {

enum class LineKind { kStat, kEnd, kError, kBad };

struct Line {
  LineKind kind = LineKind::kBad;
  std::string_view name;   // kStat
  std::string_view value;  // kStat
};

bool starts_with_word(std::string_view line, std::string_view word) {
  return line.starts_with(word) && (line.size() == word.size() || line[word.size()] == ' ');
}

// Whether every byte of `s` is printable ASCII: one comparison a byte and no early exit, a loop
// the compiler keeps tight (a reply's lines are read twice a sample).
bool printable(std::string_view s) {
  unsigned bad = 0;
  for (const char c : s)
    bad |= static_cast<unsigned>(static_cast<unsigned char>(c) - 0x20u > 0x5eu);
  return bad == 0;
}

// `line` without its "\r\n". Nearly every line of a reply is a STAT line, read on every sample.
Line classify(std::string_view line) {
  Line out;
  if (!printable(line)) return out;
  constexpr std::string_view kStat = "STAT ";
  if (line.starts_with(kStat)) {
    // A name of at least one byte, a space, a value of at least one byte.
    const std::size_t space = line.find(' ', kStat.size());
    if (space != std::string_view::npos && space > kStat.size() && space + 1 < line.size()) {
      out.kind = LineKind::kStat;
      out.name = line.substr(kStat.size(), space - kStat.size());
      out.value = line.substr(space + 1);
    }
  } else if (line == "END") {
    out.kind = LineKind::kEnd;
  } else if (starts_with_word(line, "ERROR") || starts_with_word(line, "CLIENT_ERROR") ||
             starts_with_word(line, "SERVER_ERROR")) {
    out.kind = LineKind::kError;
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
std::optional<T> number(std::string_view s) {
  T v{};
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// std::from_chars also reads "inf" and "nan", which are no number of seconds.
std::optional<double> seconds(std::string_view s) {
  auto v = number<double>(s);
  return v && std::isfinite(*v) && *v >= 0 ? v : std::nullopt;
}

std::optional<double> decimal(std::string_view s) {
  auto v = number<double>(s);
  return v && std::isfinite(*v) ? v : std::nullopt;
}

std::optional<bool> yes_no(std::string_view s) {
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
    if (!out) {
      unreadable_.push_back({std::string(command_), std::string(name), std::string(it->second)});
    }
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

namespace {

// A StatsMap's order.
bool by_name(const StatsMap::value_type& a, const StatsMap::value_type& b) {
  return a.first < b.first;
}

}  // namespace

StatsMap::StatsMap(std::initializer_list<value_type> stats)
    : StatsMap(owning(std::vector<value_type>(stats))) {}

StatsMap::const_iterator StatsMap::find(std::string_view name) const {
  const auto it =
      std::lower_bound(entries_.begin(), entries_.end(), name,
                       [](const value_type& e, std::string_view n) { return e.first < n; });
  return it != entries_.end() && it->first == name ? it : entries_.end();
}

std::string_view StatsMap::at(std::string_view name) const {
  const auto it = find(name);
  if (it == end()) throw std::out_of_range("no stat " + std::string(name));
  return it->second;
}

StatsMap StatsMap::with(std::string_view name, std::string_view value) const {
  std::vector<value_type> stats = entries_;  // views into text_, alive until owning() copied them
  stats.emplace_back(name, value);
  return owning(std::move(stats));
}

StatsMap StatsMap::owning(std::vector<value_type> stats) {
  // Sorted by name, the last of a name winning.
  std::stable_sort(stats.begin(), stats.end(), by_name);
  std::vector<value_type> unique;
  unique.reserve(stats.size());
  for (const value_type& e : stats) {
    if (!unique.empty() && unique.back().first == e.first) {
      unique.back() = e;
    } else {
      unique.push_back(e);
    }
  }
  std::string text;
  for (const auto& [name, value] : unique) {
    text += name;
    text += value;
  }
  StatsMap out;
  auto owned = std::make_shared<const std::string>(std::move(text));
  const std::string_view bytes(*owned);
  std::size_t pos = 0;
  out.entries_.reserve(unique.size());
  for (const auto& [name, value] : unique) {
    out.entries_.emplace_back(bytes.substr(pos, name.size()),
                              bytes.substr(pos + name.size(), value.size()));
    pos += name.size() + value.size();
  }
  out.text_ = std::move(owned);
  return out;
}

Result<StatsMap> parse_stats(std::string_view reply) {
  StatsMap stats;
  auto text = std::make_shared<const std::string>(reply);
  const std::string_view bytes(*text);
  std::size_t pos = 0;
  for (int number = 1; pos < bytes.size(); ++number) {
    std::size_t next = 0;
    const auto line = line_at(bytes, pos, next);
    if (!line) break;
    const Line l = classify(*line);
    switch (l.kind) {
      case LineKind::kStat:
        stats.entries_.emplace_back(l.name, l.value);
        break;
      case LineKind::kEnd: {
        if (next != bytes.size()) return fail("bytes after END: " + quote(bytes.substr(next)));
        auto& e = stats.entries_;
        std::sort(e.begin(), e.end(), by_name);
        const auto twice = std::adjacent_find(
            e.begin(), e.end(), [](const auto& a, const auto& b) { return a.first == b.first; });
        if (twice != e.end()) return fail("stat " + quote(twice->first) + " given twice");
        stats.text_ = std::move(text);
        return stats;
      }
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
  if (auto v = m.find("version"); v != m.end()) s.version = std::string(v->second);
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

  r.integer("time", s.time);
  r.integer("cmd_set", s.cmd_set);
  r.integer("cmd_flush", s.cmd_flush);
  r.integer("get_hits", s.get_hits);
  r.integer("get_misses", s.get_misses);
  r.integer("delete_hits", s.delete_hits);
  r.integer("delete_misses", s.delete_misses);
  r.integer("incr_hits", s.incr_hits);
  r.integer("incr_misses", s.incr_misses);
  r.integer("decr_hits", s.decr_hits);
  r.integer("decr_misses", s.decr_misses);
  r.integer("cas_hits", s.cas_hits);
  r.integer("cas_misses", s.cas_misses);
  r.integer("cas_badval", s.cas_badval);
  r.integer("touch_hits", s.touch_hits);
  r.integer("touch_misses", s.touch_misses);
  r.integer("curr_items", s.curr_items);
  r.integer("total_items", s.total_items);
  r.integer("reclaimed", s.reclaimed);
  r.integer("store_too_large", s.store_too_large);
  r.integer("store_no_memory", s.store_no_memory);
  r.integer("direct_reclaims", s.direct_reclaims);
  r.integer("lru_crawler_starts", s.lru_crawler_starts);
  r.integer("crawler_items_checked", s.crawler_items_checked);
  r.integer("crawler_reclaimed", s.crawler_reclaimed);
  r.integer("moves_to_cold", s.moves_to_cold);
  r.integer("moves_to_warm", s.moves_to_warm);
  r.integer("moves_within_lru", s.moves_within_lru);

  if (m.contains("extstore_limit_maxbytes")) {
    ExtstoreStats& e = s.extstore.emplace();
    r.integer("extstore_compact_lost", e.compact_lost);
    r.integer("extstore_compact_rescues", e.compact_rescues);
    r.integer("extstore_compact_skipped", e.compact_skipped);
    r.integer("extstore_page_allocs", e.page_allocs);
    r.integer("extstore_page_evictions", e.page_evictions);
    r.integer("extstore_page_reclaims", e.page_reclaims);
    r.integer("extstore_pages_free", e.pages_free);
    r.integer("extstore_pages_used", e.pages_used);
    r.integer("extstore_objects_evicted", e.objects_evicted);
    r.integer("extstore_objects_read", e.objects_read);
    r.integer("extstore_objects_written", e.objects_written);
    r.integer("extstore_objects_used", e.objects_used);
    r.integer("extstore_bytes_evicted", e.bytes_evicted);
    r.integer("extstore_bytes_written", e.bytes_written);
    r.integer("extstore_bytes_read", e.bytes_read);
    r.integer("extstore_bytes_used", e.bytes_used);
    r.integer("extstore_bytes_fragmented", e.bytes_fragmented);
    r.integer("extstore_limit_maxbytes", e.limit_maxbytes);
    r.integer("extstore_io_queue", e.io_queue);
  }
  if (m.contains("proxy_backend_total")) {
    ProxyStats& p = s.proxy.emplace();
    r.integer("proxy_conn_requests", p.conn_requests);
    r.integer("proxy_conn_errors", p.conn_errors);
    r.integer("proxy_conn_oom", p.conn_oom);
    r.integer("proxy_req_active", p.req_active);
    r.integer("proxy_config_reloads", p.config_reloads);
    r.integer("proxy_config_reload_fails", p.config_reload_fails);
    r.integer("proxy_config_cron_runs", p.config_cron_runs);
    r.integer("proxy_config_cron_fails", p.config_cron_fails);
    r.integer("proxy_backend_total", p.backend_total);
    r.integer("proxy_backend_marked_bad", p.backend_marked_bad);
    r.integer("proxy_backend_failed", p.backend_failed);
    r.integer("proxy_request_failed_depth", p.request_failed_depth);
    r.integer("round_robin_fallback", p.round_robin_fallback);
    r.integer("unexpected_napi_ids", p.unexpected_napi_ids);
  }
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
  r.read("lru_crawler", s.lru_crawler, yes_no);
  r.integer("lru_crawler_sleep", s.lru_crawler_sleep);
  r.integer("lru_crawler_tocrawl", s.lru_crawler_tocrawl);
  r.read("lru_maintainer_thread", s.lru_maintainer_thread, yes_no);
  r.integer("hot_lru_pct", s.hot_lru_pct);
  r.integer("warm_lru_pct", s.warm_lru_pct);
  r.read("hot_max_factor", s.hot_max_factor, decimal);
  r.read("warm_max_factor", s.warm_max_factor, decimal);
  r.integer("tcpport", s.tcpport);
  if (auto inter = m.find("inter"); inter != m.end() && inter->second != "NULL") {
    s.inter = std::string(inter->second);
  }
  return s;
}

std::vector<Endpoint> memcached_listen_endpoints(const MemcachedSettings& settings) {
  std::vector<Endpoint> out;
  const auto default_port = settings.tcpport;
  if (!default_port || *default_port <= 0 || *default_port > 65535) return out;
  auto add = [&out](std::string host, std::int64_t port) {
    Endpoint e;
    e.host = host == "*" ? std::string() : std::move(host);
    e.port = static_cast<std::uint16_t>(port);
    out.push_back(std::move(e));
  };
  if (!settings.inter) {
    add("", *default_port);
    return out;
  }
  std::string_view rest = *settings.inter;
  while (!rest.empty()) {
    const std::size_t end = rest.find_first_of(",;");
    std::string_view entry = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (entry.starts_with("notls:")) entry.remove_prefix(6);
    if (entry.empty()) continue;
    std::string_view host = entry;
    std::optional<std::string_view> port;
    if (entry.front() == '[') {
      const std::size_t close = entry.find(']');
      if (close == std::string_view::npos) continue;
      host = entry.substr(1, close - 1);
      const std::string_view after = entry.substr(close + 1);
      if (const std::size_t colon = after.find(':'); colon != std::string_view::npos) {
        port = after.substr(colon + 1);
      }
    } else if (const std::size_t colon = entry.find(':');
               colon != std::string_view::npos &&
               entry.find(':', colon + 1) == std::string_view::npos) {
      host = entry.substr(0, colon);
      port = entry.substr(colon + 1);
    }
    std::int64_t p = *default_port;
    if (port) {
      const auto parsed = number<std::int64_t>(*port);
      if (!parsed || *parsed <= 0 || *parsed > 65535) continue;
      p = *parsed;
    }
    add(std::string(host), p);
  }
  return out;
}

namespace {

using SlabField = std::optional<std::int64_t> SlabClassStats::*;

struct NamedSlabField {
  std::string_view name;
  SlabField field;
};

constexpr NamedSlabField kItemsFields[] = {
    {"number", &SlabClassStats::number},
    {"number_hot", &SlabClassStats::number_hot},
    {"number_warm", &SlabClassStats::number_warm},
    {"number_cold", &SlabClassStats::number_cold},
    {"number_temp", &SlabClassStats::number_temp},
    {"age_hot", &SlabClassStats::age_hot},
    {"age_warm", &SlabClassStats::age_warm},
    {"age", &SlabClassStats::age},
    {"mem_requested", &SlabClassStats::mem_requested},
    {"evicted", &SlabClassStats::evicted},
    {"evicted_nonzero", &SlabClassStats::evicted_nonzero},
    {"evicted_time", &SlabClassStats::evicted_time},
    {"outofmemory", &SlabClassStats::outofmemory},
    {"tailrepairs", &SlabClassStats::tailrepairs},
    {"reclaimed", &SlabClassStats::reclaimed},
    {"expired_unfetched", &SlabClassStats::expired_unfetched},
    {"evicted_unfetched", &SlabClassStats::evicted_unfetched},
    {"crawler_reclaimed", &SlabClassStats::crawler_reclaimed},
    {"moves_to_cold", &SlabClassStats::moves_to_cold},
    {"moves_to_warm", &SlabClassStats::moves_to_warm},
    {"moves_within_lru", &SlabClassStats::moves_within_lru},
    {"hits_to_hot", &SlabClassStats::hits_to_hot},
    {"hits_to_warm", &SlabClassStats::hits_to_warm},
    {"hits_to_cold", &SlabClassStats::hits_to_cold},
    {"hits_to_temp", &SlabClassStats::hits_to_temp},
};

constexpr NamedSlabField kSlabsFields[] = {
    {"chunk_size", &SlabClassStats::chunk_size},
    {"chunks_per_page", &SlabClassStats::chunks_per_page},
    {"total_pages", &SlabClassStats::total_pages},
    {"total_chunks", &SlabClassStats::total_chunks},
    {"used_chunks", &SlabClassStats::used_chunks},
    {"free_chunks", &SlabClassStats::free_chunks},
    {"free_chunks_end", &SlabClassStats::free_chunks_end},
    {"mem_requested", &SlabClassStats::slab_mem_requested},
    {"get_hits", &SlabClassStats::get_hits},
    {"cmd_set", &SlabClassStats::cmd_set},
    {"delete_hits", &SlabClassStats::delete_hits},
    {"incr_hits", &SlabClassStats::incr_hits},
    {"decr_hits", &SlabClassStats::decr_hits},
    {"cas_hits", &SlabClassStats::cas_hits},
    {"cas_badval", &SlabClassStats::cas_badval},
    {"touch_hits", &SlabClassStats::touch_hits},
};

std::optional<std::int64_t> integer_of(std::string_view s) {
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// Reads the STAT lines of one slab reply into `out`.
class SlabReader {
 public:
  SlabReader(std::string_view command, SlabStats& out, std::vector<UnreadableStat>& unreadable)
      : command_(command), out_(out), unreadable_(unreadable) {}

  // `key` is "<id>:<name>"; false when it is not.
  bool per_class(std::string_view key, std::string_view full_key, std::string_view value,
                 std::span<const NamedSlabField> fields) {
    const auto colon = key.find(':');
    if (colon == std::string_view::npos) return false;
    const auto id = integer_of(key.substr(0, colon));
    if (!id || *id < 0 || *id > kMaxSlabClassId) return false;
    const std::string_view name = key.substr(colon + 1);
    SlabClassStats& c = class_of(static_cast<int>(*id));
    for (const NamedSlabField& f : fields) {
      if (f.name == name) {
        set(c.*f.field, full_key, value);
        break;
      }
    }
    return true;  // a stat of a newer memcached is ignored; its class is still there
  }

  void set(std::optional<std::int64_t>& out, std::string_view name, std::string_view value) {
    out = integer_of(value);
    if (!out) unreadable_.push_back({std::string(command_), std::string(name), std::string(value)});
  }

  void unreadable(std::string_view name, std::string_view value) {
    unreadable_.push_back({std::string(command_), std::string(name), std::string(value)});
  }

 private:
  // Lines come grouped by class in ascending order, so the last class found is usually the one.
  SlabClassStats& class_of(int id) {
    auto& classes = out_.classes;
    if (last_ < classes.size() && classes[last_].id == id) return classes[last_];
    auto it = std::lower_bound(classes.begin(), classes.end(), id,
                               [](const SlabClassStats& c, int v) { return c.id < v; });
    if (it == classes.end() || it->id != id) {
      it = classes.insert(it, SlabClassStats{});
      it->id = id;
    }
    last_ = static_cast<std::size_t>(it - classes.begin());
    return *it;
  }

  std::string_view command_;
  SlabStats& out_;
  std::vector<UnreadableStat>& unreadable_;
  std::size_t last_ = 0;
};

// Walks the lines of one complete reply as parse_stats does, handing each stat to `stat`.
template <class OnStat>
Status walk_stats(std::string_view reply, OnStat&& stat) {
  std::size_t pos = 0;
  for (int number = 1; pos < reply.size(); ++number) {
    std::size_t next = 0;
    const auto line = line_at(reply, pos, next);
    if (!line) break;
    const Line l = classify(*line);
    switch (l.kind) {
      case LineKind::kStat:
        stat(l.name, l.value);
        break;
      case LineKind::kEnd:
        if (next != reply.size()) return fail("bytes after END: " + quote(reply.substr(next)));
        return ok_status();
      case LineKind::kError:
        return fail("memcached replied " + quote(*line));
      case LineKind::kBad:
        return fail("line " + std::to_string(number) + ": unexpected " + quote(*line));
    }
    pos = next;
  }
  return fail("the reply ends without END");
}

}  // namespace

Status parse_stats_items(std::string_view reply, SlabStats& out,
                         std::vector<UnreadableStat>& unreadable) {
  SlabReader r("stats items", out, unreadable);
  constexpr std::string_view kPrefix = "items:";
  return walk_stats(reply, [&](std::string_view name, std::string_view value) {
    if (name.substr(0, kPrefix.size()) != kPrefix ||
        !r.per_class(name.substr(kPrefix.size()), name, value, kItemsFields)) {
      r.unreadable(name, value);
    }
  });
}

Status parse_stats_slabs(std::string_view reply, SlabStats& out,
                         std::vector<UnreadableStat>& unreadable) {
  SlabReader r("stats slabs", out, unreadable);
  return walk_stats(reply, [&](std::string_view name, std::string_view value) {
    if (name == "active_slabs") {
      r.set(out.active_slabs, name, value);
    } else if (name == "total_malloced") {
      r.set(out.total_malloced, name, value);
    } else if (name.find(':') != std::string_view::npos &&
               !r.per_class(name, name, value, kSlabsFields)) {
      r.unreadable(name, value);
    }
  });
}

}  // namespace mcb
