#pragma once
// The memcached text protocol as far as mcbacklogd speaks it: the replies to `stats`,
// `stats settings` and `version`, and the typed view of the stats the daemon uses.
//
// Pure functions over bytes; no I/O; thread-safe. The client (memcached_client.hpp) frames
// replies with find_reply_end and hands the complete reply to parse_stats; the collector turns
// the name/value map into MemcachedStats and MemcachedSettings.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "config/address.hpp"

namespace mcb {

// Stat name -> value, as memcached sent them: views into one copy of the reply's bytes (shared by
// copies of the map, which is immutable once built), sorted by name. A reply of a hundred stats
// makes two allocations, not hundreds; lookups are binary searches.
class StatsMap {
 public:
  using value_type = std::pair<std::string_view, std::string_view>;
  using const_iterator = std::vector<value_type>::const_iterator;

  StatsMap() = default;
  // Tests and fakes: the stats given, the last of a name winning.
  StatsMap(std::initializer_list<value_type> stats);

  const_iterator begin() const { return entries_.begin(); }
  const_iterator end() const { return entries_.end(); }
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const_iterator find(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name) != end(); }
  // The value of `name`; throws std::out_of_range without one.
  std::string_view at(std::string_view name) const;
  // A copy with `name` set to `value` (added when absent).
  StatsMap with(std::string_view name, std::string_view value) const;

 private:
  friend Result<StatsMap> parse_stats(std::string_view reply);
  // Copies `stats` (views into other bytes) into one buffer of its own, sorted.
  static StatsMap owning(std::vector<value_type> stats);

  std::shared_ptr<const std::string> text_;
  std::vector<value_type> entries_;
};

// Where a reply ends in the bytes read so far.
struct ReplyEnd {
  enum class Kind {
    kIncomplete,  // no terminating line yet: read more
    kComplete,    // `length` bytes (through the newline of END or of an error line) are a reply
    kMalformed,   // a line no reply may contain, or one longer than max_line: the stream is lost
  };
  Kind kind = Kind::kIncomplete;
  std::size_t length = 0;
  std::string error;  // for kMalformed
};

// Pure. Scans complete lines of `buffered`: "STAT <name> <value>" lines continue a reply, "END"
// and the error lines "ERROR", "CLIENT_ERROR <text>", "SERVER_ERROR <text>" end it. A line that is
// none of these, holds bytes outside printable ASCII, or is longer than `max_line` bytes (even
// before its newline arrives) makes the stream malformed.
ReplyEnd find_reply_end(std::string_view buffered, std::size_t max_line);

// Pure. Parses one complete reply to `stats` or `stats settings`: "STAT <name> <value>" lines
// (the value may hold spaces) followed by "END", each line ending in "\r\n" (a bare "\n" is
// accepted). Errors: an error line (its text is in the message), a line that is not a STAT line,
// a stat given twice, a missing END, bytes after END.
Result<StatsMap> parse_stats(std::string_view reply);

// Pure. The version from a reply to `version` ("VERSION 1.6.18\r\n"); anything else is an error
// that quotes the reply (memcached at its connection limit answers "ERROR Too many open
// connections").
Result<std::string> parse_version_reply(std::string_view line);

// Pure. True when `reply` is memcached's refusal at its connection limit in maxconns_fast mode:
// it accepts the connection, sends "ERROR Too many open connections" and closes.
bool at_connection_limit(std::string_view reply);

// A stat whose value has not the form its name calls for (an integer, a decimal number, "yes" or
// "no"): a memcached-compatible server that prints it its own way. Only that stat is lost.
struct UnreadableStat {
  std::string command;  // "stats", "stats settings", ...
  std::string name;     // as the server sent it, e.g. "rusage_user"
  std::string value;    // as the server sent it, e.g. "0:34530"
};

// memcached's extstore counters, in `stats` when it runs with -o ext_path (memcached reports
// extstore_limit_maxbytes then).
struct ExtstoreStats {
  std::optional<std::int64_t> compact_lost;
  std::optional<std::int64_t> compact_rescues;
  std::optional<std::int64_t> compact_skipped;
  std::optional<std::int64_t> page_allocs;
  std::optional<std::int64_t> page_evictions;
  std::optional<std::int64_t> page_reclaims;
  std::optional<std::int64_t> pages_free;
  std::optional<std::int64_t> pages_used;
  std::optional<std::int64_t> objects_evicted;
  std::optional<std::int64_t> objects_read;
  std::optional<std::int64_t> objects_written;
  std::optional<std::int64_t> objects_used;
  std::optional<std::int64_t> bytes_evicted;
  std::optional<std::int64_t> bytes_written;
  std::optional<std::int64_t> bytes_read;
  std::optional<std::int64_t> bytes_used;
  std::optional<std::int64_t> bytes_fragmented;
  std::optional<std::int64_t> limit_maxbytes;
  std::optional<std::int64_t> io_queue;
};

// memcached's proxy counters, in `stats` of a memcached built with the proxy and running it
// (memcached reports proxy_backend_total then).
struct ProxyStats {
  std::optional<std::int64_t> conn_requests;
  std::optional<std::int64_t> conn_errors;
  std::optional<std::int64_t> conn_oom;
  std::optional<std::int64_t> req_active;
  std::optional<std::int64_t> config_reloads;
  std::optional<std::int64_t> config_reload_fails;
  std::optional<std::int64_t> config_cron_runs;
  std::optional<std::int64_t> config_cron_fails;
  std::optional<std::int64_t> backend_total;
  std::optional<std::int64_t> backend_marked_bad;
  std::optional<std::int64_t> backend_failed;
  std::optional<std::int64_t> request_failed_depth;
  std::optional<std::int64_t> round_robin_fallback;
  std::optional<std::int64_t> unexpected_napi_ids;
};

// The stats mcbacklogd uses, typed. A stat this memcached does not report is absent
// (rejected_connections with -o no_maxconns_fast, everything but a few on old versions).
struct MemcachedStats {
  std::string version;  // empty when not reported
  std::optional<std::int64_t> pid;
  std::optional<std::int64_t> uptime;   // seconds
  std::optional<double> rusage_user;    // seconds of CPU in user mode, all threads
  std::optional<double> rusage_system;  // seconds of CPU in the kernel, all threads
  std::optional<std::int64_t> threads;  // worker threads (-t)
  std::optional<std::int64_t> curr_connections;
  std::optional<std::int64_t> max_connections;  // -c
  std::optional<std::int64_t> total_connections;
  std::optional<std::int64_t> rejected_connections;  // maxconns_fast mode only
  std::optional<std::int64_t> connection_structures;
  std::optional<std::int64_t> reserved_fds;
  std::optional<std::int64_t> listen_disabled_num;
  std::optional<std::int64_t> time_in_listen_disabled_us;
  std::optional<std::int64_t> accepting_conns;  // 1 or 0
  std::optional<std::int64_t> conn_yields;
  std::optional<std::int64_t> bytes;
  std::optional<std::int64_t> limit_maxbytes;  // -m in bytes
  std::optional<std::int64_t> evictions;
  std::optional<std::int64_t> bytes_read;
  std::optional<std::int64_t> bytes_written;

  std::optional<std::int64_t> time;  // memcached's clock, Unix seconds
  // Commands: hits and misses per command, as memcached counts them. cmd_set counts every
  // storage command, cas included.
  std::optional<std::int64_t> cmd_set;
  std::optional<std::int64_t> cmd_flush;
  std::optional<std::int64_t> get_hits;
  std::optional<std::int64_t> get_misses;
  std::optional<std::int64_t> delete_hits;
  std::optional<std::int64_t> delete_misses;
  std::optional<std::int64_t> incr_hits;
  std::optional<std::int64_t> incr_misses;
  std::optional<std::int64_t> decr_hits;
  std::optional<std::int64_t> decr_misses;
  std::optional<std::int64_t> cas_hits;
  std::optional<std::int64_t> cas_misses;
  std::optional<std::int64_t> cas_badval;
  std::optional<std::int64_t> touch_hits;
  std::optional<std::int64_t> touch_misses;
  // Items and memory.
  std::optional<std::int64_t> curr_items;
  std::optional<std::int64_t> total_items;
  std::optional<std::int64_t> reclaimed;
  std::optional<std::int64_t> store_too_large;
  std::optional<std::int64_t> store_no_memory;
  std::optional<std::int64_t> direct_reclaims;
  // The LRU crawler and maintainer.
  std::optional<std::int64_t> lru_crawler_starts;
  std::optional<std::int64_t> crawler_items_checked;
  std::optional<std::int64_t> crawler_reclaimed;
  std::optional<std::int64_t> moves_to_cold;
  std::optional<std::int64_t> moves_to_warm;
  std::optional<std::int64_t> moves_within_lru;

  std::optional<ExtstoreStats> extstore;  // when memcached reports extstore_limit_maxbytes
  std::optional<ProxyStats> proxy;        // when memcached reports proxy_backend_total
};

// The settings mcbacklogd uses, from `stats settings`.
struct MemcachedSettings {
  std::optional<std::int64_t> maxconns;        // -c
  std::optional<std::int64_t> tcp_backlog;     // -b
  std::optional<bool> maxconns_fast;           // off with -o no_maxconns_fast
  std::optional<std::int64_t> num_threads;     // -t
  std::optional<std::int64_t> reqs_per_event;  // -R

  // The LRU crawler and the segmented LRU (-o lru_crawler, lru_maintainer, hot_lru_pct, ...).
  std::optional<bool> lru_crawler;
  std::optional<std::int64_t> lru_crawler_sleep;    // microseconds between crawls
  std::optional<std::int64_t> lru_crawler_tocrawl;  // items per class per run, 0 unlimited
  std::optional<bool> lru_maintainer_thread;
  std::optional<std::int64_t> hot_lru_pct;
  std::optional<std::int64_t> warm_lru_pct;
  std::optional<double> hot_max_factor;
  std::optional<double> warm_max_factor;

  // Where it listens over TCP: -p (tcpport; 0 opens no TCP listener) and -l (inter, as given:
  // nullopt without -l, meaning every address).
  std::optional<std::int64_t> tcpport;
  std::optional<std::string> inter;
};

// The TCP addresses memcached listens on by its settings, read as memcached reads its -l: entries
// separated by ',' or ';', each "host", "host:port", "[v6]" or "[v6]:port" (an IPv6 address
// without brackets takes no port), "*" for every address, "notls:" before one without TLS; an
// entry without a port listens on tcpport. Without -l, every address on tcpport. A host of ""
// means every address. Empty when tcpport is 0 or unknown; an entry whose port is not a port is
// left out (memcached would not have started).
std::vector<Endpoint> memcached_listen_endpoints(const MemcachedSettings& settings);

// One slab class: its items (`stats items`, "items:<id>:<name>") and its memory and commands
// (`stats slabs`, "<id>:<name>"). memcached lists a class in `stats items` while it holds items,
// in `stats slabs` once it has a page.
struct SlabClassStats {
  int id = 0;

  // `stats items`
  std::optional<std::int64_t> number;  // items now
  std::optional<std::int64_t> number_hot;
  std::optional<std::int64_t> number_warm;
  std::optional<std::int64_t> number_cold;
  std::optional<std::int64_t> number_temp;  // with a temporary LRU (-o temporary_ttl)
  std::optional<std::int64_t> age_hot;      // seconds, of the oldest item
  std::optional<std::int64_t> age_warm;
  std::optional<std::int64_t> age;
  std::optional<std::int64_t> mem_requested;  // bytes the items asked for
  std::optional<std::int64_t> evicted;
  std::optional<std::int64_t> evicted_nonzero;
  std::optional<std::int64_t> evicted_time;  // seconds since the last evicted item's last use
  std::optional<std::int64_t> outofmemory;   // stores refused: no memory, and nothing to evict
  std::optional<std::int64_t> tailrepairs;
  std::optional<std::int64_t> reclaimed;
  std::optional<std::int64_t> expired_unfetched;
  std::optional<std::int64_t> evicted_unfetched;
  std::optional<std::int64_t> crawler_reclaimed;
  std::optional<std::int64_t> moves_to_cold;
  std::optional<std::int64_t> moves_to_warm;
  std::optional<std::int64_t> moves_within_lru;
  std::optional<std::int64_t> hits_to_hot;
  std::optional<std::int64_t> hits_to_warm;
  std::optional<std::int64_t> hits_to_cold;
  std::optional<std::int64_t> hits_to_temp;

  // `stats slabs`
  std::optional<std::int64_t> chunk_size;  // bytes
  std::optional<std::int64_t> chunks_per_page;
  std::optional<std::int64_t> total_pages;
  std::optional<std::int64_t> total_chunks;
  std::optional<std::int64_t> used_chunks;
  std::optional<std::int64_t> free_chunks;
  std::optional<std::int64_t> free_chunks_end;
  std::optional<std::int64_t> slab_mem_requested;  // mem_requested of `stats slabs` (before 1.6)
  std::optional<std::int64_t> get_hits;
  std::optional<std::int64_t> cmd_set;
  std::optional<std::int64_t> delete_hits;
  std::optional<std::int64_t> incr_hits;
  std::optional<std::int64_t> decr_hits;
  std::optional<std::int64_t> cas_hits;
  std::optional<std::int64_t> cas_badval;
  std::optional<std::int64_t> touch_hits;
};

// The largest slab class id read: memcached 1.4 numbers its classes up to 200 (POWER_LARGEST),
// 1.5 on up to 63. A larger id is no class of a memcached: the stat is unreadable, so a peer
// cannot make a series per id.
inline constexpr std::int64_t kMaxSlabClassId = 255;

// `stats items` and `stats slabs` together.
struct SlabStats {
  std::vector<SlabClassStats> classes;  // by id, each class either reply lists
  std::optional<std::int64_t> active_slabs;
  std::optional<std::int64_t> total_malloced;  // bytes of slab pages
};

// Pure. A stat whose value has the wrong form is left absent and appended to `unreadable`;
// unknown stats are ignored.
MemcachedStats memcached_stats(const StatsMap& stats, std::vector<UnreadableStat>& unreadable);
MemcachedSettings memcached_settings(const StatsMap& settings,
                                     std::vector<UnreadableStat>& unreadable);

// Pure. Parse one complete reply to `stats items` or `stats slabs` into `out`, which may already
// hold the other (both list classes by id). Read straight from the reply, without a StatsMap:
// with items in all 63 classes the two replies hold 2,700 lines. Errors are those of parse_stats
// but a stat given twice (the later value counts); a value of the wrong form, or a key that names
// no class ("items:x:number", an id above kMaxSlabClassId), is left out and appended to
// `unreadable`; unknown stats are ignored. Linear in the reply whatever the order of the ids.
Status parse_stats_items(std::string_view reply, SlabStats& out,
                         std::vector<UnreadableStat>& unreadable);
Status parse_stats_slabs(std::string_view reply, SlabStats& out,
                         std::vector<UnreadableStat>& unreadable);

}  // namespace mcb
