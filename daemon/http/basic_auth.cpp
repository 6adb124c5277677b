#include "daemon/http/basic_auth.hpp"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <pthread.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <boost/asio/post.hpp>

namespace mcb {

namespace {

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64 with padding, as RFC 7617 asks; anything else is refused.
std::optional<std::string> decode_base64(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    std::uint32_t bits = 0;
    int padding = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = in[i + j];
      int v = 0;
      if (c == '=') {
        // Padding only in the last two places of the last group.
        if (i + 4 != in.size() || j < 2) return std::nullopt;
        ++padding;
      } else if (padding > 0 || (v = base64_value(c)) < 0) {
        return std::nullopt;
      }
      bits = (bits << 6) | static_cast<std::uint32_t>(v);
    }
    out += static_cast<char>((bits >> 16) & 0xff);
    if (padding < 2) out += static_cast<char>((bits >> 8) & 0xff);
    if (padding < 1) out += static_cast<char>(bits & 0xff);
  }
  return out;
}

}  // namespace

std::optional<BasicCredentials> parse_basic_authorization(std::string_view value) {
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  while (!value.empty() && is_space(value.front())) value.remove_prefix(1);
  while (!value.empty() && is_space(value.back())) value.remove_suffix(1);
  constexpr std::string_view kScheme = "basic";
  if (value.size() <= kScheme.size() || !is_space(value[kScheme.size()])) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != kScheme[i]) return std::nullopt;
  }
  value.remove_prefix(kScheme.size());
  while (!value.empty() && is_space(value.front())) value.remove_prefix(1);
  auto decoded = decode_base64(value);
  if (!decoded) return std::nullopt;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return BasicCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

bool bcrypt_matches(const std::string& password, const std::string& hash) {
  if (password.find('\0') != std::string::npos) return false;
  // About 32 KiB of state: on the heap, zeroed as crypt_r asks before first use.
  auto data = std::make_unique<crypt_data>();
  const char* out = crypt_r(password.c_str(), hash.c_str(), data.get());
  // On failure crypt_r returns NULL or a string starting with '*', which no hash equals.
  if (out == nullptr) return false;
  const std::string_view result(out);
  return result.size() == hash.size() &&
         CRYPTO_memcmp(result.data(), hash.data(), hash.size()) == 0;
}

// Shared by the loop and the detached worker thread; `mutex` guards everything in it.
struct VerifyWorker::Shared {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::pair<std::uint64_t, Work>> queue;
  std::optional<boost::asio::any_io_executor> loop;  // reset by stop(): nothing is posted after
  std::shared_ptr<Waiting> waiting;                  // reset by stop()
};

struct VerifyWorker::Waiting {
  std::uint64_t next_id = 0;
  std::map<std::uint64_t, Then> then;
};

namespace {

// The worker thread's loop. It holds the shared state alone, so stop() need not wait for it.
void run_worker(const std::shared_ptr<VerifyWorker::Shared>& shared) {
  pthread_setname_np(pthread_self(), "mcb-bcrypt");
  for (;;) {
    std::pair<std::uint64_t, VerifyWorker::Work> job;
    {
      std::unique_lock lock(shared->mutex);
      shared->wake.wait(lock, [&] { return !shared->loop || !shared->queue.empty(); });
      if (!shared->loop) return;
      job = std::move(shared->queue.front());
      shared->queue.pop_front();
    }
    const bool result = job.second();
    job.second = nullptr;
    std::lock_guard lock(shared->mutex);
    if (!shared->loop) return;
    // The loop finds the check's `then` and runs it there: whatever it owns stays on the loop.
    boost::asio::post(*shared->loop, [waiting = shared->waiting, id = job.first, result] {
      auto it = waiting->then.find(id);
      if (it == waiting->then.end()) return;  // stopped meanwhile
      auto then = std::move(it->second);
      waiting->then.erase(it);
      then(result);
    });
  }
}

}  // namespace

VerifyWorker::VerifyWorker(boost::asio::any_io_executor loop, std::size_t max_queued)
    : max_queued_(max_queued),
      shared_(std::make_shared<Shared>()),
      waiting_(std::make_shared<Waiting>()) {
  shared_->loop = std::move(loop);
  shared_->waiting = waiting_;
  std::thread([shared = shared_] { run_worker(shared); }).detach();
}

VerifyWorker::~VerifyWorker() { stop(); }

void VerifyWorker::submit(Work work, Then then) {
  {
    std::lock_guard lock(shared_->mutex);
    if (shared_->loop && shared_->queue.size() < max_queued_) {
      const std::uint64_t id = waiting_->next_id++;
      waiting_->then.emplace(id, std::move(then));
      shared_->queue.emplace_back(id, std::move(work));
      shared_->wake.notify_one();
      return;
    }
  }
  then(std::nullopt);
}

void VerifyWorker::stop() {
  std::deque<std::pair<std::uint64_t, Work>> dropped;
  {
    std::lock_guard lock(shared_->mutex);
    if (!shared_->loop) return;
    shared_->loop.reset();
    shared_->waiting.reset();
    dropped.swap(shared_->queue);
    shared_->wake.notify_one();
  }
  waiting_->then.clear();
}

BasicAuth::BasicAuth(std::map<std::string, std::string, std::less<>> users)
    : users_(std::move(users)) {
  if (users_.empty()) throw std::invalid_argument("BasicAuth needs at least one user");
  if (RAND_bytes(key_.data(), static_cast<int>(key_.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
}

BasicAuth::Digest BasicAuth::digest(const BasicCredentials& c) const {
  std::string message = c.user;
  message += '\0';
  message += c.password;
  Digest d{};
  unsigned int size = 0;
  // Only a broken OpenSSL fails here; going on with a zero digest would accept any password.
  if (HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), d.data(),
           &size) == nullptr ||
      size != d.size()) {
    throw std::runtime_error("HMAC-SHA-256 failed");
  }
  return d;
}

void BasicAuth::check(std::string_view authorization, VerifyWorker& worker, Done done) {
  auto credentials = parse_basic_authorization(authorization);
  if (!credentials) {
    done(Verdict::kDenied);
    return;
  }
  const auto user = users_.find(credentials->user);
  const bool known = user != users_.end();
  const Digest digest_now = digest(*credentials);
  if (known) {
    const auto last = accepted_.find(credentials->user);
    if (last != accepted_.end() &&
        CRYPTO_memcmp(last->second.data(), digest_now.data(), digest_now.size()) == 0) {
      done(Verdict::kAllowed);
      return;
    }
  }
  // An unknown user costs a bcrypt too (against some user's hash), and is refused whatever it
  // says, so that response times do not tell which users exist.
  const std::string& hash = known ? user->second : users_.begin()->second;
  worker.submit(
      [password = std::move(credentials->password), hash, known] {
        const bool match = bcrypt_matches(password, hash);
        return known && match;
      },
      [self = shared_from_this(), name = std::move(credentials->user), digest_now,
       done = std::move(done)](std::optional<bool> match) {
        if (!match) {
          done(Verdict::kBusy);
          return;
        }
        if (*match) self->accepted_[name] = digest_now;
        done(*match ? Verdict::kAllowed : Verdict::kDenied);
      });
}

}  // namespace mcb
