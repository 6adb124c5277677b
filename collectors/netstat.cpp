#include "collectors/netstat.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>

#include "collectors/netns.hpp"
#include "common/families.hpp"
#include "common/text.hpp"

namespace mcb {
namespace {

// The counters NetstatSample holds: where each is in the files.
struct Wanted {
  std::string_view prefix;
  std::string_view name;
  std::optional<std::int64_t> NetstatSample::*field;
};
constexpr Wanted kWanted[] = {
    {"TcpExt", "ListenOverflows", &NetstatSample::listen_overflows},
    {"TcpExt", "ListenDrops", &NetstatSample::listen_drops},
    {"TcpExt", "TCPReqQFullDrop", &NetstatSample::syn_queue_drops},
    {"TcpExt", "SyncookiesSent", &NetstatSample::syncookies_sent},
    {"Tcp", "PassiveOpens", &NetstatSample::passive_opens},
    {"Tcp", "CurrEstab", &NetstatSample::established},
    {"Tcp", "OutSegs", &NetstatSample::out_segments},
    {"Tcp", "RetransSegs", &NetstatSample::retransmitted_segments},
};

bool blank(char c) { return c == ' ' || c == '\t'; }

// Takes the next non-empty line (without its CR) off the front of `text`; false at the end.
bool next_line(std::string_view& text, std::string_view& line) {
  while (take_line(text, line)) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) return true;
  }
  return false;
}

// Takes the next word off the front of `line`; empty when none is left.
std::string_view next_word(std::string_view& line) {
  std::size_t start = 0;
  while (start < line.size() && blank(line[start])) ++start;
  std::size_t end = start;
  while (end < line.size() && !blank(line[end])) ++end;
  const std::string_view word = line.substr(start, end - start);
  line.remove_prefix(end);
  return word;
}

std::size_t count_words(std::string_view line) {
  std::size_t n = 0;
  while (!next_word(line).empty()) ++n;
  return n;
}

}  // namespace

Status parse_netstat(std::string_view text, NetstatSample& sample) {
  std::size_t line = 0;  // of the non-empty lines, as the error messages count them
  std::string_view names_line;
  std::string_view values_line;
  while (next_line(text, names_line)) {
    ++line;
    if (!next_line(text, values_line)) {
      return fail("line " + std::to_string(line) + ": a header line without its value line");
    }
    ++line;
    const auto where = [line] { return "line " + std::to_string(line); };
    std::string_view names = names_line;
    std::string_view values = values_line;
    const std::string_view prefix = next_word(names);
    if (prefix.empty() || prefix.back() != ':') {
      return fail("line " + std::to_string(line - 1) + ": expected \"Prefix: Name ...\"");
    }
    if (next_word(values) != prefix) {
      return fail(where() + ": values do not follow their header " + quote_untrusted(prefix));
    }
    const std::string_view group = prefix.substr(0, prefix.size() - 1);
    const bool wanted_group = std::any_of(std::begin(kWanted), std::end(kWanted),
                                          [group](const Wanted& w) { return w.prefix == group; });
    for (;;) {
      const std::string_view name = next_word(names);
      const std::string_view value = next_word(values);
      if (name.empty() && value.empty()) break;
      if (name.empty() || value.empty()) {
        return fail(where() + ": " + std::to_string(count_words(names_line) - 1) + " names but " +
                    std::to_string(count_words(values_line) - 1) + " values");
      }
      std::int64_t v = 0;
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc() || ptr != value.data() + value.size()) {
        return fail(where() + ": value " + quote_untrusted(value) + " of " +
                    escape_untrusted(name) + " is not an integer");
      }
      if (!wanted_group) continue;
      for (const Wanted& w : kWanted) {
        if (w.prefix == group && w.name == name) sample.*w.field = v;
      }
    }
  }
  return ok_status();
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

namespace {

// The directory whose net/netstat and net/snmp are those of `netns`: <procfs> for the daemon's
// own, <procfs>/PID for a process inside another, <procfs>/thread-self for a namespace file (the
// files are opened by a thread that entered it).
std::string net_root(const std::string& procfs, const std::optional<NetnsConfig>& netns) {
  if (!netns) return procfs;
  if (netns->pid != 0) return procfs + "/" + std::to_string(netns->pid);
  return procfs + "/thread-self";
}

}  // namespace

NetstatCollector::NetstatCollector(const std::string& procfs, std::optional<NetnsConfig> netns)
    : netstat_(net_root(procfs, netns) + "/net/netstat"),
      snmp_(net_root(procfs, netns) + "/net/snmp"),
      procfs_(procfs),
      netns_(std::move(netns)) {
  if (netns_) watch_.emplace(*netns_, procfs_);
}

Status NetstatCollector::open_in_netns() {
  // The files stay bound to the namespace they were opened in, even once the process or file
  // that named it is gone: check that it still is the target's, else open them again.
  if (auto st = watch_->check(); !st) {
    netstat_.close();
    snmp_.close();
    return st;
  }
  if (netstat_.is_open() && snmp_.is_open()) return ok_status();
  if (auto st = watch_->arm(); !st) return st;
  if (netns_->pid != 0) {  // /proc/PID/net: no need to enter
    if (auto st = netstat_.open(); !st) return st;
    return snmp_.open();
  }
  // A namespace file: open /proc/thread-self/net/* on a thread inside it.
  Status opened = ok_status();
  auto entered = run_in_netns(*netns_, procfs_, [&] {
    opened = netstat_.open();
    if (opened) opened = snmp_.open();
  });
  if (!entered) return entered;
  return opened;
}

Result<NetstatSample> NetstatCollector::read() {
  if (netns_) {
    if (auto st = open_in_netns(); !st) return st.error();
  }
  NetstatSample sample;
  for (ProcFile* file : {&netstat_, &snmp_}) {
    auto text = file->read();
    if (!text) return text.error();
    if (auto parsed = parse_netstat(*text, sample); !parsed) {
      return fail(escape_untrusted(file->path(), 4096) + ": " + parsed.error().message);
    }
  }
  return sample;
}

}  // namespace mcb
