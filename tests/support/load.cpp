#include "tests/support/load.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace mcb::test {
namespace {

constexpr auto kDeadline = std::chrono::seconds(2);

sockaddr_in ipv4(const std::string& host, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) {
    throw std::runtime_error("not an IPv4 address: " + host);
  }
  return a;
}

std::runtime_error error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

// Reads until the data received ends with `suffix`; throws on error, EOF or the deadline.
void read_until(const Socket& socket, std::string_view suffix) {
  std::string reply;
  char buf[16384];
  while (reply.size() < suffix.size() ||
         reply.compare(reply.size() - suffix.size(), suffix.size(), suffix) != 0) {
    const ssize_t n = ::recv(socket.fd(), buf, sizeof buf, 0);
    if (n == 0) throw std::runtime_error("memcached closed the connection after: " + reply);
    if (n < 0) throw error("recv");
    reply.append(buf, static_cast<std::size_t>(n));
    if (reply.rfind("ERROR", 0) == 0 || reply.find("SERVER_ERROR") != std::string::npos) {
      throw std::runtime_error("memcached answered " + reply);
    }
  }
}

}  // namespace

Socket::~Socket() {
  if (fd_ >= 0) ::close(fd_);
}

Socket::Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

Socket connect_tcp(const std::string& host, std::uint16_t port, const ConnectOptions& options) {
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (options.wait ? 0 : SOCK_NONBLOCK), 0));
  if (s.fd() < 0) throw error("socket");
  // connect() too gives up after SO_SNDTIMEO.
  timeval tv{std::chrono::duration_cast<std::chrono::seconds>(kDeadline).count(), 0};
  ::setsockopt(s.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (options.receive_buffer > 0) {
    ::setsockopt(s.fd(), SOL_SOCKET, SO_RCVBUF, &options.receive_buffer,
                 sizeof options.receive_buffer);
  }
  if (!options.source.empty()) {
    // The port is chosen at connect() per destination, so churn does not use up the ports.
    const int on = 1;
    ::setsockopt(s.fd(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
    const sockaddr_in from = ipv4(options.source, 0);
    if (::bind(s.fd(), reinterpret_cast<const sockaddr*>(&from), sizeof from) != 0) {
      throw error("bind " + options.source);
    }
  }
  const sockaddr_in to = ipv4(host, port);
  if (::connect(s.fd(), reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0 &&
      !(errno == EINPROGRESS && !options.wait)) {
    throw error("connect to " + host + ":" + std::to_string(port));
  }
  return s;
}

void send_all(const Socket& socket, const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(socket.fd(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0) throw error("send");
    sent += static_cast<std::size_t>(n);
  }
}

void fill_cache(const std::string& host, std::uint16_t port, std::size_t total_bytes,
                std::size_t value_bytes) {
  const Socket s = connect_tcp(host, port);
  const std::string value(value_bytes, 'f');
  std::string batch;
  for (std::size_t i = 0, stored = 0; stored < total_bytes; ++i, stored += value_bytes) {
    batch += "set fill:" + std::to_string(i) + " 0 0 " + std::to_string(value_bytes) +
             " noreply\r\n" + value + "\r\n";
    if (batch.size() > std::size_t{256} * 1024) {
      send_all(s, batch);
      batch.clear();
    }
  }
  send_all(s, batch + "version\r\n");  // answered once every set before it is done
  read_until(s, "\r\n");
}

LoadThreads::LoadThreads(int threads, const Body& body) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this, i, body] {
      while (!stopping()) {
        try {
          body(i, *this);
        } catch (const std::exception& e) {
          ++errors_;
          {
            std::lock_guard<std::mutex> lock(mutex_);
            last_error_ = e.what();
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      }
    });
  }
}

LoadThreads::~LoadThreads() {
  stop_ = true;
  for (std::thread& t : threads_) t.join();
}

std::string LoadThreads::last_error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_error_;
}

ConnectionChurn::ConnectionChurn(const std::string& host, std::uint16_t port,
                                 const std::vector<std::string>& sources, int threads_per_source,
                                 std::chrono::milliseconds hold)
    : threads_(static_cast<int>(sources.size()) * threads_per_source, [=](int index,
                                                                          LoadThreads& threads) {
        const std::string& source = sources[static_cast<std::size_t>(index) % sources.size()];
        const Socket s = connect_tcp(host, port, {.source = source});
        send_all(s, "get churn\r\n");
        read_until(s, "END\r\n");
        std::this_thread::sleep_for(hold);
        threads.done();
      }) {}

PooledLoad::PooledLoad(const std::string& host, std::uint16_t port, Options options)
    : threads_(options.threads, [=](int index, LoadThreads& threads) {
        const std::string value(options.value_bytes, 'p');
        const std::string prefix = "pool:" + std::to_string(index) + ":";
        const Socket s = connect_tcp(host, port);  // once, unless memcached drops it
        for (std::uint64_t n = 0; !threads.stopping(); ++n) {
          const std::string key = prefix + std::to_string(options.new_keys ? n : n % 100);
          send_all(s, "set " + key + " 0 0 " + std::to_string(value.size()) + "\r\n" + value +
                          "\r\nget " + key + "\r\n");
          read_until(s, "END\r\n");
          threads.done();
          std::this_thread::sleep_for(options.pause);
        }
      }) {}

}  // namespace mcb::test
