#include "tests/support/netns.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace mcb::test {
namespace {

void write_file(const char* path, const std::string& text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)!::write(fd, text.data(), text.size());
  ::close(fd);
}

}  // namespace

void enter_private_netns() {
  if (::unshare(CLONE_NEWNET) != 0) {
    const int root_errno = errno;
    // Not root: an unprivileged user namespace may still allow a network namespace.
    const uid_t uid = ::getuid();
    const gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
      throw std::runtime_error(
          std::string("cannot create a network namespace for this test (unshare(CLONE_NEWNET): ") +
          std::strerror(root_errno) + "; with a user namespace: " + std::strerror(errno) +
          "). Run the tests as root or enable unprivileged user namespaces.");
    }
    write_file("/proc/self/setgroups", "deny");
    write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
    write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
  }
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (s < 0 || ::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
    throw std::runtime_error(std::string("cannot read loopback flags: ") + std::strerror(errno));
  }
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
    throw std::runtime_error(std::string("cannot bring loopback up: ") + std::strerror(errno));
  }
  ::close(s);
}

PrivateSysfs::PrivateSysfs() {
  if (::unshare(CLONE_NEWNS) != 0) {
    throw std::runtime_error(std::string("cannot create a mount namespace: ") +
                             std::strerror(errno));
  }
  // Keep the new mount from propagating back to the parent namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    throw std::runtime_error(std::string("cannot make / private: ") + std::strerror(errno));
  }
  if (::mount("sysfs", dir_.path().c_str(), "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) !=
      0) {
    throw std::runtime_error("cannot mount sysfs on " + dir_.path() + ": " + std::strerror(errno));
  }
}

// Unmounted before the directory is removed, so the removal never walks into sysfs.
PrivateSysfs::~PrivateSysfs() { ::umount2(dir_.path().c_str(), MNT_DETACH); }

}  // namespace mcb::test
