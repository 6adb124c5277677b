#pragma once
// Client load on a real memcached for tests, made with plain sockets: connections opened from a
// chosen source address (127.0.0.x, so the daemon's evidence can name the client), left
// connecting, or left unread; and threads that churn short connections or keep pooled ones busy.
//
// Every blocking call has a deadline (2 s), so a stalled memcached never hangs a test; the load
// classes stop and join their threads when destroyed. Start them after enter_private_netns().
// Each open socket is one of the process's 20000 descriptors. Load classes are started and
// destroyed on one thread; their counters may be read from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mcb::test {

// A TCP socket, closed when the handle goes.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket();
  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&&) = delete;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  int fd() const { return fd_; }

 private:
  int fd_;
};

struct ConnectOptions {
  std::string source{};    // local IPv4 address to connect from; empty: the kernel's choice
  int receive_buffer = 0;  // SO_RCVBUF before connecting (a small window); 0: the default
  // Wait for the handshake (throws if it fails or takes over 2 s); false returns at once with
  // the connect in progress, as when the server's accept queue overflows.
  bool wait = true;
};

// Connects to the IPv4 `host`:`port`. Throws naming the error.
Socket connect_tcp(const std::string& host, std::uint16_t port, const ConnectOptions& options = {});

// Sends all of `bytes`; throws on error or after 2 s.
void send_all(const Socket& socket, const std::string& bytes);

// Stores `total_bytes` of `value_bytes` values under new keys ("fill:N") with noreply sets on one
// connection, then waits until memcached has processed them all.
void fill_cache(const std::string& host, std::uint16_t port, std::size_t total_bytes,
                std::size_t value_bytes);

// Threads that each run `body(index)` again and again until the object goes. A body that throws
// is an error, counted with its message kept, and runs again 10 ms later; it calls done() for
// each unit of work it completes and stops when stopping() says so.
class LoadThreads {
 public:
  using Body = std::function<void(int index, LoadThreads& threads)>;

  LoadThreads(int threads, const Body& body);
  ~LoadThreads();  // stops and joins
  LoadThreads(const LoadThreads&) = delete;
  LoadThreads& operator=(const LoadThreads&) = delete;

  bool stopping() const { return stop_.load(); }
  void done() { ++completed_; }

  std::uint64_t completed() const { return completed_.load(); }
  std::uint64_t errors() const { return errors_.load(); }
  std::string last_error() const;

 private:
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> completed_{0};
  std::atomic<std::uint64_t> errors_{0};
  mutable std::mutex mutex_;
  std::string last_error_;  // guarded by mutex_
  std::vector<std::thread> threads_;
};

// What a client without a connection pool does for every request, from `threads_per_source`
// threads for each of `sources`: connect, one `get`, hold the connection for `hold` (the rest of
// the request), close.
class ConnectionChurn {
 public:
  ConnectionChurn(const std::string& host, std::uint16_t port,
                  const std::vector<std::string>& sources, int threads_per_source,
                  std::chrono::milliseconds hold);

  std::uint64_t connections() const { return threads_.completed(); }
  std::uint64_t errors() const { return threads_.errors(); }
  std::string last_error() const { return threads_.last_error(); }

 private:
  LoadThreads threads_;
};

// `threads` pooled connections, each doing a `set` and a `get` of `value_bytes` and then pausing
// for `pause`: a well-behaved application. With `new_keys` every set stores a key not used before
// (a cache that keeps growing); otherwise each thread cycles over 100 keys of its own.
class PooledLoad {
 public:
  struct Options {
    int threads = 4;
    std::size_t value_bytes = 100;
    std::chrono::microseconds pause{2000};
    bool new_keys = false;
  };

  PooledLoad(const std::string& host, std::uint16_t port, Options options);

  // Completed set/get pairs.
  std::uint64_t operations() const { return threads_.completed(); }
  std::uint64_t errors() const { return threads_.errors(); }
  std::string last_error() const { return threads_.last_error(); }

 private:
  LoadThreads threads_;
};

}  // namespace mcb::test
