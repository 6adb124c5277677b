// A memcached reply read in pieces through the stats connection's framing (find_reply_end under
// the client's size caps), parse_stats, the typed stats and settings, parse_stats_items and
// parse_stats_slabs (which must accept what parse_stats accepts), the sample's families and the
// CPU rate; parse_version_reply over the first line, as the probe frames it.
// seeds: tests/fixtures/memcached tests/fuzz/corpus/memcached

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "collectors/memcached.hpp"
#include "collectors/memcached_client.hpp"
#include "tests/fuzz/fuzz.hpp"

namespace {

using mcb::fuzz::require;

// The largest read the fuzzer splits the reply into; the client reads at most 4096 bytes.
constexpr std::size_t kMaxRead = 64;

// What StatsConnection::read_more makes of a stream (memcached_client.cpp).
struct Framed {
  enum class Kind { kIncomplete, kTooLong, kMalformed, kTrailing, kComplete };
  Kind kind = Kind::kIncomplete;
  mcb::ReplyEnd end;  // the last find_reply_end
};

// Every complete line of `text` is at most max_line bytes before its "\n" (the
// implementation counts a "\r" in), and what follows the last "\n" at most max_line.
bool lines_within(std::string_view text, std::size_t max_line) {
  std::size_t pos = 0;
  for (;;) {
    const auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) return text.size() - pos <= max_line;
    if (nl - pos > max_line) return false;
    pos = nl + 1;
  }
}

// Checks one verdict of find_reply_end on `buffered`.
void check_end(std::string_view buffered, const mcb::ReplyEnd& end, std::size_t max_line) {
  using Kind = mcb::ReplyEnd::Kind;
  switch (end.kind) {
    case Kind::kIncomplete:
      require(lines_within(buffered, max_line),
              "an incomplete reply holds no line longer than max_line");
      require(end.error.empty(), "an incomplete reply has no error");
      break;
    case Kind::kComplete: {
      require(end.length > 0 && end.length <= buffered.size(), "a reply lies in what was read");
      require(buffered[end.length - 1] == '\n', "a reply ends with a newline");
      const std::string_view reply = buffered.substr(0, end.length);
      require(lines_within(reply, max_line), "a complete reply has no line longer than max_line");
      auto body = reply.substr(0, reply.size() - 1);
      const auto last = body.substr(body.rfind('\n') + 1);
      const bool end_line = last == "END" || last == "END\r";
      const bool error_line = last.starts_with("ERROR") || last.starts_with("CLIENT_ERROR") ||
                              last.starts_with("SERVER_ERROR");
      require(end_line || error_line, "a reply ends with END or an error line");
      break;
    }
    case Kind::kMalformed:
      require(!end.error.empty(), "a malformed reply says why");
      break;
  }
}

Framed frame(std::string_view stream, const mcb::ClientLimits& limits,
             std::string_view read_sizes) {
  Framed out;
  std::string in;
  std::size_t pos = 0;
  for (std::size_t k = 0; pos < stream.size(); ++k) {
    const auto wanted =
        1 + static_cast<unsigned char>(read_sizes[k % read_sizes.size()]) % kMaxRead;
    const std::size_t n = std::min(wanted, stream.size() - pos);
    in.append(stream.substr(pos, n));
    pos += n;
    if (in.size() > limits.max_reply) {
      out.kind = Framed::Kind::kTooLong;
      return out;
    }
    out.end = mcb::find_reply_end(in, limits.max_line);
    check_end(in, out.end, limits.max_line);
    switch (out.end.kind) {
      case mcb::ReplyEnd::Kind::kIncomplete:
        continue;
      case mcb::ReplyEnd::Kind::kMalformed:
        out.kind = Framed::Kind::kMalformed;
        return out;
      case mcb::ReplyEnd::Kind::kComplete:
        out.kind = out.end.length == in.size() ? Framed::Kind::kComplete : Framed::Kind::kTrailing;
        return out;
    }
  }
  return out;
}

// The reply the map came from, as memcached would send it.
std::string serialize(const mcb::StatsMap& stats) {
  std::string out;
  for (const auto& [name, value] : stats) {
    out += "STAT ";
    out += name;
    out += ' ';
    out += value;
    out += "\r\n";
  }
  return out + "END\r\n";
}

void typed(const mcb::StatsMap& map) {
  mcb::MemcachedSample s;
  s.target = "fuzz";
  s.address = "127.0.0.1:11211";
  s.up = true;
  s.stats = mcb::memcached_stats(map, s.unreadable);
  s.settings = mcb::memcached_settings(map, s.unreadable);
  for (const mcb::UnreadableStat& u : s.unreadable) {
    const auto it = map.find(u.name);
    require(it != map.end() && it->second == u.value, "an unreadable stat is one of the reply's");
  }
  const auto t0 = mcb::SteadyClock::time_point{};
  const auto rate = mcb::cpu_utilization(s.stats, t0, s.stats, t0 + std::chrono::seconds(10),
                                         mcb::worker_threads(s));
  require(!rate || *rate == 0, "no CPU is used between two identical answers");
  s.cpu_utilization_ratio = rate;
  (void)mcb::memcached_families({s});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view stream = mcb::fuzz::text(data, size);
  if (stream.empty()) return 0;

  // The daemon's limits, and tight ones that the captured replies (2 KiB) exceed.
  for (const mcb::ClientLimits limits : {mcb::ClientLimits{}, mcb::ClientLimits{48, 1024}}) {
    // The read sizes come from the bytes themselves, so every split is reachable.
    const Framed framed = frame(stream, limits, stream);
    const mcb::ReplyEnd whole = mcb::find_reply_end(stream, limits.max_line);
    check_end(stream, whole, limits.max_line);
    // A verdict never changes as more bytes arrive: reading in pieces decides as in one read.
    switch (framed.kind) {
      case Framed::Kind::kIncomplete:
        require(whole.kind == mcb::ReplyEnd::Kind::kIncomplete, "incomplete in pieces and whole");
        break;
      case Framed::Kind::kMalformed:
        require(whole.kind == mcb::ReplyEnd::Kind::kMalformed && whole.error == framed.end.error,
                "malformed in pieces and whole, for the same reason");
        break;
      case Framed::Kind::kComplete:
      case Framed::Kind::kTrailing:
        require(whole.kind == mcb::ReplyEnd::Kind::kComplete && whole.length == framed.end.length,
                "complete in pieces and whole, at the same length");
        break;
      case Framed::Kind::kTooLong:
        break;  // the client gave up before a verdict
    }
  }

  // parse_stats on the whole input, framed or not: what it accepts, the framing accepts whole
  // (lines of any length), and it reads back from its own serialization.
  if (auto map = mcb::parse_stats(stream)) {
    const auto end = mcb::find_reply_end(stream, stream.size());
    require(end.kind == mcb::ReplyEnd::Kind::kComplete && end.length == stream.size(),
            "a reply parse_stats accepts is one complete reply");
    const std::string again = serialize(*map);
    auto reparsed = mcb::parse_stats(again);
    require(
        reparsed.ok() && std::equal(reparsed->begin(), reparsed->end(), map->begin(), map->end()),
        "stats read back from their serialization");
    typed(*map);
  } else {
    const auto end = mcb::find_reply_end(stream, stream.size());
    if (end.kind == mcb::ReplyEnd::Kind::kComplete && end.length == stream.size()) {
      const std::string& why = map.error().message;
      require(why.find("given twice") != std::string::npos || why.starts_with("memcached replied"),
              "a complete reply is refused only for a stat given twice or an error line");
    }
  }

  // The slab parsers read the lines as parse_stats does, but a stat given twice is no error to
  // them; the classes they keep are in order of id, each once.
  {
    auto slabs = std::make_shared<mcb::SlabStats>();
    std::vector<mcb::UnreadableStat> unreadable;
    const mcb::Status items = mcb::parse_stats_items(stream, *slabs, unreadable);
    const mcb::Status slab = mcb::parse_stats_slabs(stream, *slabs, unreadable);
    const auto map = mcb::parse_stats(stream);
    const bool twice = !map && map.error().message.find("given twice") != std::string::npos;
    require(!map.ok() || (items.ok() && slab.ok()), "what parse_stats accepts, both accept");
    require(items.ok() == slab.ok(), "both read the lines alike");
    require(!items.ok() || map.ok() || twice,
            "what they accept, parse_stats accepts or refuses for a stat given twice");
    for (std::size_t i = 1; i < slabs->classes.size(); ++i) {
      require(slabs->classes[i - 1].id < slabs->classes[i].id, "classes in order of id, once");
    }
    mcb::MemcachedSample s;
    s.target = "fuzz";
    s.up = true;
    s.slabs = slabs;
    (void)mcb::memcached_families({s});
  }

  // The probe parses its first line as the reply to `version`.
  if (const auto nl = stream.find('\n'); nl != std::string_view::npos) {
    if (auto version = mcb::parse_version_reply(stream.substr(0, nl + 1))) {
      require(!version->empty(), "a version is not empty");
      auto again = mcb::parse_version_reply("VERSION " + *version + "\r\n");
      require(again.ok() && *again == *version, "a version reads back");
    }
  }
  return 0;
}
