#pragma once
// HTTP basic authentication against the bcrypt hashes of the web config's basic_auth_users.
//
// bcrypt is slow on purpose (tens of milliseconds at cost 10, about a second at 14, the most the
// web configuration allows), so it never runs on the event loop: it runs on the one thread of a
// VerifyWorker, behind a bounded queue, and the verdict is posted back to the loop. Stopping the
// worker never waits for a check in progress: the thread is detached and finishes (or is ended by
// the exit) on its own. A user's last accepted password is remembered as a keyed SHA-256 digest, so
// a scraper sending the same credentials every few seconds is checked in microseconds; a wrong
// password costs a full bcrypt every time, and so does an unknown user (checked against a
// configured user's hash and then refused, so timing does not tell who exists).

#include <array>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

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

// One detached thread that runs blocking checks in order, behind a queue of at most
// `max_queued`, and hands each result back to the loop. submit() and stop() are called on the
// loop thread; the queue they share with the worker is thread-safe.
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
  // be destroyed on the loop thread: it is destroyed on the worker. `then` stays on the loop side.
  void submit(Work work, Then then);

  // Drops the queued checks and forgets every `then` (destroyed here, never called), and returns
  // at once: a check in progress runs to its end on the detached thread, which then posts
  // nothing and exits. Idempotent. After it, the loop may go away.
  void stop();

  struct Shared;  // the queue and the worker's link to the loop

 private:
  std::size_t max_queued_;
  std::shared_ptr<Shared> shared_;
  // Loop side: the `then` of every check submitted and not yet answered, by id.
  struct Waiting;
  std::shared_ptr<Waiting> waiting_;
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
