// parse_inet_diag over one datagram of a sock_diag dump reply to request 1 (the sequence number
// tests/fixtures/capture_inet_diag.py sends), then sockdiag_sample of its sockets and the
// families.
// seeds: tests/fuzz/corpus/inet_diag

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <numeric>
#include <set>
#include <span>
#include <vector>

#include "collectors/inet_diag.hpp"
#include "collectors/sockdiag.hpp"
#include "tests/fuzz/fuzz.hpp"

namespace {

using mcb::fuzz::require;

// The sequence number of the captured dumps' requests.
constexpr std::uint32_t kSeq = 1;
// A peak every listener is given, to check it against the queue length.
constexpr std::uint32_t kPeak = 5;

void check_sample(const mcb::SockdiagSample& sample, std::span<const mcb::DiagSocket> sockets,
                  const mcb::SockdiagOptions& options) {
  require(sample.ports.size() == options.ports.size(), "one port sample per watched port");
  for (std::size_t i = 0; i < sample.ports.size(); ++i) {
    const mcb::PortSample& p = sample.ports[i];
    require(p.port == options.ports[i], "port samples in port order");
    std::uint64_t counted = 0, blocked = 0;
    std::map<mcb::IpAddress, std::uint64_t> clients;  // ESTABLISHED connections per client
    for (const mcb::DiagSocket& s : sockets) {
      if (s.local_port != p.port || s.state == TCP_LISTEN) continue;
      if (s.state >= TCP_ESTABLISHED && s.state <= TCP_CLOSING) ++counted;
      if (s.state == TCP_ESTABLISHED) ++clients[mcb::canonical(s.remote)];
      if (s.wqueue > options.send_queue_threshold_bytes) ++blocked;
    }
    std::uint64_t total = 0;
    for (const auto& [state, n] : p.connections) total += n;
    require(p.connections.size() == TCP_CLOSING - 1, "every state but listen has a count");
    require(total == counted, "every connection of a known state is counted once");
    require(p.send_queue_blocked == blocked, "blocked sockets are those over the threshold");
    require(p.clients == clients.size(), "clients are the distinct remote addresses");

    // The top clients: most connections first, ties by address; the others summed.
    std::vector<std::pair<mcb::IpAddress, std::uint64_t>> ranked(clients.begin(), clients.end());
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    const std::size_t top =
        std::min(ranked.size(), static_cast<std::size_t>(std::max(options.top_clients, 0)));
    require(p.top_clients.size() == top, "as many top clients as asked for, or as there are");
    std::uint64_t others = 0;
    for (std::size_t c = 0; c < ranked.size(); ++c) {
      if (c >= top) {
        others += ranked[c].second;
        continue;
      }
      require(p.top_clients[c].client == mcb::to_string(ranked[c].first) &&
                  p.top_clients[c].connections == ranked[c].second,
              "top clients by connections, ties by address");
    }
    require(p.other_clients_connections == others, "the other clients' connections are summed");
    require(p.connections.at("established") ==
                std::accumulate(clients.begin(), clients.end(), std::uint64_t{0},
                                [](auto sum, auto& c) { return sum + c.second; }),
            "clients hold the established connections");
  }

  std::set<mcb::ListenerKey> keys;
  std::uint32_t queued = 0;  // sums wrap like the sample's
  for (const mcb::DiagSocket& s : sockets) {
    if (s.state != TCP_LISTEN ||
        !std::binary_search(options.ports.begin(), options.ports.end(), s.local_port)) {
      continue;
    }
    keys.insert({s.local_port, mcb::canonical(s.local)});
    queued += s.rqueue;
  }
  require(sample.listeners.size() == keys.size(), "one listener per port and address");
  std::uint32_t lengths = 0;
  for (const mcb::ListenerSample& l : sample.listeners) {
    lengths += l.queue_length;
    require(l.queue_peak == std::max(l.queue_length, kPeak), "the peak is the larger one");
  }
  require(lengths == queued, "every listening socket's queue is counted once");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto datagram = std::as_bytes(std::span(data, size));
  std::vector<mcb::DiagSocket> sockets;
  const auto progress = mcb::parse_inet_diag(datagram, kSeq, sockets);
  require(sockets.size() <= size / NLMSG_LENGTH(sizeof(inet_diag_msg)),
          "each socket comes from a whole message");
  if (size >= sizeof(nlmsghdr)) {
    nlmsghdr h{};
    std::memcpy(&h, data, sizeof h);
    if (h.nlmsg_seq != kSeq) {
      require(!progress.ok() && sockets.empty(), "a reply to another request is refused");
    }
  }
  static constexpr std::uint8_t kZero[12] = {};
  for (const mcb::DiagSocket& s : sockets) {
    require(s.local.family == s.remote.family, "both ends of a socket in one family");
    require(s.local.family == AF_INET || s.local.family == AF_INET6, "a TCP socket is inet");
    if (s.local.family == AF_INET) {
      require(std::memcmp(s.local.bytes.data() + 4, kZero, 12) == 0 &&
                  std::memcmp(s.remote.bytes.data() + 4, kZero, 12) == 0,
              "an IPv4 address has 4 bytes");
    }
    (void)mcb::to_string(s.local);
  }

  // Watching every port the dump holds, so every socket is aggregated.
  mcb::SockdiagOptions options;
  for (const mcb::DiagSocket& s : sockets) options.ports.push_back(s.local_port);
  std::sort(options.ports.begin(), options.ports.end());
  options.ports.erase(std::unique(options.ports.begin(), options.ports.end()), options.ports.end());
  options.top_clients = 2;
  options.send_queue_threshold_bytes = 4;
  mcb::ListenerPeaks peaks;
  for (const mcb::DiagSocket& s : sockets) {
    if (s.state == TCP_LISTEN) peaks[{s.local_port, mcb::canonical(s.local)}] = kPeak;
  }
  const mcb::SockdiagSample sample = mcb::sockdiag_sample(sockets, options, peaks);
  check_sample(sample, sockets, options);
  (void)mcb::sockdiag_families(sample, std::chrono::seconds(1), std::chrono::seconds(60));
  return 0;
}
