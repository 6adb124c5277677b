#pragma once
// SockDiagSocket: a NETLINK_SOCK_DIAG socket that runs inet_diag and unix_diag dumps
// synchronously on the calling thread, each bounded by a deadline. Owned by one collector; not
// thread-safe.
//
// Why synchronous rather than a non-blocking socket on the event loop: the kernel builds each
// part of a dump inside our own recvmsg() call (netlink_recvmsg runs the next netlink_dump step
// once the previous part is read), so there is never anything to wait for. An asynchronous
// socket would be reported ready at once for every part and spend the same CPU on the same loop
// thread, adding states but no concurrency. What needs a bound is the work, so every dump has a
// deadline checked before each receive and fails when it passes (a receive is tried first, and
// only when nothing is there yet does poll() wait with the time left, for the case of a kernel
// that stops answering); the socket is then closed so the rest of that dump
// is discarded and the next one starts clean. A dump overruns its deadline by one receive at
// most; within one receive the kernel fills up to 32 KiB (about 260 sockets), walking as much of
// its connection table as that takes, which with a filter matching few sockets can be the whole
// table. bench/sockdiag_poll.sh measures whole dumps (README "Benchmarks").

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "collectors/inet_diag.hpp"
#include "collectors/unix_diag.hpp"
#include "common/files.hpp"
#include "common/result.hpp"

namespace mcb {

class SockDiagSocket {
 public:
  using Clock = std::chrono::steady_clock;

  // Opens the NETLINK_SOCK_DIAG socket (non-blocking, close-on-exec) and returns its descriptor;
  // the kernel answers about the sockets of the network namespace it was created in.
  using Opener = std::function<Result<int>()>;

  // `opener` unset: a socket of the calling thread's namespace.
  explicit SockDiagSocket(Opener opener = {}) : opener_(std::move(opener)) {}
  SockDiagSocket(const SockDiagSocket&) = delete;
  SockDiagSocket& operator=(const SockDiagSocket&) = delete;

  // Runs one dump and appends every socket it reports to `out`. The socket is opened on first
  // use. Errors: no netlink socket can be opened, the kernel refuses the request, a malformed
  // reply (see parse_inet_diag), or `deadline` passing before the dump ends; `out` then holds the
  // part read so far and must not be used.
  Status dump(const DiagRequest& request, Clock::time_point deadline, std::vector<DiagSocket>& out);

  // Dumps the TCP sockets of both families in `states` that pass `filter` (compile_port_filter;
  // empty: every socket), with their memory counters when `memory_info`, into `out`: one walk of
  // the kernel's tables (an AF_UNSPEC DiagRequest). A kernel that refuses that request
  // (kernel_refused) gets one dump per family, then and from then on. Errors as dump().
  Status dump_tcp(std::uint32_t states, const std::vector<std::byte>& filter, bool memory_info,
                  Clock::time_point deadline, std::vector<DiagSocket>& out);
  // False once the kernel refused an AF_UNSPEC dump (dump_tcp then dumps each family).
  bool one_walk() const { return !per_family_; }

  // Runs the lookup of request.listener: the socket bound there, or nullopt when there is none.
  // Costs the same whatever the number of sockets (no table is walked). Errors as dump().
  Result<std::optional<DiagSocket>> lookup(const DiagRequest& request, Clock::time_point deadline);

  // Dumps the listening unix stream sockets (unix_diag.hpp) into `out`. Errors as dump().
  Status dump_unix_listeners(Clock::time_point deadline, std::vector<UnixDiagSocket>& out);

  // Closes the netlink socket; the next request opens another (through the opener).
  void close();

 private:
  // Writes the request with sequence number `seq` into `message` (replacing what it held).
  using Encode = std::function<void(std::uint32_t seq, std::vector<std::byte>& message)>;
  // Parses one datagram of the reply and says whether to stop early (a lookup's answer came).
  using Parse = std::function<Result<DumpProgress>(std::span<const std::byte>, std::uint32_t seq,
                                                   bool& stop)>;
  // Sends the message `encode` writes and hands each datagram of the reply to `parse` until the
  // dump is done, not_found arrives or `parse` says to stop. The callers' lambdas capture one
  // reference, which std::function holds without allocating.
  Result<DumpProgress> exchange(const Encode& encode, Clock::time_point deadline,
                                const Parse& parse);
  Status open();

  Opener opener_;
  FileDescriptor fd_;
  bool per_family_ = false;  // the kernel refused an AF_UNSPEC dump
  std::uint32_t seq_ = 0;
  std::vector<std::byte> buffer_;
  // Kept between requests so that a lookup ten times a second allocates nothing.
  std::vector<std::byte> request_;
  std::vector<DiagSocket> found_;
};

}  // namespace mcb
