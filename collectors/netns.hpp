#pragma once
// Network namespaces other than the daemon's: what a target in one is called in its series, and
// entering one for a moment to open a socket or read files there.
//
// A namespace is entered on a short-lived thread of its own (setns(2) changes only the calling
// thread), never on the event loop's, so the loop can never be left in the wrong namespace. The
// thread opens what it must inside (a netlink or TCP socket, a /proc/sys file) and ends; what it
// opened stays bound to that namespace and is used from the loop as usual. The caller waits for
// the thread, so the work given must be short and must not block (open, socket, read a file).
//
// Privileges: opening /proc/PID/ns/net needs ptrace access to PID (the same user, or
// CAP_SYS_PTRACE); setns needs CAP_SYS_ADMIN. Each error names the one missing. Reading
// /proc/PID/net/* needs neither. Thread-safe (no state).

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/files.hpp"
#include "common/result.hpp"
#include "config/config.hpp"

namespace mcb {

// Pure. The container a process belongs to, from its /proc/PID/cgroup text: a Kubernetes pod
// ("pod:<uid>", from the kubelet's kubepods...pod<uid>.slice or /kubepods/.../pod<uid>/), else a
// container ("container:<first 12 hex digits of its id>", from docker-, libpod-, crio- or
// cri-containerd- scopes and /docker/<id>), else nullopt.
std::optional<std::string> container_of_cgroup(std::string_view cgroup);

// The `netns` label of a namespace: for a path its basename ("/run/netns/pod1" -> "pod1"); for a
// pid the pod or container its cgroup names (read once, from <procfs>/PID/cgroup), else
// "pid:PID". Never empty.
std::string netns_label(const NetnsConfig& netns, const std::string& procfs);

// The file that names the namespace: the path, or <procfs>/PID/ns/net.
std::string netns_file(const NetnsConfig& netns, const std::string& procfs);

// Opens a network namespace file (`netns:`, /proc/PID/ns/net of `pid`, `discover.only_netns`)
// without blocking and keeps it only if it is one: a regular file of nsfs whose namespace type
// (NS_GET_NSTYPE) is a network namespace. Anything else, a FIFO included, is refused at once,
// never waited on. `pid`: the process the file belongs to, 0 for a path. The error is the reason
// alone ("no such file (ip netns add?)", "no process 12", "is a FIFO, not a network namespace
// file (...)"), for the caller to prefix with the file.
Result<FileDescriptor> open_network_namespace(const std::string& file, int pid);

// Whether `file` is there and is something other than a network namespace file (a FIFO, a
// directory, a regular file of another file system, another kind of namespace), which no waiting
// mends. False for a file that is missing or cannot be opened now (a pod's may come later).
bool is_not_network_namespace(const std::string& file);

// Runs `work` on a thread that entered the namespace, and waits for it. Errors: the namespace
// file is missing or not a network namespace (open_network_namespace), ptrace access to the
// process is refused, setns is refused (CAP_SYS_ADMIN), no thread could be started. `work` does
// not run then.
Status run_in_netns(const NetnsConfig& netns, const std::string& procfs,
                    const std::function<void()>& work);

// A socket(2) created inside the namespace; its descriptor is the caller's to close. Errors as
// run_in_netns, and socket(2)'s own.
Result<int> netns_socket(const NetnsConfig& netns, const std::string& procfs, int domain, int type,
                         int protocol);

// Whether the namespace a target names is still the one that files and sockets opened in it are
// bound to. Such a file or socket stays bound to its namespace, and keeps it alive, after the
// process named by `netns_pid` ended or the file named by `netns` was removed or replaced; a
// collector that keeps them open between runs checks this every run, for one syscall and no
// allocation, and closes them when it fails (opening them again fails while the namespace is
// gone, naming why). For a pid it polls a pidfd of the process (pidfd_open(2): no privilege);
// for a file it compares the file's inode with the one it had when armed. Not thread-safe: one
// owner.
class NetnsWatch {
 public:
  NetnsWatch(NetnsConfig netns, const std::string& procfs);
  ~NetnsWatch();
  NetnsWatch(const NetnsWatch&) = delete;
  NetnsWatch& operator=(const NetnsWatch&) = delete;

  // Notes the namespace named now; call it just before opening files or sockets in it. Errors:
  // no such process, no such file.
  Status arm();
  // After arm(): ok while the process runs, or the file names the namespace it named at arm().
  // Otherwise an error naming what changed, and the watch is disarmed. Ok when not armed.
  Status check();
  bool armed() const { return armed_; }
  void disarm();

 private:
  NetnsConfig netns_;
  std::string file_;  // netns_file()
  bool armed_ = false;
  int pidfd_ = -1;
  dev_t dev_ = 0;
  ino_t inode_ = 0;
};

}  // namespace mcb
