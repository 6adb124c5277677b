#include "tests/support/netns.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

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

SilentResolver::SilentResolver() {
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(53);
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) {
    throw std::runtime_error(std::string("cannot bind a UDP socket to 127.0.0.1:53 (call "
                                         "enter_private_netns() first): ") +
                             std::strerror(errno));
  }
  if (::unshare(CLONE_NEWNS) != 0) {
    throw std::runtime_error(std::string("cannot create a mount namespace: ") +
                             std::strerror(errno));
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    throw std::runtime_error(std::string("cannot make / private: ") + std::strerror(errno));
  }
  const std::string resolv =
      dir_.write("resolv.conf", "nameserver 127.0.0.1\noptions timeout:30 attempts:5\n");
  const std::string nsswitch = dir_.write("nsswitch.conf", "hosts: dns\n");
  for (const auto& [from, onto] :
       {std::pair{resolv, "/etc/resolv.conf"}, std::pair{nsswitch, "/etc/nsswitch.conf"}}) {
    if (::mount(from.c_str(), onto, nullptr, MS_BIND, nullptr) != 0) {
      throw std::runtime_error("cannot bind " + from + " onto " + onto + ": " +
                               std::strerror(errno));
    }
  }
}

SilentResolver::~SilentResolver() {
  ::umount2("/etc/resolv.conf", MNT_DETACH);
  ::umount2("/etc/nsswitch.conf", MNT_DETACH);
  if (fd_ >= 0) ::close(fd_);
}

bool SilentResolver::wait_for_query(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char buf[512];
  return ::recv(fd_, buf, sizeof buf, 0) > 0;
}

namespace {

void loopback_up() {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  const bool ok = s >= 0 && ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0 &&
                  (ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP),
                   ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0);
  const int error = errno;
  if (s >= 0) ::close(s);
  if (!ok)
    throw std::runtime_error(std::string("cannot bring loopback up: ") + std::strerror(error));
}

}  // namespace

NamedNetns::NamedNetns(const std::string& name) : path_(dir_.path() + "/" + name) {
  if (::unshare(CLONE_NEWNS) != 0) {
    throw std::runtime_error(std::string("cannot create a mount namespace: ") +
                             std::strerror(errno));
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    throw std::runtime_error(std::string("cannot make / private: ") + std::strerror(errno));
  }
  dir_.write(name, "");
  // A thread makes the namespace and mounts it, so this one stays where it is.
  std::string error;
  std::thread maker([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      error = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
      return;
    }
    try {
      loopback_up();
    } catch (const std::exception& e) {
      error = e.what();
      return;
    }
    if (::mount("/proc/thread-self/ns/net", path_.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      error = "cannot bind-mount the namespace on " + path_ + ": " + std::strerror(errno);
    }
  });
  maker.join();
  if (!error.empty()) throw std::runtime_error("cannot make a named network namespace: " + error);
}

NamedNetns::~NamedNetns() { ::umount2(path_.c_str(), MNT_DETACH); }

void NamedNetns::inside(const std::function<void()>& f) const {
  const int back = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  const int there = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (back < 0 || there < 0 || ::setns(there, CLONE_NEWNET) != 0) {
    const int error = errno;
    if (back >= 0) ::close(back);
    if (there >= 0) ::close(there);
    throw std::runtime_error("cannot enter " + path_ + ": " + std::strerror(error));
  }
  ::close(there);
  struct Return {
    int fd;
    ~Return() {
      if (::setns(fd, CLONE_NEWNET) != 0) std::abort();  // the test would measure the wrong host
      ::close(fd);
    }
  } going_back{back};
  f();
}

}  // namespace mcb::test
