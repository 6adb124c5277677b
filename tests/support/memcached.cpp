#include "tests/support/memcached.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>

namespace mcb::test {
namespace {

constexpr const char* kMemcachedBinary = "/usr/bin/memcached";

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_UNSPEC;
};

SocketAddress socket_address(const std::string& address) {
  SocketAddress a;
  if (address.rfind("unix:", 0) == 0) {
    const std::string path = address.substr(5);
    auto* un = reinterpret_cast<sockaddr_un*>(&a.storage);
    if (path.size() >= sizeof un->sun_path) throw std::runtime_error("unix path too long: " + path);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.c_str(), path.size() + 1);
    a.length = sizeof(sockaddr_un);
    a.family = AF_UNIX;
    return a;
  }
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("bad address " + address);
  std::string host = address.substr(0, colon);
  const auto port = static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1)));
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.find(':') != std::string::npos) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    if (::inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) != 1) {
      throw std::runtime_error("bad IPv6 address " + host);
    }
    a.length = sizeof(sockaddr_in6);
    a.family = AF_INET6;
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&a.storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &in->sin_addr) != 1) {
      throw std::runtime_error("bad IPv4 address " + host);
    }
    a.length = sizeof(sockaddr_in);
    a.family = AF_INET;
  }
  return a;
}

// True when the last complete line of `reply` ends a memcached reply.
bool reply_complete(const std::string& reply) {
  if (reply.size() < 2 || reply.compare(reply.size() - 2, 2, "\r\n") != 0) return false;
  const auto start = reply.rfind('\n', reply.size() - 3);
  const std::string line =
      reply.substr(start == std::string::npos ? 0 : start + 1,
                   reply.size() - 2 - (start == std::string::npos ? 0 : start + 1));
  for (const char* word : {"END", "ERROR", "CLIENT_ERROR", "SERVER_ERROR", "VERSION"}) {
    const std::size_t n = std::strlen(word);
    if (line.compare(0, n, word) == 0 && (line.size() == n || line[n] == ' ')) return true;
  }
  return false;
}

}  // namespace

std::uint16_t free_port(const std::string& host) {
  const SocketAddress a =
      socket_address((host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":0");
  const int fd = ::socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a.storage), a.length) != 0) {
    const std::string error = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("bind " + host + ":0: " + error);
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  ::close(fd);
  return ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

RawConnection::RawConnection(const std::string& address, std::chrono::milliseconds timeout)
    : address_(address), timeout_(timeout) {
  const SocketAddress a = socket_address(address);
  fd_ = ::socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&a.storage), a.length) != 0) {
    const std::string error = std::strerror(errno);
    ::close(fd_);
    throw std::runtime_error("connect " + address + ": " + error);
  }
}

RawConnection::~RawConnection() { ::close(fd_); }

std::string RawConnection::request(const std::string& request) {
  auto failed = [&](const std::string& what) {
    return std::runtime_error(what + " " + address_ + ": " + std::strerror(errno));
  };
  if (::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    throw failed("send");
  }
  const auto end = std::chrono::steady_clock::now() + timeout_;
  std::string reply;
  char buf[65536];
  while (!reply_complete(reply)) {
    if (std::chrono::steady_clock::now() >= end) {
      errno = ETIMEDOUT;
      throw failed("read");
    }
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) errno = ECONNRESET;
    if (n <= 0) throw failed("read");
    reply.append(buf, static_cast<std::size_t>(n));
  }
  return reply;
}

std::string memcached_request(const std::string& address, const std::string& request,
                              std::chrono::milliseconds timeout) {
  return RawConnection(address, timeout).request(request);
}

StatsMap parse_stat_lines(const std::string& reply) {
  StatsMap stats;
  std::size_t pos = 0;
  while (pos < reply.size()) {
    const auto nl = reply.find("\r\n", pos);
    if (nl == std::string::npos) break;
    const std::string line = reply.substr(pos, nl - pos);
    pos = nl + 2;
    if (line == "END") return stats;
    const auto space = line.find(' ', 5);
    if (line.rfind("STAT ", 0) != 0 || space == std::string::npos) {
      throw std::runtime_error("not a stats reply: " + reply.substr(0, 200));
    }
    stats[line.substr(5, space - 5)] = line.substr(space + 1);
  }
  throw std::runtime_error("stats reply without END: " + reply.substr(0, 200));
}

void store_items(const std::string& address, const std::string& prefix, int count,
                 std::size_t size) {
  RawConnection c(address, std::chrono::seconds(30));
  const std::string value(size, 'v');
  std::string batch;
  for (int i = 0; i < count; ++i) {
    batch += "set " + prefix + std::to_string(i) + " 0 0 " + std::to_string(size) + " noreply\r\n" +
             value + "\r\n";
    if (batch.size() > (1 << 20) || i + 1 == count) {
      const std::string reply = c.request(batch + "version\r\n");
      if (reply.rfind("VERSION ", 0) != 0) {
        throw std::runtime_error("storing items at " + address + ": " + reply.substr(0, 200));
      }
      batch.clear();
    }
  }
}

int fill_slab_classes(const std::string& address, std::size_t largest) {
  RawConnection c(address, std::chrono::seconds(30));
  int stored = 0;
  for (std::size_t size = 1; size <= largest; size = std::max(size + 1, size * 104 / 100)) {
    const std::string key = "class" + std::to_string(size);
    const std::string reply = c.request("set " + key + " 0 0 " + std::to_string(size) + "\r\n" +
                                        std::string(size, 'c') + "\r\nversion\r\n");
    if (reply.rfind("STORED\r\nVERSION ", 0) != 0) {
      throw std::runtime_error("storing " + key + " at " + address + ": " + reply.substr(0, 200));
    }
    ++stored;
  }
  return stored;
}

// ---- Memcached ----------------------------------------------------------------------------

Memcached::Memcached(std::vector<std::string> args, Listen listen)
    : args_(std::move(args)), listen_(std::move(listen)) {
  if (::access(kMemcachedBinary, X_OK) != 0) {
    throw std::runtime_error(std::string(kMemcachedBinary) +
                             " is not installed (scripts/bootstrap installs it)");
  }
  if (listen_.unix_path.empty()) port_ = listen_.port != 0 ? listen_.port : free_port(listen_.host);
  start();
}

std::string Memcached::address() const {
  if (!listen_.unix_path.empty()) return "unix:" + listen_.unix_path;
  const bool v6 = listen_.host.find(':') != std::string::npos;
  return (v6 ? "[" + listen_.host + "]" : listen_.host) + ":" + std::to_string(port_);
}

void Memcached::start() {
  std::vector<std::string> argv{kMemcachedBinary, "-U", "0"};
  if (::geteuid() == 0) argv.insert(argv.end(), {"-u", "root"});
  if (listen_.unix_path.empty()) {
    argv.insert(argv.end(), {"-l", listen_.host, "-p", std::to_string(port_)});
  } else {
    argv.insert(argv.end(), {"-s", listen_.unix_path});
  }
  argv.insert(argv.end(), args_.begin(), args_.end());
  child_ = std::make_unique<Child>(argv);
  std::string last_error;
  const bool answering = eventually(
      [&] {
        if (!child_->running()) return true;
        try {
          if (!listen_.text_protocol) {
            RawConnection accepted(address(), std::chrono::milliseconds(500));
            return true;
          }
          return memcached_request(address(), "version\r\n", std::chrono::milliseconds(500))
                     .rfind("VERSION ", 0) == 0;
        } catch (const std::exception& e) {
          last_error = e.what();
          return false;
        }
      },
      std::chrono::seconds(10));
  if (!answering || !child_->running()) {
    throw std::runtime_error("memcached did not start answering (" + last_error +
                             "); its output:\n" + child_->output());
  }
}

StatsMap Memcached::stats() const {
  return parse_stat_lines(memcached_request(address(), "stats\r\n"));
}

StatsMap Memcached::settings() const {
  return parse_stat_lines(memcached_request(address(), "stats settings\r\n"));
}

void Memcached::kill() {
  child_->signal(SIGKILL);
  child_->wait_exit(std::chrono::seconds(5));
}

void Memcached::stop() {
  child_->signal(SIGTERM);
  child_->wait_exit(std::chrono::seconds(5));
}

namespace {

// The state letter of /proc/<pid>/stat: 'T' while stopped.
char process_state(pid_t pid) {
  const std::string stat = read_text_file("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

}  // namespace

void Memcached::pause() {
  child_->signal(SIGSTOP);
  if (!eventually([&] { return process_state(child_->pid()) == 'T'; })) {
    throw std::runtime_error("memcached did not stop on SIGSTOP");
  }
}

void Memcached::resume() {
  child_->signal(SIGCONT);
  if (!eventually([&] { return process_state(child_->pid()) != 'T'; })) {
    throw std::runtime_error("memcached did not continue on SIGCONT");
  }
}

void Memcached::restart() {
  if (child_->running()) kill();
  start();
}

// ---- FakeServer ---------------------------------------------------------------------------

bool FakeConnection::wait(short events, std::chrono::milliseconds timeout) {
  pollfd fds[2] = {{fd_, events, 0}, {stop_fd_, POLLIN, 0}};
  const int n = ::poll(fds, 2, static_cast<int>(timeout.count()));
  if (n <= 0 || (fds[1].revents & POLLIN) != 0) return false;
  return fds[0].revents != 0;
}

std::optional<std::string> FakeConnection::read_line(std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto nl = buffered_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !wait(POLLIN, left)) return std::nullopt;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0) return std::nullopt;
    buffered_.append(buf, static_cast<std::size_t>(n));
  }
}

bool FakeConnection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    if (!wait(POLLOUT, std::chrono::seconds(30))) return false;
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0) return false;
    sent_ += static_cast<std::uint64_t>(n);
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void FakeConnection::hold() {
  char buf[4096];
  for (;;) {
    if (!wait(POLLIN, std::chrono::hours(1))) return;
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0) return;
  }
}

FakeServer::FakeServer(Script script) : script_(std::move(script)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    throw std::runtime_error(std::string("fake server: ") + std::strerror(errno));
  }
  port_ = ntohs(a.sin_port);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  acceptor_ = std::thread([this] { accept_loop(); });
}

void FakeServer::accept_loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if ((fds[1].revents & POLLIN) != 0) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    ++connections_;
    std::lock_guard<std::mutex> lock(mutex_);
    threads_.emplace_back([this, fd] {
      FakeConnection c(fd, stop_fd_, sent_);
      script_(c);
      ::close(fd);
    });
  }
}

FakeServer::~FakeServer() {
  const std::uint64_t one = 1;
  if (::write(stop_fd_, &one, sizeof one) < 0) {
    // The eventfd cannot be full: a failed write only means the threads stop on their own.
  }
  acceptor_.join();
  for (std::thread& t : threads_) t.join();
  ::close(listen_fd_);
  ::close(stop_fd_);
}

// ---- canned scripts -----------------------------------------------------------------------

namespace fake {
namespace {

// Serves `version` and unknown commands; `on_stats` answers `stats` and returns false to end the
// connection.
FakeServer::Script serve(std::function<bool(FakeConnection&)> on_stats) {
  return [on_stats = std::move(on_stats)](FakeConnection& c) {
    while (auto line = c.read_line()) {
      bool go_on = true;
      if (*line == "version") {
        go_on = c.send("VERSION fake\r\n");
      } else if (*line == "stats") {
        go_on = on_stats(c);
      } else {
        go_on = c.send("ERROR\r\n");
      }
      if (!go_on) return;
    }
  };
}

std::string half_of_a_reply() {
  const std::string full = stats_reply({{"pid", "1"},
                                        {"uptime", "100"},
                                        {"version", "fake"},
                                        {"curr_connections", "10"},
                                        {"total_connections", "20"}});
  return full.substr(0, full.size() / 2);
}

}  // namespace

std::string stats_reply(const StatsMap& stats) {
  std::string out;
  for (const auto& [name, value] : stats) out += "STAT " + name + " " + value + "\r\n";
  return out + "END\r\n";
}

FakeServer::Script endless_line() {
  return serve([](FakeConnection& c) {
    if (!c.send("STAT x ")) return false;
    const std::string chunk(std::size_t{64} * 1024, 'x');
    while (c.send(chunk)) {
    }
    return false;
  });
}

FakeServer::Script close_mid_reply() {
  return serve([](FakeConnection& c) {
    c.send(half_of_a_reply());
    return false;
  });
}

FakeServer::Script half_reply_then_silence() {
  return serve([](FakeConnection& c) {
    if (c.send(half_of_a_reply())) c.hold();
    return false;
  });
}

FakeServer::Script binary_garbage() {
  return serve([](FakeConnection& c) {
    std::string garbage;
    for (int i = 0; i < 4096; ++i) garbage += static_cast<char>((i * 131 + 7) % 256);
    return c.send(garbage);
  });
}

FakeServer::Script huge_reply(std::size_t bytes) {
  return serve([bytes](FakeConnection& c) {
    std::string reply;
    for (std::size_t i = 0; reply.size() < bytes; ++i) {
      reply += "STAT filler_" + std::to_string(i) + " " + std::string(100, '7') + "\r\n";
    }
    return c.send(reply + "END\r\n");
  });
}

FakeServer::Script without_settings(const StatsMap& stats) {
  return serve([reply = stats_reply(stats)](FakeConnection& c) { return c.send(reply); });
}

FakeServer::Script replies(std::map<std::string, std::function<std::string()>> replies) {
  return [replies = std::move(replies)](FakeConnection& c) {
    while (auto line = c.read_line()) {
      const auto it = replies.find(*line);
      const bool sent = *line == "version"    ? c.send("VERSION fake\r\n")
                        : it != replies.end() ? c.send(it->second())
                                              : c.send("ERROR\r\n");
      if (!sent) return;
    }
  };
}

}  // namespace fake

}  // namespace mcb::test
