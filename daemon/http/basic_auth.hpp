#pragma once
// HTTP basic authentication against the bcrypt hashes of the web config's basic_auth_users.
//
// bcrypt is slow on purpose (tens of milliseconds at cost 10), so it never runs on the event loop:
// it runs on the one thread of a VerifyWorker, behind a bounded queue, and the verdict is posted
// back to the loop. A user's last accepted password is remembered as a keyed SHA-256 digest, so a
// scraper sending the same credentials every few seconds is checked in microseconds; a wrong
// password costs a full bcrypt every time, and so does an unknown user (checked against a
// configured user's hash and then refused, so timing does not tell who exists).

#include <array>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <boost/asio/any_io_executor.hpp>

namespace mcb {

struct BasicCredentials {
  std::string user;
  std::string password;
};

// Pure: the value of an Authorization header, "Basic <base64 of user:password>" (scheme in any
// case). nullopt for another scheme, bad base64, or no colon.
std::optional<BasicCredentials> parse_basic_authorization(std::string_view value);

// True if `password` hashes to `hash` (crypt_r; the comparison takes the same time wherever the
// strings differ). False for a password holding a NUL byte, which crypt would cut short.
bool bcrypt_matches(const std::string& password, const std::string& hash);

// One thread that runs blocking checks in order, behind a queue of at most `max_queued`, and
// hands each result back to the loop. Thread-safe.
class VerifyWorker {
 public:
  using Work = std::function<bool()>;                     // runs on the worker thread
  using Then = std::function<void(std::optional<bool>)>;  // runs on the loop thread

  VerifyWorker(boost::asio::any_io_executor loop, std::size_t max_queued);
  ~VerifyWorker();
  VerifyWorker(const VerifyWorker&) = delete;
  VerifyWorker& operator=(const VerifyWorker&) = delete;

  // Queues `work`; `then(result)` is later posted to the loop. When the queue is full or the
  // worker has stopped, `then(nullopt)` runs at once instead. `work` must own nothing that has to
  // be destroyed on the loop thread: it is destroyed on the worker.
  void submit(Work work, Then then);

  // Drops the queued checks (their `then` is destroyed on the calling thread, never called),
  // waits for the running one and joins the thread. Idempotent. The loop must outlive this call.
  void stop();

 private:
  void run();

  boost::asio::any_io_executor loop_;
  const std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<Work, Then>> queue_;  // guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_
  std::thread thread_;
};

// The users of one web config and the digests of their last accepted passwords. check() and the
// verdicts run on the loop thread; only the bcrypt itself runs on the worker.
class BasicAuth : public std::enable_shared_from_this<BasicAuth> {
 public:
  enum class Verdict { kAllowed, kDenied, kBusy };  // kBusy: the worker's queue is full
  using Done = std::function<void(Verdict)>;

  // `users`: user -> bcrypt hash, at least one.
  explicit BasicAuth(std::map<std::string, std::string, std::less<>> users);

  // Checks an Authorization header value (empty when there was none). Calls `done` once on the
  // loop thread: at once when the answer needs no bcrypt, else when the worker has run it (never,
  // if the worker stops first).
  void check(std::string_view authorization, VerifyWorker& worker, Done done);

 private:
  using Digest = std::array<unsigned char, 32>;
  Digest digest(const BasicCredentials& c) const;

  const std::map<std::string, std::string, std::less<>> users_;
  std::array<unsigned char, 32> key_{};  // random per instance, for the remembered digests
  std::map<std::string, Digest, std::less<>> accepted_;  // user -> digest of the last good password
};

}  // namespace mcb
