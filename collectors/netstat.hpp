#pragma once
// The netstat collector: the kernel's TCP listen-queue counters from /proc/net/netstat and
// /proc/net/snmp (per network namespace), and the TCP segments sent and retransmitted (packet
// loss, for NetworkSaturated). Loop thread only.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "collectors/file_collector.hpp"

namespace mcb {

// "Prefix: Name Name ..." / "Prefix: value value ..." line pairs, as in /proc/net/netstat and
// /proc/net/snmp: prefix -> counter name -> value.
using NetstatTable =
    std::map<std::string, std::map<std::string, std::int64_t, std::less<>>, std::less<>>;

// Pure. Errors: an odd number of lines, a value line whose prefix differs from its header, a
// header/value count mismatch, a value that is not an integer. Appends to `table`, so netstat and
// snmp parse into one table.
Status parse_netstat(std::string_view text, NetstatTable& table);

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

NetstatSample netstat_sample(const NetstatTable& table);
Families netstat_families(const NetstatSample& sample);

class NetstatCollector final : public FileCollector<NetstatSample> {
 public:
  explicit NetstatCollector(std::string procfs) : procfs_(std::move(procfs)) {}
  std::string_view name() const override { return "netstat"; }

 private:
  Result<NetstatSample> read() override;
  Families families(const NetstatSample& s) const override { return netstat_families(s); }

  std::string procfs_;
};

}  // namespace mcb
