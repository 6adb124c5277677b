#include "collectors/memcached_client.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <utility>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include "collectors/name_lookup.hpp"
#include "collectors/netns.hpp"
#include "common/files.hpp"
#include "common/openssl_on_demand.hpp"
#include "common/text.hpp"
#include "config/limits.hpp"

namespace mcb {
namespace asio = boost::asio;
using boost::system::error_code;

using Socket = asio::generic::stream_protocol::socket;

class TlsClient {
 public:
  explicit TlsClient(const TlsClientConfig& config) : context(asio::ssl::context::tls_client) {
    server_name = config.server_name;
    verify = !config.insecure_skip_verify;
  }
  asio::ssl::context context;
  std::string server_name;  // empty: the address's host
  bool verify = true;
};

class TlsSession {
 public:
  TlsSession(Socket& socket, TlsClient& client) : stream(socket, client.context) {}
  asio::ssl::stream<Socket&> stream;
};

Transport Transport::of(const TargetConfig& target) {
  Transport t(target.address, target.netns);
  if (!target.tls) return t;
  const TlsClientConfig& c = *target.tls;
  if (std::string why = load_openssl(); !why.empty()) {
    t.tls_error = why;
    t.tls_errors.push_back(std::move(why));
    return t;
  }
  auto client = std::make_shared<TlsClient>(c);
  asio::ssl::context& context = client->context;
  error_code ec;
  context.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3);
  // An encrypted key would make OpenSSL ask for a passphrase on the terminal: refuse it instead.
  context.set_password_callback(
      [](std::size_t, asio::ssl::context::password_purpose) { return std::string(); });
  // Each file is read here, opened without blocking and refused unless it is a regular file (a
  // FIFO would hold the loop for ever), and OpenSSL loads it from memory; `use` returns why it
  // could not, or nothing.
  // Each file is tried, so that --check-config names every one that does not load.
  const auto failed = [&](std::string error) {
    if (t.tls_error.empty()) t.tls_error = error;
    t.tls_errors.push_back(std::move(error));
  };
  const auto load = [&](const std::string& file, const std::string& origin, std::string_view key,
                        const auto& use) {
    if (file.empty()) return;
    const std::string where = (origin.empty() ? "tls." + std::string(key) : origin) + ": " +
                              escape_untrusted(file, kMaxPathBytes) + ": ";
    auto text = read_regular_file(file, kMaxTlsFileBytes, "a TLS file");
    if (!text) {
      failed(where + text.error().message);
    } else if (const std::string why = use(asio::buffer(*text)); !why.empty()) {
      failed(where + why);
    }
  };
  const auto reason = [&](std::string_view what) {
    return ec ? std::string(what) + ": " + ec.message() : std::string();
  };
  if (client->verify) {
    context.set_verify_mode(asio::ssl::verify_peer, ec);
    if (c.ca_file.empty()) {
      context.set_default_verify_paths(ec);
      if (ec) failed("TLS: the system's CA certificates: " + ec.message());
    }
    load(c.ca_file, c.ca_file_origin, "ca_file", [&](const asio::const_buffer& b) {
      context.add_certificate_authority(b, ec);
      // Asio takes a file without a certificate, and then nothing would verify.
      X509_STORE* store = SSL_CTX_get_cert_store(context.native_handle());
      if (!ec && sk_X509_OBJECT_num(X509_STORE_get0_objects(store)) == 0) {
        return std::string("cannot load the CA certificates: the file holds none");
      }
      return reason("cannot load the CA certificates");
    });
  } else {
    context.set_verify_mode(asio::ssl::verify_none, ec);
  }
  load(c.cert_file, c.cert_file_origin, "cert_file", [&](const asio::const_buffer& b) {
    context.use_certificate_chain(b, ec);
    return reason("cannot load the certificate chain");
  });
  load(c.key_file, c.key_file_origin, "key_file", [&](const asio::const_buffer& b) {
    context.use_private_key(b, asio::ssl::context::pem, ec);
    return reason("cannot load the private key");
  });
  if (ec && t.tls_error.empty()) failed("TLS: " + ec.message());
  t.tls = std::move(client);
  return t;
}

namespace {
using GenericEndpoint = asio::generic::stream_protocol::endpoint;
using Endpoints = std::vector<GenericEndpoint>;
using ResolveHandler = std::function<void(std::string error, Endpoints endpoints)>;
// `kind` says why the connect failed (kUnreachable, or kPermissionDenied); kNone on success.
using ConnectHandler = std::function<void(std::string error, FailureKind kind)>;

// Why a TLS handshake failed, in words a person can act on: the certificate check's own reason
// with what usually causes it, or a server that does not speak TLS.
std::string tls_failure(const error_code& ec, TlsSession& session, const TlsClient& client,
                        const std::string& address) {
  const std::string base = "TLS handshake with " + address + " failed: ";
  const long result = ::SSL_get_verify_result(session.stream.native_handle());
  if (client.verify && result != X509_V_OK) {
    std::string hint;
    switch (result) {
      case X509_V_ERR_CERT_HAS_EXPIRED:
        hint = "memcached's certificate has expired: renew it";
        break;
      case X509_V_ERR_CERT_NOT_YET_VALID:
        hint = "memcached's certificate is not valid yet: check its dates and this host's clock";
        break;
      case X509_V_ERR_HOSTNAME_MISMATCH:
      case X509_V_ERR_IP_ADDRESS_MISMATCH:
        hint = "the certificate does not name the server: set tls.server_name to a name it has";
        break;
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        hint = "memcached's certificate is not signed by a CA of tls.ca_file";
        break;
      default:
        hint = "check memcached's certificate against tls.ca_file";
        break;
    }
    return base + "certificate verify failed: " + ::X509_verify_cert_error_string(result) + " (" +
           hint + ")";
  }
  const std::string text = ec.message();
  const bool not_tls = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated ||
                       text.find("wrong version number") != std::string::npos ||
                       text.find("packet length too long") != std::string::npos ||
                       text.find("record layer failure") != std::string::npos ||
                       text.find("unexpected eof") != std::string::npos;
  if (not_tls) {
    return base + text +
           " (the server does not speak TLS there: is memcached started with -Z, and is the "
           "address not one of its notls: listeners?)";
  }
  return base + text;
}

// Whether a failed handshake met memcached's refusal at its connection limit: past it (its
// default maxconns_fast) memcached answers a new connection with "ERROR Too many open
// connections" in plain text before any TLS, and closes. OpenSSL fails on the first five bytes
// ("ERROR" is no TLS record header); the rest of the line is still unread in the session's input.
bool refused_at_limit(TlsSession& session) {
  BIO* in = ::SSL_get_rbio(session.stream.native_handle());
  std::array<char, 64> rest{};
  const int n = in == nullptr ? 0 : ::BIO_read(in, rest.data(), static_cast<int>(rest.size()));
  return n > 0 && std::string_view(rest.data(), static_cast<std::size_t>(n))
                          .find("Too many open connections") != std::string_view::npos;
}

// Starts TLS on a connected `socket` as `client` says: SNI and the name checked are
// tls.server_name, else the address's host. Calls `done` with an empty error once the handshake
// completed, else with the reason and kTls (kUnreachable when cancelled).
std::shared_ptr<TlsSession> start_tls(Socket& socket, TlsClient& client, const Endpoint& endpoint,
                                      ConnectHandler done) {
  auto session = std::make_shared<TlsSession>(socket, client);
  SSL* ssl = session->stream.native_handle();
  const std::string name = !client.server_name.empty() ? client.server_name : endpoint.host;
  error_code ec;
  const auto ip = asio::ip::make_address(name, ec);
  if (ec && !name.empty()) ::SSL_set_tlsext_host_name(ssl, name.c_str());
  if (client.verify && !name.empty()) {
    X509_VERIFY_PARAM* param = ::SSL_get0_param(ssl);
    if (!ec) {
      ::X509_VERIFY_PARAM_set1_ip_asc(param, ip.to_string().c_str());
    } else {
      ::SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      ::SSL_set1_host(ssl, name.c_str());
    }
  }
  session->stream.async_handshake(
      asio::ssl::stream_base::client, [session, &client, address = endpoint.to_string(),
                                       done = std::move(done)](const error_code& hec) {
        if (hec == asio::error::operation_aborted) {
          done("TLS handshake with " + address + ": cancelled", FailureKind::kUnreachable);
        } else if (hec && refused_at_limit(*session)) {
          done("TLS handshake with " + address +
                   ": memcached answered in plain text, \"ERROR Too many open connections\": it "
                   "is at its connection limit and turns new connections away",
               FailureKind::kAtLimit);
        } else if (hec) {
          done(tls_failure(hec, *session, client, address), FailureKind::kTls);
        } else {
          done("", FailureKind::kNone);
        }
      });
  return session;
}

// Reads or writes through TLS when the connection has it.
template <class Handler>
void read_some(Socket& socket, TlsSession* tls, asio::mutable_buffer buffer, Handler&& handler) {
  if (tls != nullptr) {
    tls->stream.async_read_some(buffer, std::forward<Handler>(handler));
  } else {
    socket.async_read_some(buffer, std::forward<Handler>(handler));
  }
}

template <class Handler>
void write_all(Socket& socket, TlsSession* tls, asio::const_buffer buffer, Handler&& handler) {
  if (tls != nullptr) {
    asio::async_write(tls->stream, buffer, std::forward<Handler>(handler));
  } else {
    asio::async_write(socket, buffer, std::forward<Handler>(handler));
  }
}

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

// Why a connection was not made by the deadline: a name lookup still unanswered (a resolver that
// does not answer) is told apart from a connect that is (a peer or a network that drops SYNs).
std::pair<std::string, FailureKind> connect_unanswered(const Endpoint& e, bool resolving) {
  if (resolving) {
    return {
        "name lookup of " + e.host + ": no answer by the deadline (is the DNS server answering?)",
        FailureKind::kUnreachable};
  }
  return {"connect to " + e.to_string() + ": no connection by the deadline", FailureKind::kNoReply};
}

// Where sockets are created: the daemon's namespace, or another one.
struct Origin {
  std::optional<NetnsConfig> netns;
  std::string procfs;
};

// Opens `socket` for `ep` inside `netns`; nothing to do in the daemon's own namespace (Asio's
// connect opens it). Errors name the missing privilege (collectors/netns.hpp).
std::string open_in(Socket& socket, const GenericEndpoint& ep, const Origin& origin) {
  if (!origin.netns) return {};
  auto fd = netns_socket(*origin.netns, origin.procfs, ep.protocol().family(),
                         SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, ep.protocol().protocol());
  if (!fd) return fd.error().message;
  error_code ec;
  socket.assign(ep.protocol(), *fd, ec);
  if (ec) {
    ::close(*fd);
    return "socket: " + ec.message();
  }
  return {};
}

// Why a connect to a unix socket path was refused when the path is there but no socket (the kernel
// says ECONNREFUSED for both): "; the path is a regular file, not a socket ...". Empty for a TCP
// endpoint, a socket, and a path that is not there.
std::string unix_path_not_socket(const GenericEndpoint& ep) {
  if (ep.protocol().family() != AF_UNIX) return {};
  const auto* un = reinterpret_cast<const sockaddr_un*>(ep.data());
  const std::size_t max = ep.size() - offsetof(sockaddr_un, sun_path);
  const std::string path(un->sun_path, ::strnlen(un->sun_path, max));
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0 || S_ISSOCK(st.st_mode)) return {};
  return "; the path is " + std::string(file_kind(st.st_mode)) +
         ", not a socket: is it the path memcached was started with (-s)?";
}

// Connects `socket` to the first of `eps` (from `index` on) that accepts.
void connect_any(Socket& socket, const std::shared_ptr<const Endpoints>& eps, std::size_t index,
                 const std::string& address, const Origin& origin, ConnectHandler done) {
  error_code ignored;
  socket.close(ignored);
  const GenericEndpoint& ep = (*eps)[index];
  if (std::string error = open_in(socket, ep, origin); !error.empty()) {
    asio::post(socket.get_executor(),
               [done = std::move(done), error = "connect to " + address + ": " + error] {
                 done(error, FailureKind::kNamespace);
               });
    return;
  }
  socket.async_connect(ep, [&socket, eps, index, address, origin,
                            done = std::move(done)](const error_code& ec) mutable {
    if (ec == asio::error::operation_aborted) {
      done("connect to " + address + ": cancelled", FailureKind::kUnreachable);
    } else if (!ec) {
      done("", FailureKind::kNone);
    } else if (index + 1 < eps->size()) {
      connect_any(socket, eps, index + 1, address, origin, std::move(done));
    } else {
      // EACCES or EPERM: a unix socket whose mode keeps this user out, or a firewall rule
      // that rejects with a prohibition.
      const bool denied = ec == asio::error::access_denied || ec == asio::error::no_permission;
      std::string error = "connect to " + address + ": " + ec.message();
      if (ec == asio::error::connection_refused) error += unix_path_not_socket((*eps)[index]);
      done(error, denied ? FailureKind::kPermissionDenied : FailureKind::kUnreachable);
    }
  });
}

bool printable_start(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= 0x20 && u <= 0x7e) || u == '\r' || u == '\n';
}

// What a peer that closed or reset a connection before its first byte did, for messages.
std::string closed_without_reply(const error_code& ec) {
  return ec == asio::error::eof
             ? "connection accepted, then closed without a text reply"
             : "connection accepted, then reset without a text reply (" + ec.message() + ")";
}

// A TLS handshake that had no answer by the deadline, for messages.
std::string handshake_unanswered(const Endpoint& endpoint) {
  return "TLS handshake with " + endpoint.to_string() +
         ": no answer by the deadline (a server that does not speak TLS there waits for more: is "
         "memcached started with -Z?)";
}

bool closed_or_reset(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

}  // namespace

std::string_view failure_kind_name(FailureKind kind) {
  switch (kind) {
    case FailureKind::kNone:
      return "none";
    case FailureKind::kAtLimit:
      return "at_limit";
    case FailureKind::kNoReply:
      return "no_reply";
    case FailureKind::kUnreachable:
      return "unreachable";
    case FailureKind::kPermissionDenied:
      return "permission_denied";
    case FailureKind::kNotTextProtocol:
      return "not_text_protocol";
    case FailureKind::kProtocol:
      return "protocol";
    case FailureKind::kNamespace:
      return "namespace";
    case FailureKind::kTls:
      return "tls";
  }
  return "unknown";
}

std::string_view failure_kind_causes(FailureKind kind) {
  switch (kind) {
    case FailureKind::kNone:
      return "";
    case FailureKind::kAtLimit:
      return "memcached is at its connection limit (-c) and turns new connections away: find "
             "who holds the connections (a client without pooling, a leak) before raising -c.";
    case FailureKind::kNoReply:
      return "memcached accepted no connection or answered nothing in time: it is stopped, hung "
             "or saturated, or its accept queue is full or its listener disabled; see its CPU, "
             "its accept queue and its log.";
    case FailureKind::kUnreachable:
      return "nothing accepts connections at this address: memcached is not running, listens "
             "elsewhere (-l, -p, -s) or a firewall refuses; read its log for why it stopped.";
    case FailureKind::kPermissionDenied:
      return "the connect was refused for want of permission: a unix socket whose mode "
             "(memcached's -a, default 0700) does not let the daemon's user in, or a firewall "
             "rule that rejects with a prohibition.";
    case FailureKind::kNotTextProtocol:
      return "something accepts connections here but does not speak memcached's text protocol "
             "on them: memcached started with -B binary, or with -S (SASL, which allows only "
             "authenticated binary clients): start it with -B auto (the default), or without "
             "-S for the daemon to read it; a memcached with TLS (-Z): give the target a tls: "
             "block, or add a plain listener for the daemon, -l notls:127.0.0.1:PORT, and point "
             "the target at it; or a TCP proxy in front whose backend is down.";
    case FailureKind::kProtocol:
      return "the peer answers in text, but not as memcached does: another service on this "
             "port, or a memcached-compatible server the daemon cannot read; the message quotes "
             "what came.";
    case FailureKind::kNamespace:
      return "the daemon cannot open a socket in the target's network namespace: it lacks the "
             "privilege the message names (CAP_SYS_ADMIN to enter a namespace, CAP_SYS_PTRACE "
             "or the same user to open /proc/PID/ns/net), or the namespace is gone (the process "
             "ended, the file was removed).";
    case FailureKind::kTls:
      return "the target's tls: settings do not work with this memcached: a file they name does "
             "not load, memcached's certificate does not verify against tls.ca_file or does not "
             "name tls.server_name, or memcached does not speak TLS on that port (-Z, not a "
             "notls: listener); the message says which.";
  }
  return "";
}

namespace {

// Names a command in messages, and what is sent for it.
constexpr std::string_view kStatsCommands[] = {"stats", "stats settings", "stats items",
                                               "stats slabs"};

}  // namespace

Duration reconnect_delay(int failures, Duration base, Duration cap, double unit_random) {
  if (failures <= 0) return Duration{0};
  double ms = static_cast<double>(base.count());
  for (int i = 1; i < failures && ms < static_cast<double>(cap.count()); ++i) ms *= 2;
  ms = std::min(ms, static_cast<double>(cap.count()));
  const double jitter = 0.5 + 0.5 * std::clamp(unit_random, 0.0, 1.0);
  return Duration{static_cast<Duration::rep>(std::llround(ms * jitter))};
}

// ---- StatsConnection ----------------------------------------------------------------------

StatsConnection::StatsConnection(asio::io_context& io, Transport transport, Options options)
    : io_(io),
      transport_(std::move(transport)),
      endpoint_(transport_.endpoint),
      options_(options),
      socket_(io),
      timer_(io),
      random_(std::random_device{}()) {
  if (transport_.netns) {
    netns_watch_ = std::make_unique<NetnsWatch>(*transport_.netns, transport_.procfs);
  }
}

void StatsConnection::query(SteadyClock::time_point deadline, Handler handler,
                            StatsRequest request) {
  handler_ = std::move(handler);
  request_ = request;
  ++query_id_;
  deadline_ = deadline;
  query_started_ = SteadyClock::now();
  reply_ = StatsReply{};
  unanswered_ = {Command::kStats};
  if (request_.settings) unanswered_.push_back(Command::kSettings);
  if (request_.slabs) unanswered_.insert(unanswered_.end(), {Command::kItems, Command::kSlabs});
  timer_.expires_at(deadline);
  timer_.async_wait([self = shared_from_this(), id = query_id_](const error_code& ec) {
    if (!ec && id == self->query_id_ && self->handler_) self->on_deadline();
  });
  if (netns_watch_ && connected()) {
    if (Status held = netns_watch_->check(); !held) netns_gone_ = held.error().message;
  }
  if (state_ == State::kIdle && netns_gone_.empty()) {
    // Written now, so that memcached answers while the other collectors of the cycle run and
    // the reply is waiting when the loop next polls: no sleep and wake-up for it. send() never
    // calls the handler itself.
    start();
    return;
  }
  // Every other path may fail at once: the handler runs after query() has returned.
  asio::post(io_, [self = shared_from_this(), id = query_id_] {
    if (id == self->query_id_ && self->handler_) self->start();
  });
}

void StatsConnection::start() {
  retry_stale_ = false;
  if (!netns_gone_.empty()) {
    // memcached may still answer over this socket, but from a namespace no longer the target's.
    drop(std::exchange(netns_gone_, {}) + "; connection closed", FailureKind::kNamespace, false);
    return;
  }
  switch (state_) {
    case State::kDisconnected:
      if (SteadyClock::now() < next_attempt_) {
        // Unchanged, so the log line is rate-limited.
        fail_unanswered(last_error_, last_kind_);
        finish();
        return;
      }
      connect();
      return;
    case State::kIdle:
      retry_stale_ = true;
      send();
      return;
    case State::kBusy:
      // Replies asked for by an earlier query are still due: wait for them (read_more runs),
      // unless they have been due for too long.
      if (SteadyClock::now() - due_since_ >= options_.stall_limit) {
        drop("no reply to " + std::string(kStatsCommands[static_cast<int>(due_.front())]) +
                 " for " + millis_since(due_since_) + "; connection closed",
             FailureKind::kNoReply, false);
      }
      return;
    case State::kConnecting:
      return;  // cannot happen: a connect never outlives its query
  }
}

void StatsConnection::connect() {
  state_ = State::kConnecting;
  const std::uint64_t gen = ++generation_;
  if (netns_watch_) {
    // Armed before the socket is made, so that a namespace replaced in between is seen.
    if (Status armed = netns_watch_->arm(); !armed) {
      drop(armed.error().message, FailureKind::kNamespace, false);
      return;
    }
  }
  resolving_ = true;
  resolve(io_, lookup_, endpoint_,
          [self = shared_from_this(), gen](const std::string& error, Endpoints eps) {
            if (gen != self->generation_) return;
            self->resolving_ = false;
            if (!error.empty()) {
              self->drop(error, FailureKind::kUnreachable, false);
              return;
            }
            connect_any(self->socket_, std::make_shared<const Endpoints>(std::move(eps)), 0,
                        self->endpoint_.to_string(),
                        Origin{self->transport_.netns, self->transport_.procfs},
                        [self, gen](const std::string& cerror, FailureKind kind) {
                          if (gen != self->generation_) return;
                          if (!cerror.empty()) {
                            self->drop(cerror, kind, false);
                            return;
                          }
                          if (self->transport_.tls && !self->tls_) {
                            self->secure(gen);
                            return;
                          }
                          ++self->connects_;
                          self->state_ = State::kIdle;
                          self->in_.clear();
                          if (self->handler_) self->send();
                        });
          });
}

void StatsConnection::secure(std::uint64_t gen) {
  if (!transport_.tls_error.empty()) {
    drop(transport_.tls_error, FailureKind::kTls, false);
    return;
  }
  tls_ = start_tls(socket_, *transport_.tls, endpoint_,
                   [self = shared_from_this(), gen](const std::string& error, FailureKind kind) {
                     if (gen != self->generation_) return;
                     if (!error.empty()) {
                       self->drop(error, kind, false);
                       return;
                     }
                     ++self->connects_;
                     self->state_ = State::kIdle;
                     self->in_.clear();
                     if (self->handler_) self->send();
                   });
}

void StatsConnection::send() {
  // A new connection's first write asks everything: at least 24 bytes (see the class comment).
  // What the request did not ask for is then awaited too, so that its reply is not lost.
  const bool fresh = !asked_;
  std::vector<Command> commands{Command::kStats};
  auto ask = [&](bool requested, std::initializer_list<Command> cs) {
    if (!requested && !fresh) return;
    commands.insert(commands.end(), cs);
    if (!requested) unanswered_.insert(unanswered_.end(), cs);
  };
  ask(request_.settings, {Command::kSettings});
  ask(request_.slabs, {Command::kItems, Command::kSlabs});
  out_.clear();
  for (const Command c : commands) {
    out_ += kStatsCommands[static_cast<int>(c)];
    out_ += "\r\n";
  }
  due_.assign(commands.begin(), commands.end());
  due_query_ = query_id_;
  due_since_ = SteadyClock::now();
  asked_ = true;
  state_ = State::kBusy;
  write_all(
      socket_, tls_.get(), asio::buffer(out_),
      [self = shared_from_this(), gen = generation_](const error_code& ec, std::size_t /*n*/) {
        if (gen != self->generation_) return;
        if (ec) {
          self->drop("write: " + ec.message(), FailureKind::kUnreachable, true);
          return;
        }
        self->read_more();
      });
}

void StatsConnection::read_more() {
  read_some(socket_, tls_.get(), asio::buffer(chunk_),
            [self = shared_from_this(), gen = generation_](const error_code& ec, std::size_t n) {
              if (gen != self->generation_) return;
              if (ec && !self->received_ && closed_or_reset(ec)) {
                self->drop(closed_without_reply(ec), FailureKind::kNotTextProtocol, false);
              } else if (ec) {
                self->drop(ec == asio::error::eof ? std::string("memcached closed the connection")
                                                  : "read: " + ec.message(),
                           FailureKind::kUnreachable, true);
              } else {
                self->on_bytes(n);
              }
            });
}

void StatsConnection::on_bytes(std::size_t n) {
  const std::string_view bytes(chunk_.data(), n);
  if (!received_) {
    received_ = true;
    if (!printable_start(bytes.front())) {
      drop("connection accepted, but the reply is not text: " + quote_untrusted(bytes),
           FailureKind::kNotTextProtocol, false);
      return;
    }
  }
  retry_stale_ = false;
  in_.append(bytes);
  const ClientLimits& limits = options_.limits;
  const std::uint64_t gen = generation_;
  while (!due_.empty()) {
    const ReplyEnd end = find_reply_end(in_, limits.max_line);
    if (end.kind == ReplyEnd::Kind::kIncomplete && in_.size() <= limits.max_reply) {
      read_more();
      return;
    }
    if (end.kind == ReplyEnd::Kind::kMalformed) {
      drop("protocol error: " + end.error, FailureKind::kProtocol, false);
      return;
    }
    if (end.kind == ReplyEnd::Kind::kIncomplete || end.length > limits.max_reply) {
      drop("protocol error: a reply longer than " + std::to_string(limits.max_reply) + " bytes",
           FailureKind::kProtocol, false);
      return;
    }
    const Command command = due_.front();
    due_.pop_front();
    const std::string reply = in_.substr(0, end.length);
    in_.erase(0, end.length);
    on_reply(command, reply);
    if (gen != generation_) return;
  }
  state_ = State::kIdle;
  if (!in_.empty()) {
    // memcached sends nothing it was not asked for: the stream cannot be trusted.
    drop("protocol error: bytes after the end of a reply", FailureKind::kProtocol, false);
    return;
  }
  // The late replies of an earlier query are in: now ask for ours.
  if (handler_ && due_query_ != query_id_) send();
}

void StatsConnection::on_reply(Command command, std::string_view reply) {
  if (!handler_ || due_query_ != query_id_) return;  // of an earlier query: dropped
  std::erase(unanswered_, command);
  if (command == Command::kStats) {
    reply_.received = SteadyClock::now();
    reply_.stats = parse_stats(reply);
    if (!reply_.stats) {
      reply_.failure = at_connection_limit(reply) ? FailureKind::kAtLimit : FailureKind::kProtocol;
      finish();
      return;
    }
    failures_ = 0;
  } else if (command == Command::kSettings) {
    reply_.settings = parse_stats(reply);
  } else {
    (command == Command::kItems ? reply_.items : reply_.slabs) = std::string(reply);
  }
  if (unanswered_.empty()) finish();
}

void StatsConnection::on_deadline(bool overdue) {
  if (state_ == State::kConnecting && tls_) {
    drop(handshake_unanswered(endpoint_), FailureKind::kTls, false);
    return;
  }
  if (state_ == State::kConnecting) {
    const auto [why, kind] = connect_unanswered(endpoint_, resolving_);
    drop(why, kind, false);
    return;
  }
  // The same words every time, so that the failure log's rate limit holds.
  const std::string within =
      overdue ? std::string(" by the next sample")
              : " within " + millis(std::chrono::round<Duration>(deadline_ - query_started_));
  if (state_ == State::kDisconnected && !last_error_.empty()) {
    fail_unanswered(last_error_, last_kind_);
  } else if (state_ == State::kBusy && due_query_ != query_id_) {
    fail_unanswered("still waiting for the reply to an earlier stats", FailureKind::kNoReply);
  } else {
    for (const Command c : unanswered_) {
      fail_command(c, "no reply to " + std::string(kStatsCommands[static_cast<int>(c)]) + within);
      if (c == Command::kStats) reply_.failure = FailureKind::kNoReply;
    }
    unanswered_.clear();
  }
  finish();
}

void StatsConnection::fail_unanswered(const std::string& reason, FailureKind kind) {
  for (const Command c : unanswered_) {
    fail_command(c, reason);
    if (c == Command::kStats) reply_.failure = kind;
  }
  unanswered_.clear();
}

void StatsConnection::fail_command(Command command, const std::string& reason) {
  switch (command) {
    case Command::kStats:
      reply_.stats = fail(reason);
      return;
    case Command::kSettings:
      reply_.settings = fail(reason);
      return;
    case Command::kItems:
      reply_.items = fail(reason);
      return;
    case Command::kSlabs:
      reply_.slabs = fail(reason);
      return;
  }
}

void StatsConnection::drop(const std::string& reason, FailureKind kind, bool peer_closed) {
  ++generation_;
  error_code ignored;
  socket_.close(ignored);
  tls_.reset();
  if (lookup_) lookup_->cancel();
  lookup_.reset();
  resolving_ = false;
  state_ = State::kDisconnected;
  due_.clear();
  in_.clear();
  received_ = false;
  asked_ = false;
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
  last_kind_ = kind;
  if (!handler_) return;
  fail_unanswered(reason, kind);
  finish();
}

void StatsConnection::finish() {
  if (!handler_) return;
  timer_.cancel();
  Handler handler = std::move(handler_);
  handler_ = nullptr;
  handler(std::move(reply_));
}

void StatsConnection::expire() {
  if (handler_) on_deadline(/*overdue=*/true);
}

void StatsConnection::close() {
  closed_ = true;
  handler_ = nullptr;
  timer_.cancel();
  drop("closed", FailureKind::kNone, false);
}

// ---- Probe --------------------------------------------------------------------------------

Probe::Probe(asio::io_context& io, Transport transport, Handler handler, std::size_t max_line)
    : io_(io),
      transport_(std::move(transport)),
      endpoint_(transport_.endpoint),
      handler_(std::move(handler)),
      max_line_(max_line),
      socket_(io),
      timer_(io) {}

std::shared_ptr<Probe> Probe::start(asio::io_context& io, const Transport& transport,
                                    SteadyClock::time_point deadline, Handler handler,
                                    std::size_t max_line) {
  auto probe = std::make_shared<Probe>(io, transport, std::move(handler), max_line);
  probe->run(deadline);
  return probe;
}

void Probe::run(SteadyClock::time_point deadline) {
  connect_started_ = SteadyClock::now();
  timer_.expires_at(deadline);
  timer_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec) return;
    if (self->handshaking_) {
      self->end(false, handshake_unanswered(self->endpoint_), FailureKind::kTls);
      return;
    }
    if (self->connected_) {
      self->end(false, "no reply to version by the deadline", FailureKind::kNoReply);
      return;
    }
    const auto [why, kind] = connect_unanswered(self->endpoint_, self->resolving_);
    self->end(false, why, kind);
  });
  resolving_ = true;
  resolve(io_, lookup_, endpoint_,
          [self = shared_from_this()](const std::string& error, Endpoints eps) {
            if (!self->handler_) return;
            self->resolving_ = false;
            if (!error.empty()) {
              self->end(false, error, FailureKind::kUnreachable);
              return;
            }
            self->connect_started_ = SteadyClock::now();
            connect_any(self->socket_, std::make_shared<const Endpoints>(std::move(eps)), 0,
                        self->endpoint_.to_string(),
                        Origin{self->transport_.netns, self->transport_.procfs},
                        [self](const std::string& cerror, FailureKind kind) {
                          if (!self->handler_) return;
                          if (!cerror.empty()) {
                            self->end(false, cerror, kind);
                            return;
                          }
                          self->connected_ = true;
                          self->connected_at_ = SteadyClock::now();
                          self->secure();
                        });
          });
}

void Probe::secure() {
  if (!transport_.tls) {
    ask();
    return;
  }
  if (!transport_.tls_error.empty()) {
    end(false, transport_.tls_error, FailureKind::kTls);
    return;
  }
  handshaking_ = true;
  tls_ = start_tls(socket_, *transport_.tls, endpoint_,
                   [self = shared_from_this()](const std::string& error, FailureKind kind) {
                     if (!self->handler_) return;
                     self->handshaking_ = false;
                     if (!error.empty()) {
                       self->end(false, error, kind);
                       return;
                     }
                     self->ask();
                   });
}

void Probe::ask() {
  // Three requests in one write: 27 bytes, more than a binary request header.
  static constexpr std::string_view kVersion = "version\r\nversion\r\nversion\r\n";
  write_all(socket_, tls_.get(), asio::buffer(kVersion.data(), kVersion.size()),
            [self = shared_from_this()](const error_code& ec, std::size_t /*n*/) {
              if (!self->handler_) return;
              if (ec) {
                self->end(false, "write: " + ec.message(), FailureKind::kUnreachable);
                return;
              }
              self->read_more();
            });
}

void Probe::read_more() {
  read_some(
      socket_, tls_.get(), asio::buffer(chunk_),
      [self = shared_from_this()](const error_code& ec, std::size_t n) {
        if (!self->handler_) return;
        if (ec && self->in_.empty() && closed_or_reset(ec)) {
          self->end(false, closed_without_reply(ec), FailureKind::kNotTextProtocol);
          return;
        }
        if (ec) {
          self->end(false,
                    ec == asio::error::eof
                        ? "memcached closed the connection after " + quote_untrusted(self->in_)
                        : "read: " + ec.message(),
                    FailureKind::kUnreachable);
          return;
        }
        if (self->in_.empty() && !printable_start(self->chunk_[0])) {
          self->end(false,
                    "connection accepted, but the reply is not text: " +
                        quote_untrusted(std::string_view(self->chunk_.data(), n)),
                    FailureKind::kNotTextProtocol);
          return;
        }
        self->in_.append(self->chunk_.data(), n);
        const auto nl = self->in_.find('\n');
        if (nl == std::string::npos) {
          if (self->in_.size() > self->max_line_) {
            self->end(
                false,
                "protocol error: a line longer than " + std::to_string(self->max_line_) + " bytes",
                FailureKind::kProtocol);
          } else {
            self->read_more();
          }
          return;
        }
        const std::string_view line = std::string_view(self->in_).substr(0, nl + 1);
        auto version = parse_version_reply(line);
        if (version) {
          self->end(true, *version);
        } else {
          self->end(false, version.error().message,
                    at_connection_limit(line) ? FailureKind::kAtLimit : FailureKind::kProtocol);
        }
      });
}

void Probe::end(bool success, std::string text, FailureKind kind) {
  if (!handler_) return;
  ProbeResult r;
  r.at = SteadyClock::now();
  r.success = success;
  r.failure = success ? FailureKind::kNone : kind;
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
