#include "collectors/sockdiag.hpp"

#include <linux/netlink.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "collectors/netns.hpp"
#include "common/families.hpp"

namespace mcb {

static_assert(SockdiagConfig::kMaxPorts <= kMaxFilterPorts,
              "the configuration must not accept more ports than one filter holds");

namespace {

// A hash of the whole address: clients are counted in a hash map, which costs half of what an
// ordered map does at a thousand clients.
struct AddressHash {
  std::size_t operator()(const IpAddress& a) const noexcept {
    std::uint64_t low = 0;
    std::uint64_t high = 0;
    std::memcpy(&low, a.bytes.data(), sizeof low);
    std::memcpy(&high, a.bytes.data() + sizeof low, sizeof high);
    const std::uint64_t h =
        (low ^ (high * 0x9e3779b97f4a7c15) ^ static_cast<std::uint64_t>(a.family)) *
        0xbf58476d1ce4e5b9;
    return static_cast<std::size_t>(h ^ (h >> 31));
  }
};

// Remote addresses of one port with their ESTABLISHED connection counts.
using ClientCounts = std::unordered_map<IpAddress, std::uint64_t, AddressHash>;

void fill_clients(ListenerSample& l, const ClientCounts& counts, int top) {
  std::vector<std::pair<IpAddress, std::uint64_t>> ranked(counts.begin(), counts.end());
  // Only the top clients are ordered: most connections first, ties by address, so the choice
  // does not depend on the hash order.
  const std::size_t shown = std::min(ranked.size(), static_cast<std::size_t>(std::max(top, 0)));
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(shown),
                    ranked.end(), [](const auto& a, const auto& b) {
                      return a.second != b.second ? a.second > b.second : a.first < b.first;
                    });
  l.clients = ranked.size();
  for (std::size_t i = 0; i < ranked.size(); ++i) {
    if (i < shown) {
      l.top_clients.push_back({to_string(ranked[i].first), ranked[i].second});
    } else {
      l.other_clients_connections += ranked[i].second;
    }
  }
}

IpAddress wildcard(int family) {
  IpAddress a;
  a.family = family;
  return a;  // all zero: 0.0.0.0 or ::
}

// The figures of one listener while a dump is aggregated.
struct Group {
  ListenerSample sample;
  std::array<std::uint64_t, TCP_CLOSING + 1> by_state{};
  ClientCounts clients;
};

}  // namespace

std::uint64_t ListenerSample::established() const {
  const auto e = connections.find("established");
  return e == connections.end() ? 0 : e->second;
}

std::string listener_name(std::string_view address, std::uint16_t port) {
  if (address.starts_with("unix:")) return std::string(address);
  const bool v6 = address.find(':') != std::string_view::npos;
  return (v6 ? "[" + std::string(address) + "]" : std::string(address)) + ":" +
         std::to_string(port);
}

bool is_wildcard(std::string_view address) { return address == "0.0.0.0" || address == "::"; }

bool foreign_socket(const DiagSocket& s, const SockdiagOptions& options) {
  const auto owner = options.port_owners.find(s.local_port);
  return owner != options.port_owners.end() && owner->second != s.uid;
}

SockdiagSample sockdiag_sample(std::span<const DiagSocket> sockets, const SockdiagOptions& options,
                               const ListenerPeaks& peaks) {
  auto watched = [&options](std::uint16_t port) {
    return std::binary_search(options.ports.begin(), options.ports.end(), port);
  };
  std::map<ListenerKey, Group> groups;
  for (const DiagSocket& s : sockets) {
    if (s.state != TCP_LISTEN || !watched(s.local_port) || foreign_socket(s, options)) continue;
    ListenerSample& l = groups[{s.local_port, canonical(s.local)}].sample;
    if (!l.listening) l.uid = s.uid;
    l.listening = true;
    l.queue_length += s.rqueue;
    l.queue_max += s.wqueue;
    if (s.drops) l.drops = l.drops.value_or(0) + *s.drops;
  }
  // The listener a connection came to: its own address, else the wildcard of its family, else
  // (IPv4 through a dual-stack socket) the IPv6 wildcard, else a group of its own.
  auto group_of = [&groups](std::uint16_t port, const IpAddress& local) -> Group& {
    for (const IpAddress& a : {local, wildcard(local.family), wildcard(AF_INET6)}) {
      auto it = groups.find({port, a});
      if (it != groups.end() && it->second.sample.listening) return it->second;
    }
    return groups[{port, local}];
  };
  ListenerKey last_key;  // connections come in runs of one local address and port
  Group* last = nullptr;
  for (const DiagSocket& s : sockets) {
    if (s.state == TCP_LISTEN || !watched(s.local_port) || foreign_socket(s, options)) continue;
    const ListenerKey key{s.local_port, canonical(s.local)};
    if (last == nullptr || key != last_key) {
      last = &group_of(key.first, key.second);
      last_key = key;
    }
    Group& g = *last;
    if (s.state < g.by_state.size()) ++g.by_state[s.state];
    if (s.state == TCP_ESTABLISHED) ++g.clients[canonical(s.remote)];
    if (s.wqueue > options.send_queue_threshold_bytes) ++g.sample.send_queue_blocked;
  }
  SockdiagSample out;
  out.listeners.reserve(groups.size());
  for (auto& [key, g] : groups) {
    ListenerSample& l = g.sample;
    l.address = to_string(key.second);
    l.port = key.first;
    for (int state = TCP_ESTABLISHED; state <= TCP_CLOSING; ++state) {
      if (state != TCP_LISTEN) l.connections.emplace(tcp_state_name(state), g.by_state[state]);
    }
    fill_clients(l, g.clients, options.top_clients);
    if (l.listening) {
      const auto peak = peaks.find(key);
      l.queue_peak = std::max(l.queue_length, peak == peaks.end() ? 0 : peak->second);
    }
    out.listeners.push_back(std::move(l));
  }
  return out;
}

std::vector<ListenerKey> merge_connections(SockdiagSample& listeners,
                                           const SockdiagSample& walked) {
  auto key_of = [](const ListenerSample& l) {
    return ListenerKey{l.port, parse_ip(l.address).value_or(IpAddress{})};
  };
  std::map<ListenerKey, const ListenerSample*> from_walk;
  for (const ListenerSample& w : walked.listeners) from_walk.emplace(key_of(w), &w);
  std::vector<ListenerKey> unseen;
  for (ListenerSample& l : listeners.listeners) {
    const auto it = from_walk.find(key_of(l));
    if (it == from_walk.end()) {
      unseen.push_back(key_of(l));
      continue;
    }
    const ListenerSample& w = *it->second;
    l.connections = w.connections;
    l.top_clients = w.top_clients;
    l.other_clients_connections = w.other_clients_connections;
    l.clients = w.clients;
    l.send_queue_blocked = w.send_queue_blocked;
    from_walk.erase(it);
  }
  // Connections whose listener is gone now, or was already at the walk.
  for (const auto& [key, w] : from_walk) {
    if (w->listening) continue;  // it closed since: its connections went with it or will
    listeners.listeners.push_back(*w);
  }
  std::sort(listeners.listeners.begin(), listeners.listeners.end(),
            [&](const auto& a, const auto& b) { return key_of(a) < key_of(b); });
  return unseen;
}

Families sockdiag_families(const SockdiagSample& s, Duration sample_interval, Duration peak_window,
                           std::optional<Duration> connections_age) {
  auto length = gauge("mcbacklog_accept_queue_length",
                      "Connections the kernel completed that wait for the application's accept() "
                      "(idiag_rqueue of the LISTEN socket; ss -ltn Recv-Q).");
  auto max = gauge("mcbacklog_accept_queue_max",
                   "Capacity of the listener's accept queue: min(listen() backlog, "
                   "net.core.somaxconn) (idiag_wqueue; ss -ltn Send-Q). 0 means the application "
                   "called listen(fd, 0) to stop accepting (memcached does when out of "
                   "connections).");
  auto peak = gauge("mcbacklog_accept_queue_peak",
                    "Largest accept queue length over the last " + format_duration(peak_window) +
                        ", sampled every " + format_duration(sample_interval) +
                        " while a queue is non-empty or connections move, else once a run.");
  auto drops = counter("mcbacklog_accept_queue_drops_total",
                       "Connections the listener dropped since it was created, as the kernel "
                       "counts them on the LISTEN socket (sk_drops; ss -ltnm skmem d): handshakes "
                       "dropped because its accept queue was full, and other failures to set a "
                       "connection up. This listener's share of TcpExt ListenDrops.");
  for (const ListenerSample& l : s.listeners) {
    if (!l.listening) continue;
    Labels labels{{"address", l.address}};
    if (!l.unix_socket) labels.push_back({"port", std::to_string(l.port)});
    length.add(l.queue_length, labels);
    max.add(l.queue_max, labels);
    peak.add(l.queue_peak, labels);
    if (l.drops) drops.add(static_cast<double>(*l.drops), labels);
  }
  auto connections = gauge("mcbacklog_connections",
                           "Server-side TCP sockets that came to the listener (its local address "
                           "and port, or any address for a wildcard listener), by state.");
  auto per_client = gauge("mcbacklog_client_connections",
                          "ESTABLISHED connections to the listener from each of the clients "
                          "holding the most; the rest are summed as client=\"other\".");
  auto clients = gauge("mcbacklog_clients",
                       "Distinct client addresses with an ESTABLISHED connection to the listener.");
  auto blocked = gauge("mcbacklog_connections_send_queue_blocked",
                       "Server-side sockets of the listener whose send queue holds more than "
                       "send_queue_threshold_bytes: clients not reading their replies.");
  for (const ListenerSample& l : s.listeners) {
    if (l.unix_socket) continue;  // no connection figures
    const std::string port = std::to_string(l.port);
    auto labels = [&](std::string name = {}, std::string value = {}) {
      Labels out{{"address", l.address}, {"port", port}};
      if (!name.empty()) out.push_back({std::move(name), std::move(value)});
      return out;
    };
    for (const auto& [state, count] : l.connections) {
      connections.add(static_cast<double>(count), labels("state", state));
    }
    for (const ClientConnections& c : l.top_clients) {
      per_client.add(static_cast<double>(c.connections), labels("client", c.client));
    }
    per_client.add(static_cast<double>(l.other_clients_connections), labels("client", "other"));
    clients.add(static_cast<double>(l.clients), labels());
    blocked.add(static_cast<double>(l.send_queue_blocked), labels());
  }
  auto age = gauge("mcbacklog_connections_sample_age_seconds",
                   "Age of the connection figures (mcbacklog_connections, _client_connections, "
                   "_clients, _send_queue_blocked) at the last sample: the connection table is "
                   "walked every connections_interval while all is well, every sample while "
                   "something connection-related is wrong.");
  if (connections_age) age.add(std::chrono::duration<double>(*connections_age).count());
  Families out;
  for (FamilyBuilder* f :
       {&length, &max, &peak, &drops, &connections, &per_client, &clients, &blocked, &age}) {
    std::move(*f).into(out);
  }
  return out;
}

void PeakWindow::add(Clock::time_point at, std::uint32_t value) {
  // A value that is not above a later one can never be the peak again.
  while (!decreasing_.empty() && decreasing_.back().second <= value) decreasing_.pop_back();
  decreasing_.emplace_back(at, value);
}

std::uint32_t PeakWindow::peak(Clock::time_point now) {
  while (!decreasing_.empty() && decreasing_.front().first <= now - window_) {
    decreasing_.pop_front();
  }
  return decreasing_.empty() ? 0 : decreasing_.front().second;
}

std::vector<ListenerSample> unix_listeners(std::span<const UnixDiagSocket> sockets,
                                           std::span<const std::string> paths,
                                           const std::map<std::string, std::uint32_t>& peaks) {
  std::vector<ListenerSample> out;
  for (auto it = paths.begin(); it != paths.end(); ++it) {
    const std::string& path = *it;
    if (std::find(paths.begin(), it, path) != it) continue;  // each path once, no allocation
    ListenerSample l;
    for (const UnixDiagSocket& s : sockets) {
      if (s.state != TCP_LISTEN || !s.has_queues || s.path != path) continue;
      l.listening = true;
      l.queue_length += s.rqueue;
      l.queue_max += s.wqueue;
    }
    if (!l.listening) continue;
    l.address = "unix:" + path;
    l.unix_socket = true;
    const auto peak = peaks.find(path);
    l.queue_peak = std::max(l.queue_length, peak == peaks.end() ? 0 : peak->second);
    out.push_back(std::move(l));
  }
  return out;
}

Status dump_listeners(SockDiagSocket& socket, const std::vector<std::byte>& filter,
                      SockDiagSocket::Clock::time_point deadline, std::vector<DiagSocket>& out) {
  return socket.dump_tcp(tcp_state_bit(TCP_LISTEN), filter, /*memory_info=*/true, deadline, out);
}

Status dump_watched(SockDiagSocket& socket, const std::vector<std::byte>& filter,
                    SockDiagSocket::Clock::time_point deadline, std::vector<DiagSocket>& out) {
  const std::size_t first = out.size();
  if (auto st = dump_listeners(socket, filter, deadline, out); !st) return st;
  if (out.size() == first) return ok_status();  // nothing listens: no walk
  return socket.dump_tcp(kConnectionStates, filter, /*memory_info=*/false, deadline, out);
}

SockdiagCollector::SockdiagCollector(boost::asio::io_context& io, const SockdiagConfig& config,
                                     std::vector<std::uint16_t> watched_ports, Duration interval,
                                     SockdiagScope scope)
    : sampler_(io, config.sample_interval, [this] { sample_listeners(); }),
      interval_(interval),
      sample_interval_(config.sample_interval),
      peak_window_(config.peak_window),
      connections_interval_(config.connections_interval),
      sample_at_rest_(config.sample_at_rest),
      socket_(scope.netns ? SockDiagSocket::Opener([this] {
        // The socket answers about the namespace it was created in: note which that is.
        if (auto st = watch_->arm(); !st) return Result<int>(st.error());
        return netns_socket(*scope_.netns, scope_.procfs, AF_NETLINK,
                            SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_SOCK_DIAG);
      })
                          : SockDiagSocket::Opener()),
      scope_(std::move(scope)) {
  if (scope_.netns) watch_.emplace(*scope_.netns, scope_.procfs);
  options_.top_clients = config.top_clients;
  options_.send_queue_threshold_bytes = config.send_queue_threshold_bytes;
  set_ports(std::move(watched_ports));
  configured_ports_ = options_.ports;  // sorted and unique now
}

bool SockdiagCollector::set_ports(std::vector<std::uint16_t> ports) {
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  if (ports == options_.ports) return false;
  options_.ports = std::move(ports);
  filter_.clear();
  filter_error_.reset();
  if (!options_.ports.empty()) {
    auto filter = compile_port_filter(options_.ports);
    if (filter) {
      filter_ = std::move(*filter);
    } else {
      filter_error_ = filter.error().message;
    }
  }
  return true;
}

bool SockdiagCollector::watch_more_ports(const std::map<std::uint16_t, std::uint32_t>& owners) {
  if (owners == last_owners_) {  // every sample asks; the answer changes rarely
    // The ports settled after changes the budget left out: say where, once it allows.
    if (ports_log_.left_out() > 0 && ports_log_.take(Clock::now(), false)) log_ports();
    return false;
  }
  last_owners_ = owners;
  // A configured port is watched whoever listens there; the others only for their memcached.
  const std::size_t cap = std::min(
      kMaxMemcachedPorts, kMaxFilterPorts - std::min(kMaxFilterPorts, configured_ports_.size()));
  std::map<std::uint16_t, std::uint32_t> more;
  std::size_t asked = 0;
  for (const auto& [port, uid] : owners) {
    if (std::binary_search(configured_ports_.begin(), configured_ports_.end(), port)) continue;
    if (++asked <= cap) more.emplace(port, uid);
  }
  if (asked > cap && !too_many_ports_logged_) {
    // memcached lists a few; a server that lists thousands would slow every dump.
    spdlog::warn("{}: the targets say they listen on {} more ports; watching the first {} of them",
                 described(), asked, cap);
    too_many_ports_logged_ = true;
  }
  if (more == options_.port_owners) return false;
  std::vector<std::uint16_t> all = configured_ports_;
  for (const auto& entry : more) all.push_back(entry.first);
  options_.port_owners = std::move(more);
  // The listeners are found by a dump, and their connections by a walk, in the next run.
  relearn_ = true;
  walk_requested_ = true;
  if (!set_ports(std::move(all))) return false;  // the same ports, another owner: nothing to say
  if (filter_error_) {
    // The configured ports compiled; these did not: keep to the configured ones.
    spdlog::warn("{}: cannot watch the targets' other ports ({}); watching the configured ones",
                 described(), *filter_error_);
    set_ports(configured_ports_);
  }
  // A server that names other ports every sample would write this line every sample.
  if (ports_log_.take(Clock::now())) log_ports();
  return true;
}

void SockdiagCollector::log_ports() {
  std::string list;
  for (std::uint16_t p : options_.ports) list += (list.empty() ? "" : ", ") + std::to_string(p);
  const int left_out = ports_log_.left_out();
  ports_log_.clear_left_out();
  spdlog::info("{}: watching the listeners on ports {}{}", described(), list,
               left_out > 0 ? fmt::format(" ({} changes before not logged)", left_out) : "");
}

void SockdiagCollector::drop_foreign(std::vector<DiagSocket>& sockets, std::size_t first) const {
  if (options_.port_owners.empty()) return;
  sockets.erase(std::remove_if(sockets.begin() + static_cast<std::ptrdiff_t>(first), sockets.end(),
                               [this](const DiagSocket& s) { return foreign_socket(s, options_); }),
                sockets.end());
}

void SockdiagCollector::collect(Done done) {
  at_rest_ = false;  // until the run ends well
  if (options_.ports.empty() &&
      scope_.unix_paths.empty()) {  // nothing to watch: no dump, no series
    last_ = SockdiagSample{};
    last_age_.reset();
    at_rest_ = true;
    done(ok_status());
    return;
  }
  if (filter_error_) {
    done(fail(*filter_error_));
    return;
  }
  // Another namespace: the socket stays bound to the one it was created in, even once the
  // process or file that named it is gone. Checked every run, not every sample; the sampler
  // rests until a run finds the namespace again.
  if (watch_) {
    if (auto st = watch_->check(); !st) {
      socket_.close();
      sampler_.stop();
      close_until_ = {};
      relearn_ = true;
      walk_requested_ = true;
      last_.reset();
      done(st.error());
      return;
    }
  }
  const auto now = Clock::now();
  const auto budget = interval_ / 2;
  auto unix_sockets = read_unix_listeners(now + budget);
  if (!unix_sockets) {
    last_.reset();
    done(unix_sockets.error());
    return;
  }
  if (options_.ports.empty()) {  // unix sockets only: no connection figures
    SockdiagSample sample;
    sample.listeners = std::move(*unix_sockets);
    sample.connections_at = now;
    last_ = std::move(sample);
    last_age_.reset();
    finish_run(std::move(done));
    return;
  }
  const bool walk =
      walk_requested_ || !walked_ || now - walked_->connections_at >= connections_interval_;
  // Kept from run to run: a walk's thousands of sockets are not faulted in afresh each time.
  std::vector<DiagSocket>& sockets = run_sockets_;
  sockets.clear();
  Status dumped = ok_status();
  if (walk) {
    dumped = dump_watched(socket_, filter_, now + budget, sockets);
    ++listener_dumps_;
    if (dumped) {
      drop_foreign(sockets, 0);
      learn_listeners(sockets);
    }
  } else {
    dumped = read_listeners(now + budget, sockets);
  }
  if (!dumped) {
    last_.reset();
    // Only a dump that ran out of time is about the budget (not one that could not open).
    if (Clock::now() < now + budget) {
      done(dumped.error());
    } else {
      done(fail(dumped.error().message + " (a run's dumps get half the interval, " +
                format_duration(budget) + ")"));
    }
    return;
  }
  const auto observed = Clock::now();
  observe_listeners(sockets, observed);
  SockdiagSample sample = sockdiag_sample(sockets, options_, peaks(observed));
  if (walk) {
    walk_requested_ = false;
    ++walks_;
    sample.connections_at = now;
    walked_ = sample;
  } else {
    sample.connections_at = walked_->connections_at;
    // A listener that opened since the walk has no connection figures yet: walk next run.
    if (!merge_connections(sample, *walked_).empty()) walk_requested_ = true;
  }
  for (ListenerSample& l : *unix_sockets) sample.listeners.push_back(std::move(l));
  last_age_ = std::chrono::duration_cast<Duration>(now - sample.connections_at);
  last_ = std::move(sample);
  finish_run(std::move(done));
}

void SockdiagCollector::finish_run(Done done) {
  bool rest = !sampler_.running();
  std::vector<std::pair<std::string, std::uint64_t>> drops;
  for (const ListenerSample& l : last_->listeners) {
    if (l.unix_socket || !l.listening) continue;
    if (!l.drops) {
      rest = false;
      continue;
    }
    std::string name = listener_name(l);
    const auto before =
        std::find_if(drops_.begin(), drops_.end(), [&](const auto& d) { return d.first == name; });
    if (before == drops_.end() || before->second != *l.drops) rest = false;
    drops.emplace_back(std::move(name), *l.drops);
  }
  // A listener that closed since the last run may have dropped connections no run saw: the
  // host's counters, read when the listeners are not at rest, tell.
  for (const auto& old : drops_) {
    if (std::none_of(drops.begin(), drops.end(),
                     [&](const auto& d) { return d.first == old.first; })) {
      rest = false;
    }
  }
  drops_ = std::move(drops);
  at_rest_ = rest && !sampler_error_;
  if (sampler_error_) {
    done(fail("accept-queue sampler: " + *sampler_error_));
    sampler_error_.reset();
    return;
  }
  done(ok_status());
}

std::vector<prometheus::MetricFamily> SockdiagCollector::Collect() const {
  if (!last_) return {};
  return labelled(sockdiag_families(*last_, sample_interval_, peak_window_, last_age_));
}

void SockdiagCollector::stop() {
  stopped_ = true;
  sampler_.stop();
}

void SockdiagCollector::sample_closely() {
  close_until_ = std::max(close_until_, Clock::now() + peak_window_);
  pace_sampler(Clock::now());
}

void SockdiagCollector::pace_sampler(Clock::time_point now) {
  if (stopped_ || (options_.ports.empty() && scope_.unix_paths.empty())) return;
  if (sample_at_rest_ || now < close_until_) {
    if (!sampler_.running()) sampler_.start(sample_interval_);
  } else if (sampler_.running()) {
    sampler_.stop();
  }
}

void SockdiagCollector::observe_listeners(std::span<const DiagSocket> sockets,
                                          Clock::time_point at) {
  // A handful of listeners: a vector searched in order beats a map built every 100 ms.
  lengths_.clear();
  bool busy = false;  // a connection waits, or the application stopped accepting
  for (const DiagSocket& s : sockets) {
    if (s.state != TCP_LISTEN) continue;
    if (!std::binary_search(options_.ports.begin(), options_.ports.end(), s.local_port)) continue;
    busy = busy || s.rqueue > 0 || s.wqueue == 0;
    const ListenerKey key{s.local_port, canonical(s.local)};
    const auto it = std::find_if(lengths_.begin(), lengths_.end(),
                                 [&key](const auto& entry) { return entry.first == key; });
    if (it == lengths_.end()) {
      lengths_.emplace_back(key, s.rqueue);
    } else {
      it->second += s.rqueue;
    }
  }
  // A listener that went away takes its peak with it.
  std::erase_if(peaks_, [this](const auto& entry) {
    return std::none_of(lengths_.begin(), lengths_.end(),
                        [&entry](const auto& l) { return l.first == entry.first; });
  });
  for (const auto& [key, length] : lengths_) {
    peaks_.try_emplace(key, peak_window_).first->second.add(at, length);
  }
  if (busy) close_until_ = std::max(close_until_, at + peak_window_);
  pace_sampler(at);
}

ListenerPeaks SockdiagCollector::peaks(Clock::time_point at) {
  ListenerPeaks out;
  for (auto& [key, window] : peaks_) out[key] = window.peak(at);
  return out;
}

void SockdiagCollector::learn_listeners(std::span<const DiagSocket> sockets) {
  known_.clear();
  std::map<std::pair<std::uint16_t, IpAddress>, std::size_t> index;
  for (const DiagSocket& s : sockets) {
    if (s.state != TCP_LISTEN) continue;
    const auto [it, added] = index.try_emplace({s.local_port, s.local}, known_.size());
    if (added) {
      known_.push_back(Known{s.local, s.local_port, false});
    } else {
      known_[it->second].group = true;
    }
  }
  relearn_ = false;
}

Status SockdiagCollector::read_listeners(Clock::time_point deadline, std::vector<DiagSocket>& out) {
  // Nothing known (memcached not listening yet at the last dump): dump again, or a listener that
  // opens later would wait for the next walk of the connections.
  const bool lookups =
      !relearn_ && !known_.empty() &&
      std::none_of(known_.begin(), known_.end(), [](const Known& k) { return k.group; });
  if (lookups) {
    const std::size_t first = out.size();
    for (const Known& k : known_) {
      ++listener_lookups_;
      const DiagRequest request{k.address.family, 0, {}, true, std::make_pair(k.address, k.port)};
      auto found = socket_.lookup(request, deadline);
      if (!found) return found.error();
      // Gone, or a connection answered the lookup instead: learn the listeners again.
      if (!*found || (*found)->state != TCP_LISTEN) {
        out.resize(first);
        relearn_ = true;
        return read_listeners(deadline, out);
      }
      out.push_back(**found);
    }
    return ok_status();
  }
  ++listener_dumps_;
  const std::size_t first = out.size();
  if (auto st = dump_listeners(socket_, filter_, deadline, out); !st) return st;
  drop_foreign(out, first);
  learn_listeners(std::span(out).subspan(first));
  return ok_status();
}

void SockdiagCollector::sample_listeners() {
  const auto deadline = Clock::now() + sample_interval_ / 2;
  if (!scope_.unix_paths.empty()) {
    if (auto st = observe_unix_listeners(deadline); !st) {
      sampler_error_ = st.error().message;
      return;
    }
  }
  if (options_.ports.empty()) return;
  sampled_.clear();
  if (auto st = read_listeners(deadline, sampled_); !st) {
    sampler_error_ = st.error().message;
    return;
  }
  observe_listeners(sampled_, Clock::now());
}

Status SockdiagCollector::observe_unix_listeners(Clock::time_point deadline) {
  unix_sampled_.clear();
  if (auto st = socket_.dump_unix_listeners(deadline, unix_sampled_); !st) return st;
  const auto at = Clock::now();
  // A path that nothing listens on any more takes its peak with it.
  std::erase_if(unix_peaks_, [this](const auto& entry) {
    return std::none_of(unix_sampled_.begin(), unix_sampled_.end(),
                        [&entry](const UnixDiagSocket& s) {
                          return s.state == TCP_LISTEN && s.has_queues && s.path == entry.first;
                        });
  });
  bool busy = false;  // a connection waits, or memcached stopped accepting
  for (const std::string& path : scope_.unix_paths) {
    bool listening = false;
    std::uint32_t length = 0;
    for (const UnixDiagSocket& s : unix_sampled_) {
      if (s.state != TCP_LISTEN || !s.has_queues || s.path != path) continue;
      listening = true;
      length += s.rqueue;
      busy = busy || s.rqueue > 0 || s.wqueue == 0;
    }
    if (listening) unix_peaks_.try_emplace(path, peak_window_).first->second.add(at, length);
  }
  if (busy) close_until_ = std::max(close_until_, at + peak_window_);
  // With TCP listeners too, observe_listeners follows and paces the sampler for both.
  if (options_.ports.empty()) pace_sampler(at);
  return ok_status();
}

Result<std::vector<ListenerSample>> SockdiagCollector::read_unix_listeners(
    Clock::time_point deadline) {
  if (scope_.unix_paths.empty()) return std::vector<ListenerSample>{};
  if (auto st = observe_unix_listeners(deadline); !st) return st.error();
  const auto at = Clock::now();
  std::map<std::string, std::uint32_t> peaks;
  for (auto& [path, window] : unix_peaks_) peaks[path] = window.peak(at);
  return unix_listeners(unix_sampled_, scope_.unix_paths, peaks);
}

}  // namespace mcb
