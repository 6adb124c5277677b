// /proc/net/dev and sysfs link speeds: the captured fixtures, rates, resets and bad files.

#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

#include "collectors/netdev.hpp"
#include "common/families.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

std::string fixtures() { return test::source_dir() + "/tests/fixtures"; }

constexpr std::string_view kHeader =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n";

std::string dev_line(const std::string& name, std::uint64_t rx, std::uint64_t tx) {
  return name + ": " + std::to_string(rx) + " 1 0 0 0 0 0 0 " + std::to_string(tx) +
         " 1 0 0 0 0 0 0\n";
}

NetdevDevice device(const std::string& name, std::uint64_t rx, std::uint64_t tx,
                    std::optional<std::uint64_t> speed) {
  NetdevDevice d;
  d.counters.device = name;
  d.counters.receive_bytes = rx;
  d.counters.transmit_bytes = tx;
  d.speed_bytes = speed;
  return d;
}

// A clock the test moves by hand.
struct FakeClock {
  NetdevCollector::Clock::time_point now{};
  std::function<NetdevCollector::Clock::time_point()> fn() {
    return [this] { return now; };
  }
};

Status run(NetdevCollector& c) {
  std::optional<Status> result;
  c.collect([&](Status s) { result = std::move(s); });
  REQUIRE(result.has_value());
  return *result;
}

}  // namespace

TEST_CASE("netdev: the captured /proc/net/dev gives each device's counters",
          "[collectors][netdev]") {
  auto devices = parse_net_dev(test::read_text_file(fixtures() + "/proc/net/dev"));
  REQUIRE(devices.ok());
  REQUIRE(devices->size() == 5);
  const NetdevCounters& lo = (*devices)[0];
  CHECK(lo.device == "lo");
  CHECK(lo.receive_bytes == 2420);
  CHECK(lo.transmit_packets == 10);
  const NetdevCounters& veth0 = (*devices)[2];
  CHECK(veth0.device == "veth0");
  CHECK(veth0.receive_bytes == 266);
  CHECK(veth0.transmit_bytes == 58036);
  CHECK(veth0.transmit_packets == 44);
  CHECK(veth0.transmit_drops == 7);  // sent while its peer was down
  CHECK(veth0.receive_drops == 0);
  CHECK((*devices)[1].receive_bytes == 58036);  // veth1 received what veth0 sent
  CHECK((*devices)[4].device == "tap0");
}

TEST_CASE("netdev: columns are found by name, and long names touch the colon",
          "[collectors][netdev]") {
  // Columns in another order than today's kernels write them.
  const std::string text =
      "Inter-|   Receive  |  Transmit\n"
      " face |packets drop errs bytes|drop bytes packets errs\n"
      "a-very-long-nam:1 2 3 4 5 6 7 8\n";
  auto d = parse_net_dev(text);
  REQUIRE(d.ok());
  REQUIRE(d->size() == 1);
  CHECK((*d)[0].device == "a-very-long-nam");
  CHECK((*d)[0].receive_packets == 1);
  CHECK((*d)[0].receive_drops == 2);
  CHECK((*d)[0].receive_errors == 3);
  CHECK((*d)[0].receive_bytes == 4);
  CHECK((*d)[0].transmit_drops == 5);
  CHECK((*d)[0].transmit_bytes == 6);
  CHECK(parse_net_dev(std::string(kHeader))->empty());
}

TEST_CASE("netdev: a bad /proc/net/dev is an error saying which line and why",
          "[collectors][netdev]") {
  const std::string h(kHeader);
  CHECK_THAT(parse_net_dev("").error().message, Contains("line 1: expected"));
  CHECK_THAT(parse_net_dev("Inter-| Receive | Transmit\n face bytes packets\n").error().message,
             Contains("line 2: expected"));
  CHECK_THAT(parse_net_dev("Inter-| Receive | Transmit\n face |bytes packets errs|bytes packets "
                           "errs drop\n")
                 .error()
                 .message,
             Contains("line 2: no \"drop\" column for receive"));
  CHECK_THAT(parse_net_dev(h + "eth0 1 2 3\n").error().message,
             Contains("line 3: expected \"device: counters\""));
  CHECK_THAT(parse_net_dev(h + "eth0: 1 2 3\n").error().message,
             Contains("line 3: 3 values, the header names 16"));
  CHECK_THAT(parse_net_dev(h + dev_line("eth0", 1, 2) +
                           "eth1: 1 2 3 4 5 6 7 8 9 10 11 12 13 "
                           "14 15 -16\n")
                 .error()
                 .message,
             Contains("line 4: value \"-16\" is not an unsigned integer"));
  CHECK_FALSE(
      parse_net_dev(h + "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 99999999999999999999\n").ok());
  // A device listed twice would be two series of one name.
  CHECK(parse_net_dev(h + dev_line("eth0", 1, 2) + dev_line("lo", 3, 4) + dev_line("eth0", 5, 6))
            .error()
            .message == "line 5: device \"eth0\" is listed twice");
}

TEST_CASE("netdev: a link speed in Mbit/s is bytes per second, -1 is unknown",
          "[collectors][netdev]") {
  CHECK(*parse_link_speed("10000\n") == std::optional<std::uint64_t>{1'250'000'000});
  CHECK(*parse_link_speed(test::read_text_file(fixtures() + "/sys/class/net/veth0/speed")) ==
        std::optional<std::uint64_t>{1'250'000'000});
  CHECK_FALSE(
      parse_link_speed(test::read_text_file(fixtures() + "/sys/class/net/br0/speed"))->has_value());
  CHECK_FALSE(parse_link_speed("0\n")->has_value());
  CHECK_FALSE(parse_link_speed("fast\n").ok());
}

TEST_CASE("netdev: utilisation is the byte rate over the link speed, per direction",
          "[collectors][netdev]") {
  NetdevSample before{{device("eth0", 1000, 5000, 1000), device("lo", 0, 0, std::nullopt)}};
  NetdevSample after{{device("eth0", 1500, 5000 + 1600, 1000), device("lo", 10, 10, std::nullopt),
                      device("new0", 10, 10, 1000)}};
  compute_utilization(after, before, 2.0);
  CHECK(after.devices[0].receive_utilization == Approx(0.25));
  CHECK(after.devices[0].transmit_utilization == Approx(0.8));
  CHECK_FALSE(after.devices[1].receive_utilization.has_value());   // speed unknown
  CHECK_FALSE(after.devices[2].transmit_utilization.has_value());  // no earlier sample
}

TEST_CASE("netdev: a counter that went backwards gives no rate rather than a negative one",
          "[collectors][netdev]") {
  NetdevSample before{{device("eth0", 9000, 100, 1000)}};
  NetdevSample after{{device("eth0", 200, 300, 1000)}};
  compute_utilization(after, before, 1.0);
  CHECK_FALSE(after.devices[0].receive_utilization.has_value());
  CHECK(after.devices[0].transmit_utilization == Approx(0.2));
}

TEST_CASE("netdev: by default the NICs a device backs and bonds are watched, not their members",
          "[collectors][netdev]") {
  test::TempDir root;
  const std::string procfs = root.path() + "/proc";
  const std::string sysfs = root.path() + "/sys";
  auto write_dev = [&](std::uint64_t eth_rx, std::uint64_t eth_tx) {
    root.write("proc/net/dev",
               std::string(kHeader) + dev_line("lo", 5, 5) + dev_line("eth0", eth_rx, eth_tx) +
                   dev_line("veth7", 1, 1) + dev_line("br0", 1, 1) + dev_line("ifb0", 1, 1) +
                   dev_line("bond0", 1, 1) + dev_line("eth1", 1, 1) + dev_line("eth2", 1, 1));
  };
  auto dir = [&](const std::string& path) {
    std::filesystem::create_directories(root.path() + "/sys/class/net/" + path);
  };
  write_dev(1000, 1000);
  // eth0 and eth2 are backed by devices, eth1 too but it is bond0's member.
  for (const char* d : {"lo", "veth7", "br0", "ifb0"}) dir(d);
  for (const char* d :
       {"eth0/device", "eth1/device", "eth1/bonding_slave", "eth2/device", "bond0/bonding"}) {
    dir(d);
  }
  root.write("sys/class/net/eth0/speed", "1\n");  // 125000 bytes/s
  root.write("sys/class/net/br0/speed", "-1\n");  // eth2 has no speed file at all
  FakeClock clock;
  NetdevConfig config;
  config.speeds["eth2"] = 8e6;  // 8 Mbit/s: 1,000,000 bytes/s
  config.driver_stats = false;
  NetdevCollector c(config, procfs, sysfs, clock.fn());

  REQUIRE(run(c).ok());
  REQUIRE(c.last().has_value());
  std::vector<std::string> watched;
  for (const NetdevDevice& d : c.last()->devices) watched.push_back(d.counters.device);
  CHECK(watched == std::vector<std::string>{"eth0", "bond0", "eth2"});
  const NetdevDevice& eth0 = c.last()->devices[0];
  CHECK(eth0.speed_bytes == std::optional<std::uint64_t>{125000});
  CHECK(eth0.speed_source == SpeedSource::kDriver);
  CHECK_FALSE(eth0.receive_utilization.has_value());  // first run
  CHECK_FALSE(c.last()->devices[1].speed_bytes.has_value());
  CHECK(c.last()->devices[2].speed_bytes == std::optional<std::uint64_t>{1'000'000});
  CHECK(c.last()->devices[2].speed_source == SpeedSource::kConfigured);

  clock.now += 2s;
  write_dev(1000 + 125000, 1000 + 25000);
  REQUIRE(run(c).ok());
  CHECK(c.last()->devices[0].receive_utilization == Approx(0.5));
  CHECK(c.last()->devices[0].transmit_utilization == Approx(0.1));

  // A configured speed wins over the driver's.
  config.speeds["eth0"] = 2e6;  // 250000 bytes/s
  config.exclude = "^eth2$";    // exclude narrows the default
  NetdevCollector configured(config, procfs, sysfs, clock.fn());
  REQUIRE(run(configured).ok());
  REQUIRE(configured.last()->devices.size() == 2);
  CHECK(configured.last()->devices[0].speed_bytes == std::optional<std::uint64_t>{250000});

  // A non-empty include replaces the default.
  config.include = "^(veth|br)";
  config.exclude = "^br";
  NetdevCollector only_veth(config, procfs, sysfs, clock.fn());
  REQUIRE(run(only_veth).ok());
  REQUIRE(only_veth.last()->devices.size() == 1);
  CHECK(only_veth.last()->devices[0].counters.device == "veth7");
}

TEST_CASE("netdev: a device that appears is classified at once, not a minute later",
          "[collectors][netdev]") {
  test::TempDir root;
  FakeClock clock;
  NetdevConfig config;
  config.driver_stats = false;
  NetdevCollector c(config, root.path() + "/proc", root.path() + "/sys", clock.fn());
  root.write("proc/net/dev", std::string(kHeader) + dev_line("lo", 1, 1));
  REQUIRE(run(c).ok());
  CHECK(c.last()->devices.empty());
  root.write("proc/net/dev", std::string(kHeader) + dev_line("lo", 1, 1) + dev_line("ens5", 1, 1));
  std::filesystem::create_directories(root.path() + "/sys/class/net/ens5/device");
  clock.now += 1s;
  REQUIRE(run(c).ok());
  REQUIRE(c.last()->devices.size() == 1);
  CHECK(c.last()->devices[0].counters.device == "ens5");
}

TEST_CASE("netdev: the default selection from what each device is", "[collectors][netdev]") {
  auto facts = [](std::string name, bool backed, std::string driver) {
    DeviceFacts f;
    f.name = std::move(name);
    f.known = true;
    f.backed = backed;
    f.driver = std::move(driver);
    return f;
  };
  using Set = std::set<std::string, std::less<>>;
  // A host: its NIC; not the containers' veths, a VLAN, a macvlan, a bridge, ifb, tun.
  std::vector<DeviceFacts> host{facts("lo", false, ""),
                                facts("ens5", true, "ena"),
                                facts("docker0", false, "bridge"),
                                facts("veth1a2b", false, "veth"),
                                facts("ens5.100", false, "802.1Q VLAN Support"),
                                facts("mv0", false, "macvlan"),
                                facts("ifb0", false, "ifb"),
                                facts("tun0", false, "tun"),
                                facts("vxlan.calico", false, "vxlan")};
  CHECK(default_selection(host) == Set{"ens5"});
  // A pod: no NIC of its own; its eth0 is a veth whose peer lives on the host. A VLAN on it or a
  // tunnel beside it are not watched.
  std::vector<DeviceFacts> pod{facts("lo", false, ""), facts("eth0", false, "veth"),
                               facts("eth0.5", false, "802.1Q VLAN Support"),
                               facts("tunl0", false, "ipip")};
  CHECK(default_selection(pod) == Set{"eth0"});
  // A pod whose eth0 is a macvlan or an ipvlan (of a device in the host's namespace).
  CHECK(default_selection(std::vector<DeviceFacts>{facts("net1", false, "macvlan"),
                                                   facts("net2", false, "ipvlan")}) ==
        Set{"net1", "net2"});
  // A macvlan stacked on the pod's own veth: the veth counts its traffic already.
  DeviceFacts stacked = facts("mv0", false, "macvlan");
  stacked.stacked = true;
  CHECK(default_selection(std::vector<DeviceFacts>{facts("eth0", false, "veth"), stacked}) ==
        Set{"eth0"});
  // Bonds instead of their members.
  DeviceFacts member = facts("eth1", true, "ixgbe");
  member.bond_member = true;
  DeviceFacts bond = facts("bond0", false, "bonding");
  bond.bond = true;
  CHECK(default_selection(std::vector<DeviceFacts>{member, bond}) == Set{"bond0"});
  // Devices this sysfs does not show (another namespace's sysfs) are never chosen.
  DeviceFacts unknown;
  unknown.name = "eth0";
  CHECK(default_selection(std::vector<DeviceFacts>{unknown}).empty());
}

TEST_CASE("netdev: what sysfs says of a device is read from its files", "[collectors][netdev]") {
  test::TempDir root;
  std::filesystem::create_directories(root.path() + "/class/net/eth0/device");
  std::filesystem::create_directories(root.path() + "/class/net/eth1/bonding_slave");
  std::filesystem::create_directories(root.path() + "/class/net/bond0/bonding");
  std::filesystem::create_directories(root.path() + "/class/net/mv0/lower_eth0");
  const DeviceFacts eth0 = read_device_facts(root.path(), "eth0");
  CHECK(eth0.known);
  CHECK(eth0.backed);
  CHECK_FALSE(eth0.bond);
  CHECK(read_device_facts(root.path(), "eth1").bond_member);
  CHECK(read_device_facts(root.path(), "bond0").bond);
  CHECK(read_device_facts(root.path(), "mv0").stacked);
  CHECK_FALSE(eth0.stacked);
  CHECK_FALSE(read_device_facts(root.path(), "eth9").known);
}

TEST_CASE(
    "netdev: an unreadable /proc/net/dev fails the run naming the path with no stale series, an "
    "unreadable speed only its device",
    "[collectors][netdev]") {
  test::TempDir root;
  NetdevConfig config;
  config.driver_stats = false;
  NetdevCollector c(config, root.path() + "/proc", root.path() + "/sys");
  CHECK_THAT(run(c).error().message, Contains("/proc/net/dev: no such file"));

  root.write("proc/net/dev", std::string(kHeader) + dev_line("eth0", 1, 2));
  std::filesystem::create_directories(root.path() + "/sys/class/net/eth0/device");
  REQUIRE(run(c).ok());
  CHECK_FALSE(c.Collect().empty());
  root.write("proc/net/dev", std::string(kHeader) + "eth0: 1 2\n");
  CHECK_THAT(run(c).error().message, Contains("/proc/net/dev: line 3: 2 values"));
  CHECK(c.Collect().empty());
  CHECK_FALSE(c.last().has_value());

  // A speed "file" that is a directory, or that holds no number, cannot be read: unlike an
  // unknown speed it is an error, but that device's alone; the other devices are still measured.
  root.write("proc/net/dev", std::string(kHeader) + dev_line("eth0", 1, 2) +
                                 dev_line("eth1", 3, 4) + dev_line("eth2", 5, 6));
  std::filesystem::create_directories(root.path() + "/sys/class/net/eth0/speed");
  for (const char* device : {"eth1", "eth2"}) {
    std::filesystem::create_directories(root.path() + "/sys/class/net/" + device + "/device");
  }
  root.write("sys/class/net/eth1/speed", "1000\n");
  root.write("sys/class/net/eth2/speed", "\x1b]0;owned\x07 1000\n");
  NetdevCollector fresh(config, root.path() + "/proc", root.path() + "/sys");
  REQUIRE(run(fresh).ok());
  const auto& devices = fresh.last()->devices;
  REQUIRE(devices.size() == 3);
  CHECK_FALSE(devices.at(0).speed_bytes);
  CHECK_THAT(devices.at(0).speed_error,
             Contains("/sys/class/net/eth0/speed: is a directory, not a regular file"));
  CHECK(devices.at(1).speed_bytes == 125000000);
  CHECK(devices.at(1).speed_error.empty());
  CHECK_FALSE(devices.at(2).speed_bytes);
  CHECK_THAT(devices.at(2).speed_error,
             Contains("/sys/class/net/eth2/speed: ") && Contains("\\x1b]0;owned\\x07"));
}

TEST_CASE("netdev: link speeds are read once a minute, /proc/net/dev every run",
          "[collectors][netdev]") {
  test::TempDir root;
  NetdevConfig config;
  config.driver_stats = false;
  std::chrono::steady_clock::time_point now{std::chrono::hours(1)};
  NetdevCollector c(config, root.path() + "/proc", root.path() + "/sys", [&] { return now; });
  std::filesystem::create_directories(root.path() + "/sys/class/net/eth0/device");
  root.write("sys/class/net/eth0/speed", "1\n");  // 125000 bytes/s
  root.write("proc/net/dev", std::string(kHeader) + dev_line("eth0", 1, 2));
  REQUIRE(run(c).ok());
  CHECK(c.last()->devices.at(0).speed_bytes == 125000);

  root.write("sys/class/net/eth0/speed", "2\n");
  root.write("proc/net/dev", std::string(kHeader) + dev_line("eth0", 5, 6));
  now += std::chrono::seconds(30);
  REQUIRE(run(c).ok());
  CHECK(c.last()->devices.at(0).counters.receive_bytes == 5);
  CHECK(c.last()->devices.at(0).speed_bytes == 125000);  // not yet read again

  now += std::chrono::seconds(31);
  REQUIRE(run(c).ok());
  CHECK(c.last()->devices.at(0).speed_bytes == 250000);
}

TEST_CASE("netdev: families per device and direction, utilisation and speed only where known",
          "[collectors][netdev]") {
  NetdevSample s{{device("eth0", 10, 20, 1000), device("tun0", 1, 2, std::nullopt)}};
  s.devices[0].counters.transmit_drops = 3;
  s.devices[0].receive_utilization = 0.5;
  s.devices[0].transmit_utilization = 0.25;
  const Families f = netdev_families(s);
  std::map<std::string, std::size_t> series;
  for (const auto& family : f) series[family.name] = family.metric.size();
  CHECK(series["mcbacklog_network_receive_bytes_total"] == 2);
  CHECK(series["mcbacklog_network_transmit_bytes_total"] == 2);
  CHECK(series["mcbacklog_network_speed_bytes"] == 1);
  CHECK(series["mcbacklog_network_utilization_ratio"] == 2);
  CHECK(series["mcbacklog_network_drops_total"] == 4);
  CHECK(series["mcbacklog_network_errors_total"] == 4);
  CHECK(series.count("mcbacklog_network_allowance_exceeded_total") == 0);  // no driver counters

  DriverCounters ena;
  ena.allowance_exceeded[static_cast<int>(Allowance::kBwOut)] = 12;
  ena.allowance_exceeded[static_cast<int>(Allowance::kPps)] = 0;
  ena.conntrack_allowance_available = 4000;
  ena.receive_drops = 3;
  s.devices[0].driver = ena;
  const std::string text = render_families(netdev_families(s));
  CHECK_THAT(
      text,
      Contains(
          R"(mcbacklog_network_allowance_exceeded_total{allowance="bw_out",device="eth0"} 12)"));
  CHECK_THAT(
      text,
      Contains(R"(mcbacklog_network_allowance_exceeded_total{allowance="pps",device="eth0"} 0)"));
  CHECK_THAT(text,
             Contains(R"(mcbacklog_network_conntrack_allowance_available{device="eth0"} 4000)"));
  CHECK_THAT(
      text,
      Contains(R"(mcbacklog_network_driver_drops_total{device="eth0",direction="receive"} 3)"));
  CHECK_THAT(
      text,
      !Contains(R"(mcbacklog_network_driver_drops_total{device="eth0",direction="transmit"})"));
}
