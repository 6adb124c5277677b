// The netdev collector against real devices: a veth pair made in the test's own network
// namespace, a sysfs mounted for that namespace, traffic sent by the test, read by the daemon.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/support/daemon.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;

namespace {

void ip(const std::string& args) {
  const auto r = test::run_command("ip " + args);
  INFO("ip " << args << ": " << r.output);
  REQUIRE(r.exit_code == 0);
}

// veth0 (10.200.0.1) and veth1, which has no address: what veth0 sends to 10.200.0.2 leaves
// veth0 and arrives at veth1, where the stack drops it above the device.
void make_veth_pair() {
  ip("link add veth0 type veth peer name veth1");
  ip("link set veth1 address 02:00:00:00:00:02");
  ip("addr add 10.200.0.1/24 dev veth0");
  ip("link set veth0 up");
  ip("link set veth1 up");
  ip("neigh add 10.200.0.2 lladdr 02:00:00:00:00:02 dev veth0");
}

void send_datagrams(int count, std::size_t size) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  REQUIRE(inet_pton(AF_INET, "10.200.0.2", &to.sin_addr) == 1);
  const std::string payload(size, 'x');
  for (int i = 0; i < count; ++i) {
    (void)::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to),
                   sizeof to);
  }
  ::close(fd);
}

std::string series(const std::string& name, const std::string& device,
                   const std::string& direction = "") {
  return name + "{device=\"" + device + "\"" +
         (direction.empty() ? "" : ",direction=\"" + direction + "\"") + "}";
}

double value(const std::string& text, const std::string& s) {
  return test::metric_value(text, s).value_or(-1);
}

}  // namespace

TEST_CASE("netdev: traffic over a veth pair shows in bytes, speed, utilisation and drops",
          "[integration][netdev]") {
  test::enter_private_netns();
  test::PrivateSysfs sysfs;
  make_veth_pair();
  test::Daemon d(
      "interval: 100ms\ntargets: []\ncollectors:\n  sockdiag: { enabled: false }\n"
      "paths: { sysfs: " +
      sysfs.path() + " }\n");
  const std::string tx = series("mcbacklog_network_transmit_bytes_total", "veth0");
  const std::string rx = series("mcbacklog_network_receive_bytes_total", "veth1");
  const auto first = d.wait_for_metrics(
      [&](const std::string& m) { return test::metric_value(m, tx).has_value(); });
  REQUIRE(first.has_value());
  CHECK_FALSE(test::metric_value(*first, series("mcbacklog_network_receive_bytes_total", "lo"))
                  .has_value());  // loopback is excluded by default

  // The speed the driver reports, in bytes per second.
  const double mbits = std::stod(test::read_text_file(sysfs.path() + "/class/net/veth0/speed"));
  CHECK(value(*first, series("mcbacklog_network_speed_bytes", "veth0")) == mbits * 125000);

  const double tx_before = value(*first, tx);
  const double rx_before = value(*first, rx);
  constexpr int kDatagrams = 200;
  send_datagrams(kDatagrams, 1400);
  const auto sent = d.wait_for_metrics([&](const std::string& m) {
    return value(m, tx) >= tx_before + kDatagrams * 1400 &&
           value(m, rx) >= rx_before + kDatagrams * 1400;
  });
  CHECK(sent.has_value());

  // Sending while the runs go on: some interval sees the bytes, as a share of the link.
  const std::string utilization =
      series("mcbacklog_network_utilization_ratio", "veth0", "transmit");
  const auto busy = d.wait_for_metrics([&](const std::string& m) {
    send_datagrams(50, 1400);
    return value(m, utilization) > 0;
  });
  REQUIRE(busy.has_value());
  CHECK(value(*busy, utilization) < 1);
  CHECK(value(*busy, series("mcbacklog_network_utilization_ratio", "veth1", "receive")) >= 0);

  // With its peer down, veth0 drops what it is asked to send.
  const std::string drops = series("mcbacklog_network_drops_total", "veth0", "transmit");
  const double drops_before = value(*busy, drops);
  ip("link set veth1 down");
  send_datagrams(5, 1400);
  const auto dropped =
      d.wait_for_metrics([&](const std::string& m) { return value(m, drops) >= drops_before + 5; });
  CHECK(dropped.has_value());
}
