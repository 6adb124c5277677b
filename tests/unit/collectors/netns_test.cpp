// Naming another network namespace: its label from a path or from a process's cgroup, and the
// errors that name a missing namespace.

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include "collectors/netns.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using Catch::Matchers::Contains;

TEST_CASE("netns: a namespace file is labelled with its basename", "[collectors][netns]") {
  CHECK(netns_label(NetnsConfig{"/run/netns/pod1", 0}, "/proc") == "pod1");
  CHECK(netns_label(NetnsConfig{"/run/netns/pod1/", 0}, "/proc") == "pod1");
  CHECK(netns_file(NetnsConfig{"", 42}, "/proc") == "/proc/42/ns/net");
}

TEST_CASE("netns: a process's cgroup names its pod or container", "[collectors][netns]") {
  // The kubelet with the systemd cgroup driver.
  CHECK(container_of_cgroup(
            "0::/kubepods.slice/kubepods-besteffort.slice/"
            "kubepods-besteffort-pod0b2f8a1c_5d3e_4f6a_9b7c_1d2e3f4a5b6c.slice/"
            "cri-containerd-"
            "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa99887766554433221100.scope\n") ==
        "pod:0b2f8a1c-5d3e-4f6a-9b7c-1d2e3f4a5b6c");
  // The kubelet with the cgroupfs driver, cgroup v1.
  CHECK(container_of_cgroup("12:memory:/kubepods/burstable/pod0b2f8a1c-5d3e-4f6a-9b7c-1d2e3f4a5b6c/"
                            "abcdef\n") == "pod:0b2f8a1c-5d3e-4f6a-9b7c-1d2e3f4a5b6c");
  // podman and docker.
  CHECK(
      container_of_cgroup("0::/machine.slice/"
                          "libpod-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef."
                          "scope/container\n") == "container:0123456789ab");
  CHECK(container_of_cgroup(
            "0::/system.slice/"
            "docker-fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210.scope\n") ==
        "container:fedcba987654");
  // A service, a user session, garbage.
  CHECK_FALSE(container_of_cgroup("0::/system.slice/memcached.service\n"));
  CHECK_FALSE(container_of_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n"));
  CHECK_FALSE(container_of_cgroup("garbage\n::\n0::/podnotauid\n"));
  CHECK_FALSE(container_of_cgroup(""));
}

TEST_CASE("netns: a process without a container is labelled by its pid", "[collectors][netns]") {
  // This test's own cgroup may be a container's; a procfs without the pid has no cgroup to read.
  CHECK(netns_label(NetnsConfig{"", 99999999}, "/proc") == "pid:99999999");
}

TEST_CASE("netns: a missing namespace is an error naming it, and the work does not run",
          "[collectors][netns]") {
  bool ran = false;
  auto st = run_in_netns(NetnsConfig{"/run/netns/mcb-no-such-namespace", 0}, "/proc",
                         [&] { ran = true; });
  REQUIRE_FALSE(st);
  CHECK_THAT(st.error().message, Contains("/run/netns/mcb-no-such-namespace"));
  CHECK_THAT(st.error().message, Contains("no such file"));
  CHECK_FALSE(ran);
  auto gone = netns_socket(NetnsConfig{"", 99999999}, "/proc", AF_INET, SOCK_STREAM, 0);
  REQUIRE_FALSE(gone);
  CHECK_THAT(gone.error().message, Contains("no process 99999999"));
}

TEST_CASE("netns: a file that is not a network namespace is refused", "[collectors][netns]") {
  auto st = run_in_netns(NetnsConfig{"/proc/self/ns/uts", 0}, "/proc", [] {});
  REQUIRE_FALSE(st);
  CHECK_THAT(st.error().message, Contains("not a network namespace"));
}

TEST_CASE("netns: a FIFO or a regular file named as a namespace is refused at once",
          "[collectors][netns]") {
  test::TempDir dir;
  const std::string fifo = test::make_fifo(dir, "netns");
  auto entered = test::unless_held(fifo, [&] {
    return run_in_netns(NetnsConfig{fifo, 0}, "/proc", [] {});
  });
  REQUIRE(entered.has_value());
  REQUIRE_FALSE(entered->ok());
  CHECK(entered->error().message ==
        "network namespace " + fifo +
            ": is a FIFO, not a network namespace file (such as /run/netns/NAME or "
            "/proc/PID/ns/net)");
  // What `ip netns add` leaves before it mounts the namespace there: an empty regular file.
  const std::string empty = dir.write("empty", "");
  auto opened = open_network_namespace(empty, 0);
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().message ==
        "not a network namespace file (such as /run/netns/NAME or /proc/PID/ns/net)");
  CHECK(open_network_namespace("/proc/self/ns/net", 0).ok());
}

TEST_CASE("netns: a socket made in the daemon's own namespace by its file works",
          "[collectors][netns]") {
  // /proc/self/ns/net is the namespace this process is in: entering it changes nothing.
  auto fd = netns_socket(NetnsConfig{"/proc/self/ns/net", 0}, "/proc", AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd);
  CHECK(*fd >= 0);
  ::close(*fd);
}
