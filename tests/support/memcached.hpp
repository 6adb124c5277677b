#pragma once
// memcached peers for tests.
//
// Memcached: the real Debian memcached as a child process, on a free port of 127.0.0.1 or ::1,
// or on a unix socket. Call enter_private_netns() first so its port and the kernel counters are
// the test's own. Its stats are read over a raw socket, independent of the code under test.
//
// FakeServer: a scriptable TCP server for the faults real memcached cannot produce (an endless
// line, a reply cut short, garbage, a huge reply). Every accepted connection runs the script on
// its own thread; destroying the server wakes and joins them all. The canned scripts in
// test::fake cover the usual faults; hostile-peer tests write their own.
//
// Test threads only; FakeServer's counters may be read from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/process.hpp"

namespace mcb::test {

using StatsMap = std::map<std::string, std::string>;

// A client connection opened with plain sockets, closed when the handle goes: to fill
// memcached's connection slots, or to talk to it independently of the code under test.
class RawConnection {
 public:
  // Connects to "host:port", "[v6]:port" or "unix:/path"; every later read and write times out
  // after `timeout`. Throws on failure.
  explicit RawConnection(const std::string& address,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Sends `request` and reads until a line "END", "ERROR...", "CLIENT_ERROR ...",
  // "SERVER_ERROR ..." or "VERSION ..." arrives. Throws on failure or timeout.
  std::string request(const std::string& request);

 private:
  std::string address_;
  std::chrono::milliseconds timeout_;
  int fd_ = -1;
};

// Sends `request` to `address` ("host:port", "[v6]:port" or "unix:/path") on a fresh connection
// and reads until a line "END", "ERROR...", "CLIENT_ERROR ...", "SERVER_ERROR ..." or
// "VERSION ..." arrives. Throws on any failure or after `timeout`.
std::string memcached_request(const std::string& address, const std::string& request,
                              std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Parses "STAT name value" lines. Throws if the reply is not a stats reply.
StatsMap parse_stat_lines(const std::string& reply);

// A TCP port of `host` that nothing listens on now.
std::uint16_t free_port(const std::string& host);

// Stores `count` items of `size` bytes under keys "<prefix><n>" without a reply each (noreply),
// then waits until memcached has read them all. Refusals (out of memory with -M) are memcached's
// to count: store_no_memory, and outofmemory of the item's slab class. Throws on failure.
void store_items(const std::string& address, const std::string& prefix, int count,
                 std::size_t size);

// One item of each size from 1 byte to `largest`, the sizes at most 4% apart: an item in every
// slab class of a memcached whose growth factor (-f) is 1.08 or more. Returns how many.
int fill_slab_classes(const std::string& address, std::size_t largest = 400 * 1024);

class Memcached {
 public:
  // Where it listens: a free port of `host`, or a unix socket (and no TCP).
  struct Listen {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;  // 0: a free port of `host`
    std::string unix_path;
    // False for a memcached that does not answer text on this listener (-B binary, -S, -Z): it
    // is started once it accepts connections.
    bool text_protocol = true;

    static Listen tcp(std::string host, std::uint16_t port = 0) {
      Listen l;
      l.host = std::move(host);
      l.port = port;
      return l;
    }
    static Listen unix_socket(std::string path) {
      Listen l;
      l.unix_path = std::move(path);
      return l;
    }
  };

  // Starts memcached with extra arguments (e.g. {"-c", "64"}) and waits until it answers
  // `version` (or, without the text protocol, accepts a connection). Throws with its output
  // otherwise.
  Memcached(std::vector<std::string> args, Listen listen);
  explicit Memcached(std::vector<std::string> args = {}) : Memcached(std::move(args), Listen{}) {}

  // The address in the daemon's notation: "127.0.0.1:PORT", "[::1]:PORT" or "unix:/path".
  std::string address() const;
  std::uint16_t port() const { return port_; }
  Child& process() { return *child_; }

  // `stats` / `stats settings` over a fresh raw connection (one more total_connections).
  StatsMap stats() const;
  StatsMap settings() const;

  void kill();    // SIGKILL, then reaped
  void stop();    // SIGTERM, then reaped
  void pause();   // SIGSTOP, and waits until the kernel shows it stopped
  void resume();  // SIGCONT, and waits until it runs again
  // Starts it again on the same port or socket with the same arguments (after kill or stop).
  void restart();

 private:
  void start();

  std::vector<std::string> args_;
  Listen listen_;
  std::uint16_t port_ = 0;
  std::unique_ptr<Child> child_;
};

// One connection accepted by a FakeServer. Every call returns early once the server stops.
class FakeConnection {
 public:
  FakeConnection(int fd, int stop_fd, std::atomic<std::uint64_t>& sent)
      : fd_(fd), stop_fd_(stop_fd), sent_(sent) {}

  // The next line without its "\r\n"; nullopt at EOF, on error, at stop or after `timeout`.
  std::optional<std::string> read_line(
      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Sends every byte; false once the peer is gone or the server stops.
  bool send(std::string_view bytes);
  // Keeps the connection open, reading and dropping what comes, until the peer closes or the
  // server stops.
  void hold();

 private:
  bool wait(short events, std::chrono::milliseconds timeout);

  int fd_;
  int stop_fd_;
  std::atomic<std::uint64_t>& sent_;
  std::string buffered_;
};

class FakeServer {
 public:
  using Script = std::function<void(FakeConnection&)>;

  // Listens on 127.0.0.1 at a free port; each connection runs `script`, then is closed.
  explicit FakeServer(Script script);
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }
  std::uint64_t bytes_sent() const { return sent_.load(); }

 private:
  void accept_loop();

  Script script_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<std::uint64_t> sent_{0};
  std::mutex mutex_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

// Canned scripts. Each reads commands line by line and answers `version` with "VERSION fake" so
// probes succeed; the fault is in the answer to `stats`.
namespace fake {

// A valid `stats` reply with exactly these stats.
std::string stats_reply(const StatsMap& stats);

// Answers `stats` with "STAT x " and then bytes without a newline, forever.
FakeServer::Script endless_line();
// Answers `stats` with the first half of a valid reply, then closes.
FakeServer::Script close_mid_reply();
// Answers `stats` with the first half of a valid reply, then says nothing more.
FakeServer::Script half_reply_then_silence();
// Answers `stats` with bytes that are not text.
FakeServer::Script binary_garbage();
// Answers `stats` with valid STAT lines adding up to `bytes`, then END.
FakeServer::Script huge_reply(std::size_t bytes);
// Answers `stats` with `stats` and `stats settings` with "ERROR", as servers without settings do.
FakeServer::Script without_settings(const StatsMap& stats);
// Answers each command (a line such as "stats settings") with the reply `replies` has for it, made
// on each request, and "ERROR" for any other: to replay captured replies, or vary them.
FakeServer::Script replies(std::map<std::string, std::function<std::string()>> replies);

}  // namespace fake

}  // namespace mcb::test
