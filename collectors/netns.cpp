#include "collectors/netns.hpp"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <thread>

#include "collectors/procfs.hpp"
#include "common/files.hpp"
#include "common/text.hpp"

namespace mcb {
namespace {

bool is_hex(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// The 64-hex-digit id that ends `segment` after one of the runtime prefixes, if any.
std::optional<std::string> container_id(std::string_view segment) {
  if (segment.ends_with(".scope")) segment.remove_suffix(6);
  for (std::string_view prefix :
       {"docker-", "libpod-", "crio-", "cri-containerd-", "containerd-"}) {
    if (segment.starts_with(prefix)) {
      segment.remove_prefix(prefix.size());
      break;
    }
  }
  if (segment.size() == 64 && is_hex(segment)) return std::string(segment.substr(0, 12));
  return std::nullopt;
}

// A pod's UID from a kubelet cgroup segment: "kubepods-besteffort-pod<uid>.slice" (the systemd
// driver, which writes the UID's dashes as underscores) or "pod<uid>" (the cgroupfs driver).
std::optional<std::string> pod_uid(std::string_view segment) {
  if (segment.ends_with(".slice")) segment.remove_suffix(6);
  const auto at = segment.rfind("pod");
  if (at == std::string_view::npos) return std::nullopt;
  if (at != 0 && segment[at - 1] != '-') return std::nullopt;
  std::string uid(segment.substr(at + 3));
  for (char& c : uid) {
    if (c == '_') c = '-';
  }
  if (uid.size() != 36 || uid.find_first_not_of("0123456789abcdef-") != std::string::npos) {
    return std::nullopt;
  }
  return uid;
}

std::string errno_text(int error) { return std::strerror(error); }

}  // namespace

std::optional<std::string> container_of_cgroup(std::string_view cgroup) {
  std::optional<std::string> pod;
  std::optional<std::string> container;
  for (std::string_view line; take_line(cgroup, line);) {
    // "hierarchy-ID:controllers:path"
    const auto first = line.find(':');
    const auto second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    std::string_view path = line.substr(second + 1);
    while (!path.empty()) {
      const auto slash = path.find('/');
      const std::string_view segment = path.substr(0, slash);
      path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
      if (segment.empty()) continue;
      if (!pod) pod = pod_uid(segment);
      if (!container) container = container_id(segment);
    }
  }
  if (pod) return "pod:" + *pod;
  if (container) return "container:" + *container;
  return std::nullopt;
}

std::string netns_file(const NetnsConfig& netns, const std::string& procfs) {
  if (!netns.path.empty()) return netns.path;
  return procfs + "/" + std::to_string(netns.pid) + "/ns/net";
}

std::string netns_label(const NetnsConfig& netns, const std::string& procfs) {
  if (!netns.path.empty()) {
    std::string_view p = netns.path;
    while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
    const auto slash = p.rfind('/');
    const std::string_view base = slash == std::string_view::npos ? p : p.substr(slash + 1);
    return base.empty() ? netns.path : std::string(base);
  }
  auto text = read_optional_file(procfs + "/" + std::to_string(netns.pid) + "/cgroup");
  if (text && text->has_value()) {
    if (auto c = container_of_cgroup(**text)) return *c;
  }
  return "pid:" + std::to_string(netns.pid);
}

Result<FileDescriptor> open_network_namespace(const std::string& file, int pid) {
  constexpr std::string_view kNot =
      "not a network namespace file (such as /run/netns/NAME or /proc/PID/ns/net)";
  struct stat st {};
  int error = 0;
  FileDescriptor fd = open_nonblocking(file, st, error);
  if (!fd.valid()) {
    if (error == ENOENT) {
      return fail(pid != 0 ? "no process " + std::to_string(pid)
                           : std::string("no such file (ip netns add?)"));
    }
    if ((error == EACCES || error == EPERM) && pid != 0) {
      return fail(errno_text(error) +
                  ": opening another process's namespace needs ptrace access to it "
                  "(CAP_SYS_PTRACE, or the same user; hostPID in a pod)");
    }
    return fail(errno_text(error));
  }
  // A namespace file is a regular file of nsfs; asking any other one its namespace type fails.
  if (!S_ISREG(st.st_mode)) {
    return fail("is " + std::string(file_kind(st.st_mode)) + ", " + std::string(kNot));
  }
  if (::ioctl(fd.get(), NS_GET_NSTYPE) != CLONE_NEWNET) return fail(std::string(kNot));
  return fd;
}

bool is_not_network_namespace(const std::string& file) {
  struct stat st {};
  int error = 0;
  const FileDescriptor fd = open_nonblocking(file, st, error);
  if (!fd.valid()) return false;
  return !S_ISREG(st.st_mode) || ::ioctl(fd.get(), NS_GET_NSTYPE) != CLONE_NEWNET;
}

Status run_in_netns(const NetnsConfig& netns, const std::string& procfs,
                    const std::function<void()>& work) {
  const std::string file = netns_file(netns, procfs);
  auto opened = open_network_namespace(file, netns.pid);
  if (!opened) {
    return fail("network namespace " + escape_untrusted(file, 4096) + ": " +
                opened.error().message);
  }
  const int fd = opened->get();
  int setns_error = 0;
  std::exception_ptr thrown;
  try {
    std::thread inside([&] {
      if (::setns(fd, CLONE_NEWNET) != 0) {
        setns_error = errno;
        return;
      }
      try {
        work();
      } catch (...) {
        thrown = std::current_exception();
      }
    });
    inside.join();
  } catch (const std::system_error& e) {
    return fail("network namespace " + escape_untrusted(file, 4096) +
                ": cannot start a thread to enter it: " + e.what());
  }
  if (thrown) std::rethrow_exception(thrown);  // a bug in `work`, not the environment
  if (setns_error != 0) {
    const std::string what = "network namespace " + escape_untrusted(file, 4096) + ": setns: ";
    if (setns_error == EPERM) {
      return fail(what + errno_text(setns_error) +
                  ": entering a network namespace needs CAP_SYS_ADMIN");
    }
    if (setns_error == EINVAL) return fail(what + "not a network namespace");
    return fail(what + errno_text(setns_error));
  }
  return ok_status();
}

Result<int> netns_socket(const NetnsConfig& netns, const std::string& procfs, int domain, int type,
                         int protocol) {
  int fd = -1;
  int error = 0;
  auto entered = run_in_netns(netns, procfs, [&] {
    fd = ::socket(domain, type, protocol);
    if (fd < 0) error = errno;
  });
  if (!entered) return entered.error();
  if (fd < 0) {
    return fail("socket in network namespace " + netns.describe() + ": " + errno_text(error));
  }
  return fd;
}

NetnsWatch::NetnsWatch(NetnsConfig netns, const std::string& procfs)
    : netns_(std::move(netns)), file_(netns_file(netns_, procfs)) {}

NetnsWatch::~NetnsWatch() { disarm(); }

void NetnsWatch::disarm() {
  if (pidfd_ >= 0) ::close(pidfd_);
  pidfd_ = -1;
  armed_ = false;
}

Status NetnsWatch::arm() {
  disarm();
  if (netns_.pid != 0) {
    // glibc 2.36's <sys/pidfd.h> declares pidfd_open without C linkage: the system call itself.
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, netns_.pid, 0));
    if (pidfd_ < 0) {
      const int error = errno;
      return fail("network namespace " + escape_untrusted(file_, 4096) + ": " +
                  (error == ESRCH ? "no process " + std::to_string(netns_.pid)
                                  : "pidfd_open: " + errno_text(error)));
    }
  } else {
    struct stat st {};
    if (::stat(file_.c_str(), &st) != 0) {
      const int error = errno;
      return fail(
          "network namespace " + escape_untrusted(file_, 4096) + ": " +
          (error == ENOENT ? std::string("no such file (ip netns add?)") : errno_text(error)));
    }
    dev_ = st.st_dev;
    inode_ = st.st_ino;
  }
  armed_ = true;
  return ok_status();
}

Status NetnsWatch::check() {
  if (!armed_) return ok_status();
  if (pidfd_ >= 0) {
    pollfd p{pidfd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, 0);
    if (ready == 0 || (ready < 0 && errno == EINTR)) return ok_status();
    disarm();
    return fail("network namespace " + escape_untrusted(file_, 4096) + ": process " +
                std::to_string(netns_.pid) + " ended");
  }
  struct stat st {};
  if (::stat(file_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == inode_) {
    return ok_status();
  }
  disarm();
  return fail("network namespace " + escape_untrusted(file_, 4096) +
              ": the file was removed or now names another namespace");
}

}  // namespace mcb
