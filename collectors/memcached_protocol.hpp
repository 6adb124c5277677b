#pragma once
// The memcached text protocol as far as mcbacklogd speaks it: the replies to `stats`,
// `stats settings` and `version`, and the typed view of the stats the daemon uses.
//
// Pure functions over bytes; no I/O; thread-safe. The client (memcached_client.hpp) frames
// replies with find_reply_end and hands the complete reply to parse_stats; the collector turns
// the name/value map into MemcachedStats and MemcachedSettings.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace mcb {

// Stat name -> value, as memcached sent them.
using StatsMap = std::map<std::string, std::string, std::less<>>;

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
};

// The settings mcbacklogd uses, from `stats settings`.
struct MemcachedSettings {
  std::optional<std::int64_t> maxconns;        // -c
  std::optional<std::int64_t> tcp_backlog;     // -b
  std::optional<bool> maxconns_fast;           // off with -o no_maxconns_fast
  std::optional<std::int64_t> num_threads;     // -t
  std::optional<std::int64_t> reqs_per_event;  // -R
};

// Pure. A stat whose value has the wrong form is left absent and appended to `unreadable`;
// unknown stats are ignored.
MemcachedStats memcached_stats(const StatsMap& stats, std::vector<UnreadableStat>& unreadable);
MemcachedSettings memcached_settings(const StatsMap& settings,
                                     std::vector<UnreadableStat>& unreadable);

}  // namespace mcb
