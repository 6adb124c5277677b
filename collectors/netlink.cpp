#include "collectors/netlink.hpp"

#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace mcb {
namespace {

// Larger than the 32 KiB the kernel puts in one dump datagram, so none is ever cut.
constexpr std::size_t kReceiveBuffer = std::size_t{64} << 10;

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

void SockDiagSocket::close() { fd_ = FileDescriptor(); }

Status SockDiagSocket::open() {
  if (opener_) {
    auto fd = opener_();
    if (!fd) return fail("cannot open a NETLINK_SOCK_DIAG socket: " + fd.error().message);
    fd_ = FileDescriptor(*fd);
  } else {
    fd_ = FileDescriptor(
        ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_SOCK_DIAG));
    if (!fd_.valid()) return fail(errno_text("cannot open a NETLINK_SOCK_DIAG socket"));
  }
  buffer_.resize(kReceiveBuffer);
  return ok_status();
}

Status SockDiagSocket::dump(const DiagRequest& request, Clock::time_point deadline,
                            std::vector<DiagSocket>& out) {
  auto done = exchange(
      [&request](std::uint32_t seq, std::vector<std::byte>& message) {
        encode_request(request, seq, message);
      },
      deadline,
      [&out](std::span<const std::byte> datagram, std::uint32_t seq, bool& /*stop*/) {
        return parse_inet_diag(datagram, seq, out);
      });
  if (!done) return done.error();
  if (*done == DumpProgress::not_found) {
    close();
    return fail("sock_diag: the kernel refused the request: No such file or directory");
  }
  return ok_status();
}

Status SockDiagSocket::dump_tcp(std::uint32_t states, const std::vector<std::byte>& filter,
                                bool memory_info, Clock::time_point deadline,
                                std::vector<DiagSocket>& out) {
  if (!per_family_) {
    const std::size_t first = out.size();
    Status both = dump({AF_UNSPEC, states, filter, memory_info}, deadline, out);
    // Only the kernel's answer turns it off: no socket, no time or a bad reply try again next.
    if (both || !kernel_refused(both.error())) return both;
    out.resize(first);
    per_family_ = true;
  }
  for (const int family : {AF_INET, AF_INET6}) {
    if (auto st = dump({family, states, filter, memory_info}, deadline, out); !st) return st;
  }
  return ok_status();
}

Status SockDiagSocket::dump_unix_listeners(Clock::time_point deadline,
                                           std::vector<UnixDiagSocket>& out) {
  auto done =
      exchange([](std::uint32_t seq,
                  std::vector<std::byte>& message) { encode_unix_listeners_request(seq, message); },
               deadline,
               [&out](std::span<const std::byte> datagram, std::uint32_t seq, bool& /*stop*/) {
                 return parse_unix_diag(datagram, seq, out);
               });
  if (!done) return done.error();
  if (*done == DumpProgress::not_found) {
    close();
    return fail("unix_diag: the kernel refused the request: No such file or directory");
  }
  return ok_status();
}

Result<std::optional<DiagSocket>> SockDiagSocket::lookup(const DiagRequest& request,
                                                         Clock::time_point deadline) {
  if (request.family != AF_INET && request.family != AF_INET6) {
    return fail("sock_diag: a lookup needs an address family, AF_INET or AF_INET6");
  }
  found_.clear();
  auto done = exchange(
      [&request](std::uint32_t seq, std::vector<std::byte>& message) {
        encode_request(request, seq, message);
      },
      deadline,
      [this](std::span<const std::byte> datagram, std::uint32_t seq,
             bool& stop) -> Result<DumpProgress> {
        auto progress = parse_inet_diag(datagram, seq, found_);
        stop = !found_.empty();  // a lookup answers in one message
        return progress;
      });
  if (!done) return done.error();
  if (found_.empty()) return std::optional<DiagSocket>();
  return std::optional<DiagSocket>(found_.front());
}

Result<DumpProgress> SockDiagSocket::exchange(const Encode& encode, Clock::time_point deadline,
                                              const Parse& parse) {
  if (!fd_.valid()) {
    if (auto opened = open(); !opened) return opened.error();
  }
  // Any failure leaves the dump half-read: close so the next dump starts on a clean socket.
  auto failed = [this](std::string message) -> Error {
    close();
    return fail("sock_diag: " + std::move(message));
  };
  const std::uint32_t seq = ++seq_;
  encode(seq, request_);
  const std::vector<std::byte>& message = request_;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  for (;;) {
    const ssize_t n = ::sendto(fd_.get(), message.data(), message.size(), 0,
                               reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
    if (n == static_cast<ssize_t>(message.size())) break;
    if (n < 0 && errno == EINTR) continue;
    return failed(n < 0 ? errno_text("send") : "short send");
  }
  std::size_t parts = 0;
  bool wait = false;  // the kernel usually has the reply queued before sendto() returns
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return failed("dump not finished within its deadline after " + std::to_string(parts) +
                    " datagrams");
    }
    if (wait) {
      pollfd p{fd_.get(), POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno != EINTR) return failed(errno_text("poll"));
      if (ready <= 0) continue;  // EINTR or the deadline: checked at the top
      wait = false;
    }
    iovec iov{buffer_.data(), buffer_.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = ::recvmsg(fd_.get(), &msg, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) wait = true;
      if (errno == EINTR || wait) continue;
      return failed(errno_text("receive"));
    }
    if (n == 0) return failed("the kernel closed the dump without NLMSG_DONE");
    if ((msg.msg_flags & MSG_TRUNC) != 0) return failed("a reply datagram was truncated");
    ++parts;
    bool stop = false;
    auto progress = parse(std::span(buffer_).first(static_cast<std::size_t>(n)), seq, stop);
    if (!progress) return failed(progress.error().message);
    if (*progress != DumpProgress::more) return *progress;
    if (stop) return DumpProgress::done;
  }
}

}  // namespace mcb
