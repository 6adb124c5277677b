// The ethtool statistics replies: real captures of virtio_net and veth (capture_ethtool.py), the
// AWS ENA names from the driver's documented string table, and malformed replies.

#include <catch2/catch.hpp>

#include <linux/ethtool.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "collectors/ethtool.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using Catch::Matchers::Contains;

namespace {

std::vector<std::byte> fixture(const std::string& name) {
  std::ifstream in(test::source_dir() + "/tests/fixtures/ethtool/" + name, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream bytes;
  bytes << in.rdbuf();
  const std::string s = bytes.str();
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

template <class T>
void put(std::vector<std::byte>& out, T v) {
  const auto* p = reinterpret_cast<const std::byte*>(&v);
  out.insert(out.end(), p, p + sizeof v);
}

// A GSTRINGS reply holding `names`, as the kernel writes it.
std::vector<std::byte> strings_reply(const std::vector<std::string>& names,
                                     std::uint32_t set = ETH_SS_STATS) {
  std::vector<std::byte> out;
  put<std::uint32_t>(out, ETHTOOL_GSTRINGS);
  put<std::uint32_t>(out, set);
  put<std::uint32_t>(out, static_cast<std::uint32_t>(names.size()));
  for (const std::string& n : names) {
    std::byte field[kEthtoolNameBytes] = {};
    std::memcpy(field, n.data(), std::min(n.size(), kEthtoolNameBytes));
    out.insert(out.end(), field, field + kEthtoolNameBytes);
  }
  return out;
}

std::vector<std::byte> stats_reply(const std::vector<std::uint64_t>& values) {
  std::vector<std::byte> out;
  put<std::uint32_t>(out, ETHTOOL_GSTATS);
  put<std::uint32_t>(out, static_cast<std::uint32_t>(values.size()));
  for (std::uint64_t v : values) put(out, v);
  return out;
}

// The statistics an ENA device with one queue pair reports where the device has the ENI metrics:
// the driver's global strings, its ENI strings, its tx and rx strings for queue 0 (named
// "queue_0_tx_<name>" and "queue_0_rx_<name>") and its admin-queue strings, in the order of the
// string table of the driver's ena_ethtool.c.
std::vector<std::string> ena_names() {
  std::vector<std::string> names{"tx_timeout",
                                 "suspend",
                                 "resume",
                                 "wd_expired",
                                 "interface_up",
                                 "interface_down",
                                 "admin_q_pause",
                                 "bw_in_allowance_exceeded",
                                 "bw_out_allowance_exceeded",
                                 "pps_allowance_exceeded",
                                 "conntrack_allowance_exceeded",
                                 "linklocal_allowance_exceeded",
                                 "conntrack_allowance_available"};
  for (const char* tx :
       {"cnt", "bytes", "queue_stop", "queue_wakeup", "dma_mapping_err", "linearize",
        "linearize_failed", "napi_comp", "tx_poll", "doorbells", "prepare_ctx_err", "bad_req_id",
        "llq_buffer_copy", "missed_tx", "unmask_interrupt"}) {
    names.push_back(std::string("queue_0_tx_") + tx);
  }
  for (const char* rx : {"cnt", "bytes", "rx_copybreak_pkt", "csum_good", "refil_partial",
                         "csum_bad", "page_alloc_fail", "skb_alloc_fail", "dma_mapping_err",
                         "bad_desc_num", "bad_req_id", "empty_rx_ring", "csum_unchecked"}) {
    names.push_back(std::string("queue_0_rx_") + rx);
  }
  for (const char* admin :
       {"aborted_cmd", "submitted_cmd", "completed_cmd", "out_of_space", "no_completion"}) {
    names.push_back(std::string("ena_admin_q_") + admin);
  }
  return names;
}

}  // namespace

TEST_CASE("ethtool: virtio_net's captured statistics: its drop totals, no allowances",
          "[collectors][ethtool]") {
  auto count = parse_sset_info(fixture("virtio_net-eth0.sset_info"));
  REQUIRE(count.ok());
  CHECK(*count == 20);
  auto names = parse_gstrings(fixture("virtio_net-eth0.strings"));
  REQUIRE(names.ok());
  REQUIRE(names->size() == 20);
  CHECK(names->front() == "rx_drops");
  CHECK(std::find(names->begin(), names->end(), "rx0_drops") != names->end());
  auto values = parse_gstats(fixture("virtio_net-eth0.stats"));
  REQUIRE(values.ok());
  REQUIRE(values->size() == 20);
  const auto kicks = std::find(names->begin(), names->end(), "tx_kicks") - names->begin();
  CHECK((*values)[static_cast<std::size_t>(kicks)] > 0);  // the NIC carried this session's traffic

  const DriverCounters c = DriverCounterMap(*names).apply(*values);
  // The driver's own rx_drops total, not added to its per-queue rx0_drops again.
  CHECK(c.receive_drops == (*values)[0]);
  CHECK_FALSE(c.transmit_drops.has_value());  // tx_xdp_tx_drops are XDP's, not counted
  for (const auto& a : c.allowance_exceeded) CHECK_FALSE(a.has_value());
  CHECK_FALSE(c.conntrack_allowance_available.has_value());
}

TEST_CASE("ethtool: veth's captured statistics: its per-queue drops and its peer",
          "[collectors][ethtool]") {
  CHECK(*parse_sset_info(fixture("veth-veth0.sset_info")) == 10);
  auto names = parse_gstrings(fixture("veth-veth0.strings"));
  auto values = parse_gstats(fixture("veth-veth0.stats"));
  REQUIRE(names.ok());
  REQUIRE(values.ok());
  REQUIRE(names->size() == values->size());
  CHECK(names->at(0) == "peer_ifindex");
  CHECK(values->at(0) == 2);  // veth1 was interface 2 of the capture's namespace
  CHECK(names->at(3) == "rx_queue_0_drops");
  const DriverCounters c = DriverCounterMap(*names).apply(*values);
  CHECK(c.receive_drops == values->at(3));
  CHECK_FALSE(c.transmit_drops.has_value());
  CHECK(c.allowance_exceeded[0] == std::nullopt);
}

TEST_CASE("ethtool: ENA's allowance counters are found by the driver's names",
          "[collectors][ethtool]") {
  const std::vector<std::string> names = ena_names();
  std::vector<std::uint64_t> values(names.size());
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = 1000 + i;
  auto parsed_names = parse_gstrings(strings_reply(names));
  auto parsed_values = parse_gstats(stats_reply(values));
  REQUIRE(parsed_names.ok());
  REQUIRE(parsed_values.ok());
  CHECK(*parsed_names == names);
  const DriverCounters c = DriverCounterMap(*parsed_names).apply(*parsed_values);
  for (std::size_t a = 0; a < kAllowanceCount; ++a) {
    const auto stat = allowance_stat(static_cast<Allowance>(a));
    const auto at = std::find(names.begin(), names.end(), stat) - names.begin();
    INFO(stat);
    CHECK(c.allowance_exceeded[a] == 1000 + static_cast<std::uint64_t>(at));
  }
  CHECK(c.conntrack_allowance_available == 1012);
  CHECK(allowance_label(Allowance::kBwOut) == "bw_out");
  // ENA names no drop counter per queue.
  CHECK_FALSE(c.receive_drops.has_value());
  CHECK_FALSE(c.transmit_drops.has_value());
  CHECK_FALSE(c.empty());
}

TEST_CASE("ethtool: per-queue drops are summed per direction in each driver's naming",
          "[collectors][ethtool]") {
  const std::vector<std::string> names{
      "rx_queue_0_drops", "rx_queue_1_drops", "tx_queue_0_drops",     "rx0_drops",
      "tx1_drops",        "queue_2_rx_drops", "rx_queue_0_xdp_drops", "rx_dropped_weird",
      "queue_x_rx_drops"};
  const std::vector<std::uint64_t> values{1, 2, 4, 8, 16, 32, 64, 128, 256};
  const DriverCounters c = DriverCounterMap(names).apply(values);
  CHECK(c.receive_drops == 1 + 2 + 8 + 32);
  CHECK(c.transmit_drops == 4 + 16);
  CHECK(DriverCounterMap({"tx_packets"}).apply(std::vector<std::uint64_t>{5}).empty());
}

TEST_CASE("ethtool: a name filling all 32 bytes has no NUL and is read whole",
          "[collectors][ethtool]") {
  const std::string full(32, 'x');
  auto names = parse_gstrings(strings_reply({full, "rx_drops"}));
  REQUIRE(names.ok());
  CHECK(names->at(0) == full);
  CHECK(names->at(1) == "rx_drops");
}

TEST_CASE("ethtool: malformed replies are errors, never reads past the buffer",
          "[collectors][ethtool]") {
  CHECK_THAT(parse_sset_info({}).error().message, Contains("a reply of 0 bytes"));
  std::vector<std::byte> info;
  put<std::uint32_t>(info, ETHTOOL_GSSET_INFO);
  put<std::uint32_t>(info, 0);
  put<std::uint64_t>(info, 0);  // the driver has no statistics
  CHECK(*parse_sset_info(info) == 0);
  std::vector<std::byte> with_bit = info;
  with_bit[8] = std::byte{1 << ETH_SS_STATS};
  CHECK_THAT(parse_sset_info(with_bit).error().message, Contains("20 expected"));
  put<std::uint32_t>(with_bit, kMaxEthtoolStats + 1);
  CHECK_THAT(parse_sset_info(with_bit).error().message, Contains("at most 65536"));

  auto strings = strings_reply({"a", "b"});
  strings.resize(strings.size() - 1);  // the last name cut short
  CHECK_THAT(parse_gstrings(strings).error().message, Contains("76 expected"));
  CHECK_THAT(parse_gstrings(strings_reply({"a"}, 0)).error().message,
             Contains("string set 0, expected 1"));
  CHECK_THAT(parse_gstrings(std::vector<std::byte>(5)).error().message, Contains("12 expected"));

  auto stats = stats_reply({1, 2, 3});
  stats.resize(stats.size() - 8);
  CHECK_THAT(parse_gstats(stats).error().message, Contains("32 expected"));
  std::vector<std::byte> huge;
  put<std::uint32_t>(huge, ETHTOOL_GSTATS);
  put<std::uint32_t>(huge, 0xffffffffu);
  CHECK_THAT(parse_gstats(huge).error().message, Contains("at most 65536"));
}
