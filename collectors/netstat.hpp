#pragma once
// The netstat collector: the kernel's TCP listen-queue counters from /proc/net/netstat and
// /proc/net/snmp (per network namespace), and the TCP segments sent and retransmitted (packet
// loss, for NetworkSaturated). For another namespace than the daemon's it reads /proc/PID/net/*
// of a process inside it (no privilege needed), or for a namespace file opens
// /proc/thread-self/net/* on a thread that entered it (collectors/netns.hpp); either way the
// files stay open, bound to that namespace. Loop thread only.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "collectors/file_collector.hpp"
#include "collectors/netns.hpp"
#include "collectors/procfs.hpp"
#include "config/config.hpp"

namespace mcb {

// What the collector exports; a counter the kernel does not have is absent.
struct NetstatSample {
  std::optional<std::int64_t> listen_overflows;  // TcpExt ListenOverflows
  std::optional<std::int64_t> listen_drops;      // TcpExt ListenDrops
  std::optional<std::int64_t> syn_queue_drops;   // TcpExt TCPReqQFullDrop
  std::optional<std::int64_t> syncookies_sent;   // TcpExt SyncookiesSent
  std::optional<std::int64_t> passive_opens;     // Tcp PassiveOpens
  std::optional<std::int64_t> established;       // Tcp CurrEstab
  std::optional<std::int64_t> out_segments;      // Tcp OutSegs: segments sent, retransmissions
                                                 // excluded
  std::optional<std::int64_t> retransmitted_segments;  // Tcp RetransSegs
};

// Pure: reads the counters of NetstatSample from "Prefix: Name Name ..." / "Prefix: value
// value ..." line pairs, as in /proc/net/netstat and /proc/net/snmp, into `sample` (so netstat
// and snmp parse into one sample); a counter the text does not name is left as it was. Every
// pair is checked whole, but only the counters the sample holds are stored: no table of the
// other hundred and fifty, and no allocation unless the text is malformed. Errors: an odd number
// of lines, a header line not ending its first word in ':', a value line whose prefix differs
// from its header, a header/value count mismatch, a value that is not an integer.
Status parse_netstat(std::string_view text, NetstatSample& sample);

Families netstat_families(const NetstatSample& sample);

// Keeps both files open and reads them again from their start (ProcFile): every run, or paced
// (FileCollector::pace) every `interval` while the watched listeners are at rest (their own drop
// counters, which count every listen overflow and drop at them, still, and no accept queue sampled
// closely: SockdiagCollector::listeners_at_rest) and every run while they are not. The kernel
// formats about two hundred counters for the two files, the largest file read of an idle cycle.
// For another namespace they are opened at the first run and after a failed one (a namespace file
// is entered only then), and closed when the namespace is no longer the target's (NetnsWatch).
class NetstatCollector final : public FileCollector<NetstatSample> {
 public:
  // `netns` unset: the daemon's own namespace.
  explicit NetstatCollector(const std::string& procfs,
                            std::optional<NetnsConfig> netns = std::nullopt);
  std::string_view name() const override { return "netstat"; }

 private:
  Result<NetstatSample> read() override;
  Families families(const NetstatSample& s) const override { return netstat_families(s); }
  // Another namespace: opens both files there unless they are open and it is still the target's.
  Status open_in_netns();

  ProcFile netstat_;
  ProcFile snmp_;
  std::string procfs_;
  std::optional<NetnsConfig> netns_;
  std::optional<NetnsWatch> watch_;  // with netns_
};

}  // namespace mcb
