#include "collectors/softnet.hpp"

#include <algorithm>
#include <charconv>

#include "collectors/procfs.hpp"
#include "common/families.hpp"
#include "common/text.hpp"

namespace mcb {

Result<std::vector<SoftnetCpu>> parse_softnet_stat(std::string_view text) {
  std::vector<SoftnetCpu> out;
  int line_number = 0;
  for (std::string_view line; take_line(text, line);) {
    ++line_number;
    const auto words = split_words(line);
    if (words.empty()) continue;
    const std::string where = "line " + std::to_string(line_number);
    if (words.size() < 3) {
      return fail(where + ": " + std::to_string(words.size()) + " columns, at least 3 expected");
    }
    std::uint32_t v[4] = {};
    const std::size_t wanted = words.size() >= 13 ? 4 : 3;
    for (std::size_t i = 0; i < wanted; ++i) {
      const std::string_view w = words[i < 3 ? i : 12];
      auto [ptr, ec] = std::from_chars(w.data(), w.data() + w.size(), v[i], 16);
      if (ec != std::errc() || ptr != w.data() + w.size()) {
        return fail(where + ": column " + std::to_string(i < 3 ? i + 1 : 13) +
                    " is not a 32-bit hexadecimal number");
      }
    }
    SoftnetCpu c;
    c.cpu = wanted == 4 ? static_cast<int>(v[3]) : static_cast<int>(out.size());
    c.processed = v[0];
    c.dropped = v[1];
    c.time_squeeze = v[2];
    out.push_back(c);
  }
  if (out.empty()) return fail("no line");
  return out;
}

SoftnetSample sum_softnet(std::span<const SoftnetCpu> cpus) {
  SoftnetSample s;
  for (const SoftnetCpu& c : cpus) {
    s.processed += c.processed;
    s.dropped += c.dropped;
    s.time_squeeze += c.time_squeeze;
  }
  s.cpus = static_cast<int>(cpus.size());
  return s;
}

SoftnetSample advance_softnet(const SoftnetSample& totals, std::span<const SoftnetCpu> before,
                              std::span<const SoftnetCpu> now) {
  SoftnetSample s = totals;
  for (const SoftnetCpu& c : now) {
    const auto was = std::find_if(before.begin(), before.end(),
                                  [&](const SoftnetCpu& b) { return b.cpu == c.cpu; });
    if (was == before.end()) continue;
    // Unsigned 32-bit subtraction is the increase across one wrap.
    s.processed += static_cast<std::uint32_t>(c.processed - was->processed);
    s.dropped += static_cast<std::uint32_t>(c.dropped - was->dropped);
    s.time_squeeze += static_cast<std::uint32_t>(c.time_squeeze - was->time_squeeze);
  }
  s.cpus = static_cast<int>(now.size());
  return s;
}

Families softnet_families(const SoftnetSample& s) {
  Families out;
  counter("mcbacklog_softnet_processed_total",
          "Packets the CPUs took off their receive backlogs, all CPUs (/proc/net/softnet_stat).")
      .add(static_cast<double>(s.processed))
      .into(out);
  counter("mcbacklog_softnet_dropped_total",
          "Packets dropped because a CPU's receive backlog was full (net.core.netdev_max_backlog), "
          "all CPUs (/proc/net/softnet_stat).")
      .add(static_cast<double>(s.dropped))
      .into(out);
  counter("mcbacklog_softnet_times_squeezed_total",
          "Times a CPU's receive processing ran out of its budget with packets left "
          "(net.core.netdev_budget), all CPUs (/proc/net/softnet_stat).")
      .add(static_cast<double>(s.time_squeeze))
      .into(out);
  return out;
}

Result<SoftnetSample> SoftnetCollector::read() {
  auto text = file_.read();
  if (!text) return text.error();
  auto parsed = parse_softnet_stat(*text);
  if (!parsed) return fail(file_.path() + ": " + parsed.error().message);
  totals_ = totals_ ? advance_softnet(*totals_, last_, *parsed) : sum_softnet(*parsed);
  last_ = std::move(*parsed);
  return *totals_;
}

}  // namespace mcb
