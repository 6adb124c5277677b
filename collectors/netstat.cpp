#include "collectors/netstat.hpp"

#include <charconv>
#include <vector>

#include "collectors/procfs.hpp"
#include "common/families.hpp"
#include "common/text.hpp"

namespace mcb {
namespace {

std::optional<std::int64_t> find(const NetstatTable& t, std::string_view prefix,
                                 std::string_view name) {
  auto p = t.find(prefix);
  if (p == t.end()) return std::nullopt;
  auto v = p->second.find(name);
  if (v == p->second.end()) return std::nullopt;
  return v->second;
}

}  // namespace

Status parse_netstat(std::string_view text, NetstatTable& table) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) lines.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  if (lines.size() % 2 != 0) {
    return fail("line " + std::to_string(lines.size()) + ": a header line without its value line");
  }
  for (std::size_t i = 0; i < lines.size(); i += 2) {
    const auto names = split_words(lines[i]);
    const auto values = split_words(lines[i + 1]);
    const std::string where = "line " + std::to_string(i + 2);
    if (names.empty() || names[0].empty() || names[0].back() != ':') {
      return fail("line " + std::to_string(i + 1) + ": expected \"Prefix: Name ...\"");
    }
    if (values.empty() || values[0] != names[0]) {
      return fail(where + ": values do not follow their header " + quote_untrusted(names[0]));
    }
    if (names.size() != values.size()) {
      return fail(where + ": " + std::to_string(names.size() - 1) + " names but " +
                  std::to_string(values.size() - 1) + " values");
    }
    auto& group = table[std::string(names[0].substr(0, names[0].size() - 1))];
    for (std::size_t k = 1; k < names.size(); ++k) {
      std::int64_t v = 0;
      const std::string_view s = values[k];
      auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec != std::errc() || ptr != s.data() + s.size()) {
        return fail(where + ": value " + quote_untrusted(s) + " of " + escape_untrusted(names[k]) +
                    " is not an integer");
      }
      group[std::string(names[k])] = v;
    }
  }
  return ok_status();
}

NetstatSample netstat_sample(const NetstatTable& t) {
  NetstatSample s;
  s.listen_overflows = find(t, "TcpExt", "ListenOverflows");
  s.listen_drops = find(t, "TcpExt", "ListenDrops");
  s.syn_queue_drops = find(t, "TcpExt", "TCPReqQFullDrop");
  s.syncookies_sent = find(t, "TcpExt", "SyncookiesSent");
  s.passive_opens = find(t, "Tcp", "PassiveOpens");
  s.established = find(t, "Tcp", "CurrEstab");
  s.out_segments = find(t, "Tcp", "OutSegs");
  s.retransmitted_segments = find(t, "Tcp", "RetransSegs");
  return s;
}

Families netstat_families(const NetstatSample& s) {
  Families out;
  auto put = [&out](FamilyBuilder f, const std::optional<std::int64_t>& v) {
    if (v) std::move(f.add(static_cast<double>(*v))).into(out);
  };
  put(counter("mcbacklog_listen_overflows_total",
              "Connections the kernel dropped because a listener's accept queue was full "
              "(TcpExt ListenOverflows), for every listener in this network namespace."),
      s.listen_overflows);
  put(counter("mcbacklog_listen_drops_total",
              "Connection requests dropped at a listening socket for any reason, overflows "
              "included (TcpExt ListenDrops)."),
      s.listen_drops);
  put(counter("mcbacklog_syn_queue_drops_total",
              "SYNs dropped because a listener's SYN queue was full and syncookies were off "
              "(TcpExt TCPReqQFullDrop)."),
      s.syn_queue_drops);
  put(counter("mcbacklog_syncookies_sent_total",
              "SYN cookies sent because a listener's SYN queue was full (TcpExt SyncookiesSent)."),
      s.syncookies_sent);
  put(counter("mcbacklog_tcp_passive_opens_total",
              "TCP connections opened by peers to a listening socket (Tcp PassiveOpens)."),
      s.passive_opens);
  put(gauge("mcbacklog_tcp_established_connections",
            "TCP connections currently in ESTABLISHED or CLOSE_WAIT (Tcp CurrEstab)."),
      s.established);
  put(counter("mcbacklog_tcp_sent_segments_total",
              "TCP segments sent, retransmissions excluded (Tcp OutSegs), this network namespace."),
      s.out_segments);
  put(counter("mcbacklog_tcp_retransmitted_segments_total",
              "TCP segments retransmitted (Tcp RetransSegs), this network namespace: over "
              "mcbacklog_tcp_sent_segments_total, the share of packets lost on the way."),
      s.retransmitted_segments);
  return out;
}

Result<NetstatSample> NetstatCollector::read() {
  NetstatTable table;
  for (const char* file : {"/net/netstat", "/net/snmp"}) {
    const std::string path = procfs_ + file;
    auto text = read_file(path);
    if (!text) return text.error();
    if (auto parsed = parse_netstat(*text, table); !parsed) {
      return fail(path + ": " + parsed.error().message);
    }
  }
  return netstat_sample(table);
}

}  // namespace mcb
