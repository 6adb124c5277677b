// Cause 4 driven for real: a veth pair in the test's own network namespace, a link speed given in
// the configuration (veth has none worth the name), and raw Ethernet frames sent across it,
// shaped by tbf to a known rate. Also the drivers' counters through the ethtool ioctl, and which
// devices are watched by default.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "collectors/ethtool.hpp"
#include "daemon/alerts/alert_state.hpp"
#include "tests/support/alerts.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/load.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

void run(const std::string& command) {
  const auto r = test::run_command(command);
  INFO(command << ": " << r.output);
  REQUIRE(r.exit_code == 0);
}

// Frames of `size` bytes from `device` (which needs no address) to the broadcast address, about
// `offered_mbit` a second in bursts every 2 ms: more than the qdisc lets through, which then
// sets the rate.
class RawFrames {
 public:
  RawFrames(const std::string& device, std::size_t size, double offered_mbit)
      : threads_(1, [device, size, offered_mbit](int /*index*/, test::LoadThreads& self) {
          const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
          if (fd < 0) throw std::runtime_error("AF_PACKET socket: " + std::string(strerror(errno)));
          const test::Socket owned(fd);
          sockaddr_ll to{};
          to.sll_family = AF_PACKET;
          to.sll_ifindex = static_cast<int>(::if_nametoindex(device.c_str()));
          to.sll_halen = ETH_ALEN;
          std::memset(to.sll_addr, 0xff, ETH_ALEN);
          std::string frame(size, '\0');
          std::memset(frame.data(), 0xff, ETH_ALEN);  // to everyone on the link
          frame[12] = static_cast<char>(0x88);        // EtherType 0x88b5: local experiment
          frame[13] = static_cast<char>(0xb5);
          const auto per_burst =
              static_cast<int>(offered_mbit * 1e6 / 8 * 0.002 / static_cast<double>(size)) + 1;
          while (!self.stopping()) {
            for (int i = 0; i < per_burst; ++i) {
              // The qdisc drops what it cannot queue (ENOBUFS): the shaping, not an error.
              (void)::sendto(fd, frame.data(), frame.size(), 0,
                             reinterpret_cast<const sockaddr*>(&to), sizeof to);
            }
            self.done();
            std::this_thread::sleep_for(2ms);
          }
        }) {}

 private:
  test::LoadThreads threads_;
};

const AlertStatus* device_alert(const std::vector<AlertStatus>& all, const std::string& alert,
                                const std::string& device) {
  for (const AlertStatus& a : all) {
    if (a.name == alert && a.labels == AlertLabels{{"device", device}}) return &a;
  }
  return nullptr;
}

// Polls /alerts until NetworkSaturated of `device` holds at `level` (its condition).
AlertStatus wait_for_network(test::Daemon& d, const std::string& device, Level level) {
  AlertStatus last;
  const bool reached = test::eventually(
      [&] {
        const auto all = test::alerts(d);
        const AlertStatus* a = device_alert(all, "NetworkSaturated", device);
        if (a == nullptr) return false;
        last = *a;
        return a->condition == level;
      },
      30s);
  INFO("last NetworkSaturated of " << device << ": " << level_name(last.condition) << ": "
                                   << test::evidence(last) << "\ndaemon log:\n"
                                   << d.output());
  REQUIRE(reached);
  return last;
}

std::string utilisation(const std::string& device, const std::string& direction) {
  return "mcbacklog_network_utilization_ratio{device=\"" + device + "\",direction=\"" + direction +
         "\"}";
}

}  // namespace

TEST_CASE("nic: traffic shaped across a veth of a configured speed, and the alert at its levels",
          "[integration][netdev][nic]") {
  test::enter_private_netns();
  test::PrivateSysfs sysfs;
  run("ip link add mcb0 type veth peer name mcb1");
  run("ip link set mcb0 up");
  run("ip link set mcb1 up");
  // 9 of the 10 Mbit/s the configuration gives the link.
  run("tc qdisc replace dev mcb0 root tbf rate 9mbit burst 10kb latency 50ms");
  test::Daemon d(
      "interval: 500ms\ntargets: []\n"
      "collectors:\n  sockdiag: { enabled: false }\n"
      "  netdev: { include: \"^mcb\", speeds: { mcb0: 10Mbit } }\n"
      "paths: { sysfs: " +
      sysfs.path() +
      " }\n"
      "thresholds:\n"
      // The host's softnet drops and this namespace's retransmissions are no business of this
      // test: their levels are out of reach.
      "  NetworkSaturated: { warning: 0.5, critical: 0.7, clear: 0.4, for: 0s, window: 5s,\n"
      "                      softnet_drops_warning: 1e9, softnet_drops_critical: 1e9,\n"
      "                      retransmit_warning: 1, retransmit_critical: 1 }\n");
  const std::string tx = utilisation("mcb0", "transmit");
  {
    const auto first = d.wait_for_metrics(
        [&](const std::string& m) { return test::metric_value(m, tx).has_value(); });
    INFO(d.output());
    REQUIRE(first.has_value());
    CHECK(test::metric_value(*first, R"(mcbacklog_network_speed_bytes{device="mcb0"})") ==
          1'250'000);
    CHECK(test::metric_value(*first, tx) < 0.1);
  }

  RawFrames frames("mcb0", 1400, 30);
  // 9 Mbit/s of 10: critical (0.7).
  const auto shaped = d.wait_for_metrics(
      [&](const std::string& m) { return test::metric_value(m, tx).value_or(0) >= 0.7; }, 30s);
  INFO(d.output());
  REQUIRE(shaped.has_value());
  CHECK(*test::metric_value(*shaped, tx) <= 1.1);  // tbf lets no more through than its rate
  AlertStatus a = wait_for_network(d, "mcb0", Level::kCritical);
  CHECK_THAT(test::evidence(a), Contains("of its link speed (10 Mbit/s as configured)"));
  CHECK(*a.verdict->value >= 0.7);

  // 6 Mbit/s: a warning (0.5).
  run("tc qdisc change dev mcb0 root tbf rate 6mbit burst 10kb latency 50ms");
  a = wait_for_network(d, "mcb0", Level::kWarning);
  CHECK(*a.verdict->value >= 0.5);
  CHECK(*a.verdict->value < 0.7);

  // 2 Mbit/s: below clear (0.4), ok again.
  run("tc qdisc change dev mcb0 root tbf rate 2mbit burst 10kb latency 50ms");
  a = wait_for_network(d, "mcb0", Level::kOk);
  CHECK(*a.verdict->value < 0.4);
}

TEST_CASE("nic: a real veth's driver statistics through the ethtool ioctl",
          "[integration][netdev][ethtool]") {
  test::enter_private_netns();
  run("ip link add mcb0 type veth peer name mcb1");
  EthtoolReader reader;
  auto all = reader.read_all("mcb0");
  REQUIRE(all.ok());
  REQUIRE(all->has_value());
  const auto& names = (*all)->names;
  const auto& values = (*all)->values;
  REQUIRE(names.size() == values.size());
  // veth's first statistic is its peer's interface index.
  REQUIRE(names.at(0) == "peer_ifindex");
  CHECK(values.at(0) == ::if_nametoindex("mcb1"));
  CHECK(std::find(names.begin(), names.end(), "rx_queue_0_drops") != names.end());

  // The kept counters: veth's per-queue drops; the names are read once.
  auto first = reader.read("mcb0");
  REQUIRE(first.ok());
  REQUIRE(first->has_value());
  CHECK((*first)->receive_drops.has_value());
  const auto calls = reader.calls();
  REQUIRE(reader.read("mcb0").ok());
  CHECK(reader.calls() - calls == 2);  // the count and the values

  // Loopback has no driver statistics; a device that does not exist has none either.
  auto lo = reader.read("lo");
  REQUIRE(lo.ok());
  CHECK_FALSE(lo->has_value());
  auto none = reader.read("mcb9");
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
}

TEST_CASE("nic: in a namespace without a NIC of its own the veth to the outside is watched",
          "[integration][netdev][nic]") {
  test::enter_private_netns();
  // The peer lives in another namespace, as a pod's eth0 has its peer on the host.
  test::Child outside({"/usr/bin/unshare", "-n", "sleep", "120"});
  REQUIRE(test::eventually([&] {
    return test::run_command("test \"$(readlink /proc/" + std::to_string(outside.pid()) +
                             "/ns/net)\" != \"$(readlink /proc/self/ns/net)\"")
               .exit_code == 0;
  }));
  run("ip link add mcb0 type veth peer name mcb1 netns " + std::to_string(outside.pid()));
  run("ip link set mcb0 up");
  // Devices that carry nothing off the host, or nothing mcb0 does not count already.
  run("ip link add ifb7 type ifb");
  run("ip link set ifb7 up");
  run("ip link add br7 type bridge");
  run("ip tuntap add tap7 mode tap");
  run("ip link add vx7 type vxlan id 7 dstport 4789 dev mcb0");
  run("ip link add link mcb0 name mv7 type macvlan mode bridge");  // stacked on mcb0
  run("ip link set vx7 up");
  run("ip link set mv7 up");
  test::PrivateSysfs sysfs;
  test::Daemon d(
      "interval: 200ms\ntargets: []\ncollectors:\n  sockdiag: { enabled: false }\n"
      "paths: { sysfs: " +
      sysfs.path() + " }\n");
  const std::string rx = R"(mcbacklog_network_receive_bytes_total{device="mcb0"})";
  const auto m = d.wait_for_metrics(
      [&](const std::string& text) { return test::metric_value(text, rx).has_value(); });
  INFO(d.output());
  REQUIRE(m.has_value());
  for (const char* other : {"lo", "ifb7", "br7", "tap7", "vx7", "mv7"}) {
    INFO(other);
    CHECK_FALSE(
        test::metric_value(
            *m, std::string("mcbacklog_network_receive_bytes_total{device=\"") + other + "\"}")
            .has_value());
  }
  // Its driver's drops, read through the ioctl.
  CHECK(test::metric_value(
            *m, R"(mcbacklog_network_driver_drops_total{device="mcb0",direction="receive"})")
            .has_value());
  // veth reports a speed of its own (10 Gbit/s), so its utilisation is measured.
  CHECK(test::metric_value(*m, R"(mcbacklog_network_speed_bytes{device="mcb0"})").has_value());
}

TEST_CASE("nic: a device without a known speed has no utilisation, and the alert's value is null",
          "[integration][netdev][nic]") {
  test::enter_private_netns();
  // A bridge without ports reports -1; ifb's speed read fails with EINVAL.
  run("ip link add br7 type bridge");
  run("ip link add ifb7 type ifb");
  run("ip link set br7 up");
  run("ip link set ifb7 up");
  test::PrivateSysfs sysfs;
  test::Daemon d(
      "interval: 200ms\ntargets: []\n"
      "collectors:\n  sockdiag: { enabled: false }\n"
      "  netdev: { include: \"^(br7|ifb7)$\" }\n"
      "paths: { sysfs: " +
      sysfs.path() + " }\n");
  for (const char* device : {"br7", "ifb7"}) {
    INFO(device);
    const AlertStatus a = wait_for_network(d, device, Level::kOk);
    REQUIRE(a.verdict.has_value());
    CHECK_FALSE(a.verdict->value.has_value());  // null in /alerts, never a measured-looking 0
    CHECK_THAT(test::evidence(a), Contains(std::string(device) + " reports no link speed") &&
                                      Contains("give it under collectors.netdev.speeds"));
  }
  const auto reply = d.get("/alerts");
  REQUIRE(reply.ok());
  CHECK_THAT(reply->body, Contains(R"("value":null)"));
  const std::string m = d.metrics();
  CHECK(
      test::metric_value(m, R"(mcbacklog_network_receive_bytes_total{device="br7"})").has_value());
  for (const char* series :
       {R"(mcbacklog_network_speed_bytes{device="br7"})",
        R"(mcbacklog_network_speed_bytes{device="ifb7"})",
        R"(mcbacklog_network_utilization_ratio{device="br7",direction="receive"})",
        R"(mcbacklog_network_utilization_ratio{device="ifb7",direction="transmit"})"}) {
    INFO(series);
    CHECK_FALSE(test::metric_value(m, series).has_value());
  }
}
