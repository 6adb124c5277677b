#include "collectors/memcached_client.hpp"

#include <sys/un.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "collectors/name_lookup.hpp"
#include "common/text.hpp"

namespace mcb {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

using Socket = asio::generic::stream_protocol::socket;
using GenericEndpoint = asio::generic::stream_protocol::endpoint;
using Endpoints = std::vector<GenericEndpoint>;
using ResolveHandler = std::function<void(std::string error, Endpoints endpoints)>;
using ConnectHandler = std::function<void(std::string error)>;

std::string millis(Duration d) { return std::to_string(d.count()) + "ms"; }

std::string millis_since(SteadyClock::time_point t) {
  return millis(std::chrono::duration_cast<Duration>(SteadyClock::now() - t));
}

// Turns a target address into socket addresses. IP literals and unix paths need no lookup; a host
// name is looked up on the lookup pool (collectors/name_lookup.hpp), held in `lookup` so that the
// caller can cancel it. `done` is always posted to the loop; its error is empty on success.
void resolve(asio::io_context& io, std::shared_ptr<NameLookup>& lookup, const Endpoint& e,
             ResolveHandler done) {
  if (e.is_unix()) {
    if (e.path.size() >= sizeof(sockaddr_un::sun_path)) {
      asio::post(io, [done = std::move(done), e] {
        done("unix socket path longer than " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                 " bytes: " + e.path,
             {});
      });
      return;
    }
    Endpoints eps{GenericEndpoint(asio::local::stream_protocol::endpoint(e.path))};
    asio::post(io, [done = std::move(done), eps = std::move(eps)] { done("", eps); });
    return;
  }
  error_code ec;
  const auto ip = asio::ip::make_address(e.host, ec);
  if (!ec) {
    Endpoints eps{GenericEndpoint(asio::ip::tcp::endpoint(ip, e.port))};
    asio::post(io, [done = std::move(done), eps = std::move(eps)] { done("", eps); });
    return;
  }
  lookup = NameLookup::start(
      io, e.host, e.port,
      [done = std::move(done)](std::string error, const NameLookup::Addresses& addresses) {
        Endpoints eps;
        for (const auto& a : addresses) eps.emplace_back(a);
        done(std::move(error), std::move(eps));
      });
}

// Connects `socket` to the first of `eps` (from `index` on) that accepts.
void connect_any(Socket& socket, const std::shared_ptr<const Endpoints>& eps, std::size_t index,
                 const std::string& address, ConnectHandler done) {
  error_code ignored;
  socket.close(ignored);
  const GenericEndpoint& ep = (*eps)[index];
  socket.async_connect(
      ep, [&socket, eps, index, address, done = std::move(done)](const error_code& ec) mutable {
        if (ec == asio::error::operation_aborted) {
          done("connect to " + address + ": cancelled");
        } else if (!ec) {
          done("");
        } else if (index + 1 < eps->size()) {
          connect_any(socket, eps, index + 1, address, std::move(done));
        } else {
          done("connect to " + address + ": " + ec.message());
        }
      });
}

// Names a command in messages.
const char* command_name(bool settings) { return settings ? "stats settings" : "stats"; }

}  // namespace

FailureKind classify_failure(std::string_view error) {
  if (error.empty()) return FailureKind::kNone;
  auto has = [error](std::string_view part) { return error.find(part) != std::string_view::npos; };
  if (has("Too many open connections")) return FailureKind::kAtLimit;
  if (has("by the deadline") || has("no reply") || has("still waiting"))
    return FailureKind::kNoReply;
  if (has("protocol error") || has("memcached replied") || has("unexpected")) {
    return FailureKind::kProtocol;
  }
  return FailureKind::kUnreachable;
}

Duration reconnect_delay(int failures, Duration base, Duration cap, double unit_random) {
  if (failures <= 0) return Duration{0};
  double ms = static_cast<double>(base.count());
  for (int i = 1; i < failures && ms < static_cast<double>(cap.count()); ++i) ms *= 2;
  ms = std::min(ms, static_cast<double>(cap.count()));
  const double jitter = 0.5 + 0.5 * std::clamp(unit_random, 0.0, 1.0);
  return Duration{static_cast<Duration::rep>(std::llround(ms * jitter))};
}

// ---- StatsConnection ----------------------------------------------------------------------

StatsConnection::StatsConnection(asio::io_context& io, Endpoint endpoint, Options options)
    : io_(io),
      endpoint_(std::move(endpoint)),
      options_(options),
      socket_(io),
      timer_(io),
      random_(std::random_device{}()) {}

void StatsConnection::query(SteadyClock::time_point deadline, Handler handler) {
  handler_ = std::move(handler);
  ++query_id_;
  deadline_ = deadline;
  query_started_ = SteadyClock::now();
  reply_ = StatsReply{};
  timer_.expires_at(deadline);
  timer_.async_wait([self = shared_from_this(), id = query_id_](const error_code& ec) {
    if (!ec && id == self->query_id_ && self->handler_) self->on_deadline();
  });
  asio::post(io_, [self = shared_from_this(), id = query_id_] {
    if (id == self->query_id_ && self->handler_) self->start();
  });
}

void StatsConnection::start() {
  retry_stale_ = false;
  switch (state_) {
    case State::kDisconnected:
      if (SteadyClock::now() < next_attempt_) {
        reply_.stats = fail(last_error_);  // unchanged, so the log line is rate-limited
        finish();
        return;
      }
      connect();
      return;
    case State::kIdle:
      retry_stale_ = true;
      send(Command::kStats);
      return;
    case State::kBusy:
      // A reply asked for by an earlier query is still due: wait for it (read_more runs), unless
      // it has been due for too long.
      if (SteadyClock::now() - outstanding_since_ >= options_.stall_limit) {
        drop(std::string("no reply to ") + command_name(outstanding_ == Command::kSettings) +
                 " for " + millis_since(outstanding_since_) + "; connection closed",
             false);
      }
      return;
    case State::kConnecting:
      return;  // cannot happen: a connect never outlives its query
  }
}

void StatsConnection::connect() {
  state_ = State::kConnecting;
  const std::uint64_t gen = ++generation_;
  resolve(io_, lookup_, endpoint_,
          [self = shared_from_this(), gen](const std::string& error, Endpoints eps) {
            if (gen != self->generation_) return;
            if (!error.empty()) {
              self->drop(error, false);
              return;
            }
            connect_any(self->socket_, std::make_shared<const Endpoints>(std::move(eps)), 0,
                        self->endpoint_.to_string(), [self, gen](const std::string& cerror) {
                          if (gen != self->generation_) return;
                          if (!cerror.empty()) {
                            self->drop(cerror, false);
                            return;
                          }
                          ++self->connects_;
                          self->state_ = State::kIdle;
                          self->in_.clear();
                          if (self->handler_) self->send(Command::kStats);
                        });
          });
}

void StatsConnection::send(Command command) {
  state_ = State::kBusy;
  outstanding_ = command;
  outstanding_query_ = query_id_;
  outstanding_since_ = SteadyClock::now();
  static constexpr std::string_view kStats = "stats\r\n";
  static constexpr std::string_view kSettings = "stats settings\r\n";
  const std::string_view text = command == Command::kStats ? kStats : kSettings;
  asio::async_write(
      socket_, asio::buffer(text.data(), text.size()),
      [self = shared_from_this(), gen = generation_](const error_code& ec, std::size_t /*n*/) {
        if (gen != self->generation_) return;
        if (ec) {
          self->drop("write: " + ec.message(), true);
          return;
        }
        self->read_more();
      });
}

void StatsConnection::read_more() {
  socket_.async_read_some(asio::buffer(chunk_), [self = shared_from_this(), gen = generation_](
                                                    const error_code& ec, std::size_t n) {
    if (gen != self->generation_) return;
    if (ec) {
      self->drop(ec == asio::error::eof ? std::string("memcached closed the connection")
                                        : "read: " + ec.message(),
                 true);
      return;
    }
    self->retry_stale_ = false;
    self->in_.append(self->chunk_.data(), n);
    const ClientLimits& limits = self->options_.limits;
    if (self->in_.size() > limits.max_reply) {
      self->drop(
          "protocol error: a reply longer than " + std::to_string(limits.max_reply) + " bytes",
          false);
      return;
    }
    const ReplyEnd end = find_reply_end(self->in_, limits.max_line);
    switch (end.kind) {
      case ReplyEnd::Kind::kIncomplete:
        self->read_more();
        return;
      case ReplyEnd::Kind::kMalformed:
        self->drop("protocol error: " + end.error, false);
        return;
      case ReplyEnd::Kind::kComplete:
        if (end.length != self->in_.size()) {
          // memcached sends nothing it was not asked for: the stream cannot be trusted.
          self->drop("protocol error: bytes after the end of a reply", false);
          return;
        }
        const std::string reply = std::move(self->in_);
        self->in_.clear();
        self->on_reply(reply);
        return;
    }
  });
}

void StatsConnection::on_reply(std::string_view reply) {
  const Command command = outstanding_;
  const bool ours = handler_ && outstanding_query_ == query_id_;
  outstanding_ = Command::kNone;
  state_ = State::kIdle;
  if (!handler_) return;
  if (!ours) {
    send(Command::kStats);  // the late reply of an earlier query is in: now ask for ours
    return;
  }
  if (command == Command::kStats) {
    reply_.received = SteadyClock::now();
    reply_.stats = parse_stats(reply);
    if (!reply_.stats) {
      finish();
      return;
    }
    failures_ = 0;
    send(Command::kSettings);
    return;
  }
  reply_.settings = parse_stats(reply);
  finish();
}

void StatsConnection::on_deadline() {
  if (state_ == State::kConnecting) {
    drop("connect to " + endpoint_.to_string() + ": no connection by the deadline", false);
    return;
  }
  const std::string within =
      " within " + millis(std::chrono::round<Duration>(deadline_ - query_started_));
  if (state_ != State::kBusy) {
    reply_.stats =
        fail(state_ == State::kDisconnected && !last_error_.empty() ? last_error_
                                                                    : "no reply to stats" + within);
  } else if (outstanding_query_ != query_id_) {
    reply_.stats = fail("still waiting for the reply to an earlier stats");
  } else if (outstanding_ == Command::kSettings) {
    reply_.settings = fail("no reply to stats settings" + within);
  } else {
    reply_.stats = fail("no reply to stats" + within);
  }
  finish();
}

void StatsConnection::drop(const std::string& reason, bool peer_closed) {
  ++generation_;
  error_code ignored;
  socket_.close(ignored);
  if (lookup_) lookup_->cancel();
  lookup_.reset();
  state_ = State::kDisconnected;
  outstanding_ = Command::kNone;
  in_.clear();
  if (closed_) return;
  if (handler_ && peer_closed && retry_stale_) {
    // The connection sat idle since the last query and the peer closed it meanwhile (memcached
    // restarted, or closed idle connections): reconnect now rather than report a failure.
    retry_stale_ = false;
    connect();
    return;
  }
  ++failures_;
  next_attempt_ =
      SteadyClock::now() + reconnect_delay(failures_, options_.backoff_base, options_.backoff_cap,
                                           std::uniform_real_distribution<double>(0, 1)(random_));
  last_error_ = reason;
  if (!handler_) return;
  if (reply_.stats) {
    reply_.settings = fail(reason);
  } else {
    reply_.stats = fail(reason);
  }
  finish();
}

void StatsConnection::finish() {
  if (!handler_) return;
  timer_.cancel();
  Handler handler = std::move(handler_);
  handler_ = nullptr;
  handler(std::move(reply_));
}

void StatsConnection::close() {
  closed_ = true;
  handler_ = nullptr;
  timer_.cancel();
  drop("closed", false);
}

// ---- Probe --------------------------------------------------------------------------------

Probe::Probe(asio::io_context& io, Endpoint endpoint, Handler handler, std::size_t max_line)
    : io_(io),
      endpoint_(std::move(endpoint)),
      handler_(std::move(handler)),
      max_line_(max_line),
      socket_(io),
      timer_(io) {}

std::shared_ptr<Probe> Probe::start(asio::io_context& io, const Endpoint& endpoint,
                                    SteadyClock::time_point deadline, Handler handler,
                                    std::size_t max_line) {
  auto probe = std::make_shared<Probe>(io, endpoint, std::move(handler), max_line);
  probe->run(deadline);
  return probe;
}

void Probe::run(SteadyClock::time_point deadline) {
  connect_started_ = SteadyClock::now();
  timer_.expires_at(deadline);
  timer_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec) return;
    self->end(false, self->connected_ ? "no reply to version by the deadline"
                                      : "connect to " + self->endpoint_.to_string() +
                                            ": no connection by the deadline");
  });
  resolve(io_, lookup_, endpoint_,
          [self = shared_from_this()](const std::string& error, Endpoints eps) {
            if (!self->handler_) return;
            if (!error.empty()) {
              self->end(false, error);
              return;
            }
            self->connect_started_ = SteadyClock::now();
            connect_any(self->socket_, std::make_shared<const Endpoints>(std::move(eps)), 0,
                        self->endpoint_.to_string(), [self](const std::string& cerror) {
                          if (!self->handler_) return;
                          if (!cerror.empty()) {
                            self->end(false, cerror);
                            return;
                          }
                          self->connected_ = true;
                          self->connected_at_ = SteadyClock::now();
                          static constexpr std::string_view kVersion = "version\r\n";
                          asio::async_write(self->socket_,
                                            asio::buffer(kVersion.data(), kVersion.size()),
                                            [self](const error_code& ec, std::size_t /*n*/) {
                                              if (!self->handler_) return;
                                              if (ec) {
                                                self->end(false, "write: " + ec.message());
                                                return;
                                              }
                                              self->read_more();
                                            });
                        });
          });
}

void Probe::read_more() {
  socket_.async_read_some(
      asio::buffer(chunk_), [self = shared_from_this()](const error_code& ec, std::size_t n) {
        if (!self->handler_) return;
        if (ec) {
          self->end(false, ec == asio::error::eof
                               ? "memcached closed the connection" +
                                     (self->in_.empty() ? std::string()
                                                        : " after " + quote_untrusted(self->in_))
                               : "read: " + ec.message());
          return;
        }
        self->in_.append(self->chunk_.data(), n);
        const auto nl = self->in_.find('\n');
        if (nl == std::string::npos) {
          if (self->in_.size() > self->max_line_) {
            self->end(false, "protocol error: a line longer than " +
                                 std::to_string(self->max_line_) + " bytes");
          } else {
            self->read_more();
          }
          return;
        }
        auto version = parse_version_reply(std::string_view(self->in_).substr(0, nl + 1));
        if (version) {
          self->end(true, *version);
        } else {
          self->end(false, version.error().message);
        }
      });
}

void Probe::end(bool success, std::string text) {
  if (!handler_) return;
  ProbeResult r;
  r.at = SteadyClock::now();
  r.success = success;
  r.duration_seconds = std::chrono::duration<double>(r.at - connect_started_).count();
  if (connected_ && !endpoint_.is_unix()) {
    r.connect_seconds = std::chrono::duration<double>(connected_at_ - connect_started_).count();
  }
  (success ? r.version : r.error) = std::move(text);
  Handler handler = std::move(handler_);
  handler_ = nullptr;
  cancel();
  handler(std::move(r));
}

void Probe::cancel() {
  handler_ = nullptr;
  timer_.cancel();
  if (lookup_) lookup_->cancel();
  lookup_.reset();
  error_code ignored;
  socket_.close(ignored);
}

}  // namespace mcb
