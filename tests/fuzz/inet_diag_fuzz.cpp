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
  // Connections are grouped by the listener they came to: each one counted once at most, and in
  // each group the clients hold exactly the established connections.
  std::uint64_t counted = 0;
  for (const mcb::DiagSocket& s : sockets) {
    if (s.state != TCP_LISTEN && s.state >= TCP_ESTABLISHED && s.state <= TCP_CLOSING) ++counted;
  }
  std::uint64_t grouped = 0;
  for (const mcb::ListenerSample& g : sample.listeners) {
    require(std::binary_search(options.ports.begin(), options.ports.end(), g.port),
            "every group is on a watched port");
    for (const auto& [state, n] : g.connections) {
      require(state != "listen", "a listener is not its own connection");
      grouped += n;
    }
    require(g.top_clients.size() <= static_cast<std::size_t>(std::max(options.top_clients, 0)),
            "no more top clients than asked for");
    require(g.clients >= g.top_clients.size(), "top clients are distinct clients");
    std::uint64_t held = g.other_clients_connections;
    for (std::size_t c = 0; c < g.top_clients.size(); ++c) {
      held += g.top_clients[c].connections;
      if (c > 0) {
        require(g.top_clients[c - 1].connections >= g.top_clients[c].connections,
                "top clients by connections, most first");
      }
    }
    const auto established = g.connections.find("established");
    require(held == (established == g.connections.end() ? 0 : established->second),
            "clients hold the established connections");
  }
  require(grouped <= counted, "no connection is counted twice");

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
  std::uint32_t lengths = 0;
  std::size_t listening = 0;
  for (const mcb::ListenerSample& l : sample.listeners) {
    if (!l.listening) continue;
    ++listening;
    lengths += l.queue_length;
    require(l.queue_peak == std::max(l.queue_length, kPeak), "the peak is the larger one");
  }
  require(listening == keys.size(), "one listener per port and address");
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
