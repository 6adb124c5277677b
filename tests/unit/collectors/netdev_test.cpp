// /proc/net/dev and sysfs link speeds: the captured fixtures, rates, resets and bad files.

#include <catch2/catch.hpp>

#include <filesystem>

#include "collectors/netdev.hpp"
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

TEST_CASE("netdev: the collector selects devices, reads speeds and measures between runs",
          "[collectors][netdev]") {
  test::TempDir root;
  const std::string procfs = root.path() + "/proc";
  const std::string sysfs = root.path() + "/sys";
  auto write_dev = [&](std::uint64_t eth_rx, std::uint64_t eth_tx) {
    root.write("proc/net/dev", std::string(kHeader) + dev_line("lo", 5, 5) +
                                   dev_line("eth0", eth_rx, eth_tx) + dev_line("veth7", 1, 1) +
                                   dev_line("br0", 1, 1));
  };
  write_dev(1000, 1000);
  root.write("sys/class/net/eth0/speed", "1\n");  // 125000 bytes/s
  root.write("sys/class/net/br0/speed", "-1\n");  // veth7 has no speed file at all
  FakeClock clock;
  NetdevConfig config;
  config.exclude = "^(lo|veth)";
  NetdevCollector c(config, procfs, sysfs, clock.fn());

  REQUIRE(run(c).ok());
  REQUIRE(c.last().has_value());
  REQUIRE(c.last()->devices.size() == 2);
  CHECK(c.last()->devices[0].counters.device == "eth0");
  CHECK(c.last()->devices[0].speed_bytes == std::optional<std::uint64_t>{125000});
  CHECK_FALSE(c.last()->devices[0].receive_utilization.has_value());  // first run
  CHECK(c.last()->devices[1].counters.device == "br0");
  CHECK_FALSE(c.last()->devices[1].speed_bytes.has_value());

  clock.now += 2s;
  write_dev(1000 + 125000, 1000 + 25000);
  REQUIRE(run(c).ok());
  CHECK(c.last()->devices[0].receive_utilization == Approx(0.5));
  CHECK(c.last()->devices[0].transmit_utilization == Approx(0.1));

  config.include = "^veth";
  config.exclude = "";
  NetdevCollector only_veth(config, procfs, sysfs, clock.fn());
  REQUIRE(run(only_veth).ok());
  REQUIRE(only_veth.last()->devices.size() == 1);
  CHECK(only_veth.last()->devices[0].counters.device == "veth7");
}

TEST_CASE("netdev: an unreadable file fails the run naming the path, and no stale series stay",
          "[collectors][netdev]") {
  test::TempDir root;
  NetdevConfig config;
  NetdevCollector c(config, root.path() + "/proc", root.path() + "/sys");
  CHECK_THAT(run(c).error().message, Contains("/proc/net/dev: no such file"));

  root.write("proc/net/dev", std::string(kHeader) + dev_line("eth0", 1, 2));
  REQUIRE(run(c).ok());
  CHECK_FALSE(c.Collect().empty());
  // A speed "file" that is a directory cannot be read: an error, unlike an unknown speed.
  std::filesystem::create_directories(root.path() + "/sys/class/net/eth0/speed");
  CHECK_THAT(run(c).error().message, Contains("/sys/class/net/eth0/speed: Is a directory"));
  CHECK(c.Collect().empty());
  CHECK_FALSE(c.last().has_value());

  root.write("proc/net/dev", std::string(kHeader) + "eth0: 1 2\n");
  CHECK_THAT(run(c).error().message, Contains("/proc/net/dev: line 3: 2 values"));
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
}
