#include "collectors/name_lookup.hpp"

#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>

#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

namespace mcb {

namespace asio = boost::asio;

// One lookup. The pool thread and the loop share it; `mutex` guards the fields below it.
struct NameLookup::Request {
  std::string host;
  std::uint16_t port = 0;

  std::mutex mutex;
  bool active = true;  // false once answered, cancelled or its io_context shut down
  std::optional<asio::io_context::executor_type> loop;
  Handler handler;

  // Ends the request without running the handler. Returns the handler so that the caller
  // destroys it outside the lock.
  Handler deactivate() {
    std::lock_guard lock(mutex);
    active = false;
    loop.reset();
    return std::move(handler);
  }
};

namespace {

using Request = NameLookup::Request;

// The lookups of one io_context not yet answered: when the io_context is destroyed, its
// shutdown() ends them before any handler queue is torn down, so a pool thread never posts to a
// loop that is going away. Loop thread and shutdown only.
class LookupRegistry final : public asio::execution_context::service {
 public:
  using key_type = LookupRegistry;
  // Asio's name for it; its constructor does nothing that can throw.
  static inline asio::execution_context::id
      id;  // NOLINT(readability-identifier-naming,cert-err58-cpp)

  explicit LookupRegistry(asio::execution_context& context)
      : asio::execution_context::service(context) {}

  void add(const std::shared_ptr<Request>& r) {
    std::lock_guard lock(mutex_);
    if (stopped_) {
      (void)r->deactivate();
      return;
    }
    // Answered and cancelled lookups leave expired entries: prune them now and then.
    if (++adds_ % 64 == 0) requests_.remove_if([](const auto& w) { return w.expired(); });
    requests_.push_back(r);
  }

 private:
  void shutdown() override {
    std::list<std::weak_ptr<Request>> all;
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
      all.swap(requests_);
    }
    for (const auto& w : all) {
      if (auto r = w.lock()) (void)r->deactivate();
    }
  }

  std::mutex mutex_;
  bool stopped_ = false;
  std::uint64_t adds_ = 0;
  std::list<std::weak_ptr<Request>> requests_;
};

// The lookup threads: detached, shared by the process, and never destroyed (the pool is
// allocated once and left for the exit to end, so no destructor ever waits for a thread stuck
// in getaddrinfo).
class Pool {
 public:
  static Pool& get() {
    static Pool* const kPool = new Pool();  // NOLINT(cppcoreguidelines-owning-memory)
    return *kPool;
  }

  // False when kMaxWaitingLookups already wait.
  bool submit(std::shared_ptr<Request> r) {
    std::lock_guard lock(mutex_);
    if (waiting_.size() >= kMaxWaitingLookups) {
      std::erase_if(waiting_, [](const std::shared_ptr<Request>& w) {
        std::lock_guard l(w->mutex);
        return !w->active;
      });
      if (waiting_.size() >= kMaxWaitingLookups) return false;
    }
    waiting_.push_back(std::move(r));
    if (idle_ == 0 && threads_ < kLookupThreads) {
      ++threads_;
      std::thread([this] { run(); }).detach();
    } else {
      wake_.notify_one();
    }
    return true;
  }

 private:
  void run() {
    pthread_setname_np(pthread_self(), "mcb-lookup");
    for (;;) {
      std::shared_ptr<Request> r;
      {
        std::unique_lock lock(mutex_);
        ++idle_;
        wake_.wait(lock, [this] { return !waiting_.empty(); });
        --idle_;
        r = std::move(waiting_.front());
        waiting_.pop_front();
      }
      {
        std::lock_guard lock(r->mutex);
        if (!r->active) continue;  // cancelled while it waited
      }
      std::string error;
      NameLookup::Addresses addresses;
      lookup(*r, error, addresses);
      std::lock_guard lock(r->mutex);
      if (!r->active) continue;
      r->active = false;
      // The handler stays in the request until the answer runs on the loop, so a cancel() that
      // comes between this post and that run still takes it, and it never runs after cancel().
      asio::post(*r->loop,
                 [r, error = std::move(error), addresses = std::move(addresses)]() mutable {
                   NameLookup::Handler handler;
                   {
                     std::lock_guard lock(r->mutex);
                     handler = std::move(r->handler);
                   }
                   if (handler) handler(std::move(error), std::move(addresses));
                 });
      r->loop.reset();
    }
  }

  static void lookup(const Request& r, std::string& error, NameLookup::Addresses& out) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* list = nullptr;
    const std::string port = std::to_string(r.port);
    const int rc = ::getaddrinfo(r.host.c_str(), port.c_str(), &hints, &list);
    if (rc != 0) {
      error = "resolve " + r.host + ": " + ::gai_strerror(rc);
      return;
    }
    for (const addrinfo* a = list; a != nullptr; a = a->ai_next) {
      asio::ip::tcp::endpoint e;
      if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) && a->ai_addrlen <= e.capacity()) {
        std::memcpy(e.data(), a->ai_addr, a->ai_addrlen);
        e.resize(a->ai_addrlen);
        out.push_back(e);
      }
    }
    ::freeaddrinfo(list);
    if (out.empty()) error = "resolve " + r.host + ": no addresses";
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Request>> waiting_;  // guarded by mutex_
  std::size_t threads_ = 0;                       // guarded by mutex_
  std::size_t idle_ = 0;                          // guarded by mutex_
};

}  // namespace

std::shared_ptr<NameLookup> NameLookup::start(asio::io_context& io, std::string host,
                                              std::uint16_t port, Handler handler) {
  auto r = std::make_shared<Request>();
  r->host = std::move(host);
  r->port = port;
  r->loop = io.get_executor();
  r->handler = std::move(handler);
  asio::use_service<LookupRegistry>(io).add(r);
  if (!Pool::get().submit(r)) {
    std::string error = "resolve " + r->host + ": " + std::to_string(kMaxWaitingLookups) +
                        " name lookups are already waiting (is the resolver answering?)";
    Handler h = r->deactivate();
    if (h) {
      asio::post(
          io, [h = std::move(h), error = std::move(error)]() mutable { h(std::move(error), {}); });
    }
  }
  return std::make_shared<NameLookup>(std::move(r));
}

void NameLookup::cancel() {
  if (request_) (void)request_->deactivate();
}

}  // namespace mcb
