// Discovery's pure parts: a descriptor link's socket inode, the targets and names of the
// processes a scan found, and the grace period of targets whose process went away.

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include "collectors/discovery.hpp"

using namespace mcb;
using namespace std::chrono_literals;

namespace {

// The configured targets' addresses alone.
Configured taking(std::vector<TakenAddress> addresses) {
  Configured c;
  c.addresses = std::move(addresses);
  return c;
}

std::pair<IpAddress, std::uint16_t> listener(std::string_view ip, std::uint16_t port) {
  return {*parse_ip(ip), port};
}

FoundMemcached process(int pid, std::uint64_t netns, bool own,
                       std::vector<std::pair<IpAddress, std::uint16_t>> listeners) {
  FoundMemcached f;
  f.pid = pid;
  f.netns_inode = netns;
  f.own_netns = own;
  f.listeners = std::move(listeners);
  return f;
}

std::vector<std::string> names(const std::vector<TargetConfig>& targets) {
  std::vector<std::string> out;
  for (const TargetConfig& t : targets) out.push_back(t.name);
  return out;
}

}  // namespace

TEST_CASE("discovery: a descriptor link names a socket's inode, and nothing else does",
          "[discovery]") {
  CHECK(socket_inode("socket:[12345]") == 12345u);
  CHECK(socket_inode("socket:[4294967295]") == 4294967295u);
  CHECK_FALSE(socket_inode("socket:[]"));
  CHECK_FALSE(socket_inode("socket:[12a]"));
  CHECK_FALSE(socket_inode("socket:[4294967296]"));  // past an inode's 32 bits
  CHECK_FALSE(socket_inode("socket:[12"));
  CHECK_FALSE(socket_inode("pipe:[12345]"));
  CHECK_FALSE(socket_inode("anon_inode:[eventpoll]"));
  CHECK_FALSE(socket_inode("/dev/null"));
  CHECK_FALSE(socket_inode(""));
}

TEST_CASE("discovery: a process's listeners become targets reached inside its namespace",
          "[discovery]") {
  SECTION("a wildcard listener is reached on loopback, IPv4 before IPv6") {
    auto f = process(4242, 4026532301, false,
                     {listener("::", 11211), listener("0.0.0.0", 11211), listener("::", 11311)});
    const auto targets = discovered_targets(std::span(&f, 1));
    REQUIRE(targets.size() == 2);
    CHECK(targets[0].name == "memcached@4026532301:11211");
    CHECK(targets[0].address.to_string() == "127.0.0.1:11211");
    CHECK(targets[1].name == "memcached@4026532301:11311");
    CHECK(targets[1].address.to_string() == "[::1]:11311");
    for (const TargetConfig& t : targets) {
      REQUIRE(t.netns);
      CHECK(*t.netns == NetnsConfig{"", 4242});
      CHECK(t.host_pid == 4242);
      CHECK(t.probe_interval == 5s);  // the defaults of a configured target
    }
  }
  SECTION("a listener on one address is reached there") {
    auto f = process(7, 1, true, {listener("10.1.2.3", 11211)});
    const auto targets = discovered_targets(std::span(&f, 1));
    REQUIRE(targets.size() == 1);
    CHECK(targets[0].address.to_string() == "10.1.2.3:11211");
    CHECK_FALSE(targets[0].netns);  // the daemon's own namespace: no netns label
    CHECK(targets[0].host_pid == 7);
  }
  SECTION("a process that listens on nothing (yet) is no target") {
    auto f = process(7, 1, true, {});
    CHECK(discovered_targets(std::span(&f, 1)).empty());
  }
}

TEST_CASE("discovery: targets are named after their pod, else their container, else the namespace",
          "[discovery]") {
  std::vector<FoundMemcached> found;
  found.push_back(process(10, 100, false, {listener("0.0.0.0", 11211)}));
  found.back().container = "pod:0b5cd2a4-6c34-4d0e-9a8f-2f6a1c1e0d11";
  found.back().pod = "shop/memcached-0";
  found.push_back(process(11, 101, false, {listener("0.0.0.0", 11211)}));
  found.back().container = "pod:7d3f0c2e-1111-4d0e-9a8f-2f6a1c1e0d11";  // its name unknown
  found.push_back(
      process(12, 102, false, {listener("0.0.0.0", 11211), listener("0.0.0.0", 11212)}));
  found.back().container = "container:3f4e5d6c7b8a";
  found.push_back(process(13, 103, false, {listener("127.0.0.1", 11211)}));
  const auto targets = discovered_targets(found);
  CHECK(names(targets) ==
        std::vector<std::string>{"container:3f4e5d6c7b8a:11211", "container:3f4e5d6c7b8a:11212",
                                 "memcached@103:11211", "pod:7d3f0c2e-1111-4d0e-9a8f-2f6a1c1e0d11",
                                 "shop/memcached-0"});
}

TEST_CASE("discovery: two memcached of one pod on two ports get a name each", "[discovery]") {
  std::vector<FoundMemcached> found;
  for (int i = 0; i < 2; ++i) {
    found.push_back(
        process(20 + i, 200, false, {listener("0.0.0.0", static_cast<std::uint16_t>(11211 + i))}));
    found.back().container = "pod:uid";
    found.back().pod = "cache/mc-0";
  }
  const auto targets = discovered_targets(found);
  CHECK(names(targets) == std::vector<std::string>{"cache/mc-0:11211", "cache/mc-0:11212"});
  CHECK(targets[0].host_pid == 20);
  CHECK(targets[1].host_pid == 21);
}

TEST_CASE("discovery: a configured target on the same namespace and port wins", "[discovery]") {
  std::vector<FoundMemcached> found;
  found.push_back(process(30, 300, true, {listener("0.0.0.0", 11211), listener("0.0.0.0", 11212)}));
  found.push_back(process(31, 301, false, {listener("0.0.0.0", 11211)}));
  const auto targets = discovered_targets(found, taking({{300, 11211}, {999, 11212}}));
  // 300:11211 is configured; 11212 is taken in another namespace only.
  CHECK(names(targets) == std::vector<std::string>{"memcached@300:11212", "memcached@301:11211"});
}

TEST_CASE("discovery: a target whose process went away stays for the grace period", "[discovery]") {
  DiscoveredTargets d(5min);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  std::vector<FoundMemcached> found{process(40, 400, false, {listener("0.0.0.0", 11211)})};
  found[0].container = "container:abc";
  auto changes = d.update(discovered_targets(found), t0);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0] == "added container:abc (pid 40, 127.0.0.1:11211, netns pid 40)");
  CHECK(d.update(discovered_targets(found), t0 + 30s).empty());

  // Gone: kept (MemcachedDown pages) until the grace period has passed since it was last seen.
  CHECK(d.update({}, t0 + 60s).empty());
  CHECK(d.update({}, t0 + 5min + 29s).empty());
  CHECK(names(d.targets()) == std::vector<std::string>{"container:abc"});
  changes = d.update({}, t0 + 5min + 30s);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0] ==
        "dropped container:abc: not found for 5m (its process ended, or no longer listens there)");
  CHECK(d.targets().empty());

  // Back as another process of the same container: one target, now of the new pid, at once.
  d.update(discovered_targets(found), t0 + 6min);
  found[0].pid = 41;
  changes = d.update(discovered_targets(found), t0 + 7min);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0] == "replaced container:abc (pid 41, 127.0.0.1:11211, netns pid 41)");
  REQUIRE(d.targets().size() == 1);
  CHECK(d.targets()[0].host_pid == 41);
}

TEST_CASE("discovery: a target in its grace period keeps its labels when its namespace is renamed",
          "[discovery]") {
  DiscoveredTargets d(5min);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  // Two memcached in one pod's namespace: both name it by the lower pid, 60.
  std::vector<FoundMemcached> found{process(60, 600, false, {listener("0.0.0.0", 11211)}),
                                    process(61, 600, false, {listener("0.0.0.0", 11212)})};
  d.update(discovered_targets(found), t0);
  for (const TargetConfig& t : d.targets()) CHECK(t.netns == NetnsConfig{"", 60});

  // 60 ends: the one left names the namespace by 61; 60's target, in its grace period, keeps
  // netns="pid:60", so that its MemcachedDown is one alert from the crash on.
  found.erase(found.begin());
  const auto changes = d.update(discovered_targets(found), t0 + 30s);
  CHECK(changes == std::vector<std::string>{
                       "replaced memcached@600:11212 (pid 61, 127.0.0.1:11212, netns pid 61)"});
  const auto targets = d.targets();
  CHECK(names(targets) == std::vector<std::string>{"memcached@600:11211", "memcached@600:11212"});
  CHECK(targets[0].netns == NetnsConfig{"", 60});
  CHECK(targets[0].host_pid == 60);
  CHECK(targets[1].netns == NetnsConfig{"", 61});
}

TEST_CASE("discovery: a target whose address a reload configures goes at once, not after grace",
          "[discovery]") {
  DiscoveredTargets d(5min);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  std::vector<FoundMemcached> found{process(70, 700, true, {listener("127.0.0.1", 11211)}),
                                    process(71, 701, false, {listener("0.0.0.0", 11211)})};
  d.update(discovered_targets(found), t0);
  REQUIRE(d.size() == 2);

  // The reload configures 127.0.0.1:11211 in the daemon's namespace (700): the scan leaves it to
  // that target, and the discovered one is not sampled beside it for the grace period.
  const Configured configured = taking({{700, 11211}});
  const auto changes =
      d.update(discovered_targets(found, configured), t0 + 30s, configured.addresses);
  CHECK(changes == std::vector<std::string>{"dropped memcached@700:11211: a configured target now "
                                            "watches 127.0.0.1:11211 in its namespace"});
  CHECK(names(d.targets()) == std::vector<std::string>{"memcached@701:11211"});
}

TEST_CASE("discovery: an fdinfo text gives the descriptor's inode", "[discovery]") {
  // A socket's, as Linux 6.x writes it.
  CHECK(fdinfo_inode("pos:\t0\nflags:\t02000002\nmnt_id:\t10\nino:\t150509\n") == 150509u);
  // An eventfd's, with lines after.
  CHECK(fdinfo_inode("pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\neventfd-count:  0\n") ==
        1057u);
  CHECK(fdinfo_inode("ino:\t18446744073709551615") == 18446744073709551615u);
  CHECK_FALSE(fdinfo_inode("pos:\t0\nflags:\t02\nmnt_id:\t10\n"));  // an older kernel
  CHECK_FALSE(fdinfo_inode("ino:\t12x\n"));
  CHECK_FALSE(fdinfo_inode("ino:\t\n"));
  CHECK_FALSE(fdinfo_inode(""));
  CHECK_FALSE(fdinfo_inode("xino:\t5\n"));
}

TEST_CASE("discovery: a discovered target never takes a configured target's name", "[discovery]") {
  std::vector<FoundMemcached> found{process(50, 500, false, {listener("0.0.0.0", 11211)})};
  found[0].container = "pod:uid";
  found[0].pod = "shop/memcached-0";
  const std::vector<std::string> configured{"shop/memcached-0", "127.0.0.1:11311"};
  CHECK(names(discovered_targets(found, Configured{{}, {}, configured})) ==
        std::vector<std::string>{"shop/memcached-0#50"});
  CHECK(names(discovered_targets(found)) == std::vector<std::string>{"shop/memcached-0"});
}

TEST_CASE("discovery: the processes of one namespace name it alike, so it is read once",
          "[discovery]") {
  std::vector<FoundMemcached> found;
  found.push_back(process(72, 700, false, {listener("0.0.0.0", 11212)}));
  found.push_back(process(71, 700, false, {listener("0.0.0.0", 11211)}));
  found.push_back(process(80, 800, false, {listener("0.0.0.0", 11211)}));
  auto targets = discovered_targets(found);
  REQUIRE(targets.size() == 3);
  // By the lowest pid found there; each keeps its own pid for its threads.
  CHECK(*targets[0].netns == NetnsConfig{"", 71});
  CHECK(*targets[1].netns == NetnsConfig{"", 71});
  CHECK(targets[0].host_pid == 71);
  CHECK(targets[1].host_pid == 72);
  CHECK(*targets[2].netns == NetnsConfig{"", 80});
  // As a configured target names it, where one does.
  Configured configured;
  configured.namespaces.emplace(700, NetnsConfig{"/run/netns/pod1", 0});
  targets = discovered_targets(found, configured);
  CHECK(*targets[0].netns == NetnsConfig{"/run/netns/pod1", 0});
  CHECK(*targets[1].netns == NetnsConfig{"/run/netns/pod1", 0});
  CHECK(*targets[2].netns == NetnsConfig{"", 80});
}

TEST_CASE("discovery: a mountinfo with FUSE or a network file system is one whose reads may wait",
          "[discovery]") {
  const std::string plain =
      "1203 1100 0:97 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n"
      "1204 1203 0:99 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
      "1210 1203 254:1 /var/lib/kubelet/pods/x/etc-hosts /etc/hosts rw,relatime - ext4 "
      "/dev/vda1 rw\n";
  CHECK_FALSE(blocking_filesystem(plain));
  CHECK(blocking_filesystem(plain + "1300 1203 0:120 / /etc rw - fuse.sshfs host:/ rw\n") ==
        "fuse.sshfs");
  CHECK(blocking_filesystem(plain + "1300 1203 0:121 / /data rw shared:5 - nfs4 srv:/x rw\n") ==
        "nfs4");
  CHECK(blocking_filesystem("1 0 0:1 / / rw - fuse fakefs rw") == "fuse");
  CHECK_FALSE(blocking_filesystem(""));
  CHECK_FALSE(blocking_filesystem("garbage without a separator\n"));
}

TEST_CASE("discovery: a discovered name stays unique whatever names are configured",
          "[discovery]") {
  std::vector<FoundMemcached> found{process(60, 600, true, {listener("0.0.0.0", 11511)})};
  const std::vector<std::string> configured{"memcached@600:11511", "memcached@600:11511#60"};
  CHECK(names(discovered_targets(found, Configured{{}, {}, configured})) ==
        std::vector<std::string>{"memcached@600:11511#60.2"});
}

TEST_CASE("discovery: a configured target of another host does not take the port here",
          "[discovery]") {
  const auto target = [](std::string host, std::uint16_t port) {
    TargetConfig t;
    t.address.kind = Endpoint::Kind::kTcp;
    t.address.host = std::move(host);
    t.address.port = port;
    return t;
  };
  const std::vector<TargetConfig> targets{
      target("127.0.0.1", 11211), target("192.0.2.1", 11212),  // TEST-NET-1: never this host's
      target("::1", 11213), target("localhost", 11214),        // a host name: taken as this one
      target("0.0.0.0", 11215)};
  const Configured c = Discoverer(DiscoverConfig{}, "/proc").configured(targets);
  std::vector<std::uint16_t> ports;
  for (const auto& [inode, port] : c.addresses) {
    CHECK(inode != 0);
    ports.push_back(port);
  }
  CHECK(ports == std::vector<std::uint16_t>{11211, 11213, 11214, 11215});
  CHECK(c.names.size() == 5);
}
