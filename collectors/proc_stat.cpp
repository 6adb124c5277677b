#include "collectors/proc_stat.hpp"

#include <charconv>
#include <vector>

#include "collectors/procfs.hpp"

namespace mcb {
namespace {

template <class T>
bool number(std::string_view s, T& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
}

// The line of `text` that starts with `prefix` (at the start of the text or of a line), without
// its newline; npos-empty when there is none.
std::string_view line_starting(std::string_view text, std::string_view prefix, std::size_t& at) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = std::min(text.find('\n', pos), text.size());
    const std::string_view line = text.substr(pos, end - pos);
    if (line.substr(0, prefix.size()) == prefix) {
      at = pos;
      return line;
    }
    pos = end + 1;
  }
  at = std::string_view::npos;
  return {};
}

}  // namespace

Result<ProcessStat> parse_proc_stat(std::string_view text) {
  const auto open = text.find('(');
  const auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return fail("stat: no command name in parentheses");
  }
  std::vector<std::string_view> f;  // f[0] is field 3 (state)
  std::string_view rest = text.substr(close + 1);
  while (!rest.empty()) {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\n')) rest.remove_prefix(1);
    const auto end = rest.find_first_of(" \n");
    if (!rest.empty()) f.push_back(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  }
  // Fields (1-based as in proc(5)): utime 14, stime 15, starttime 22, vsize 23, rss 24.
  if (f.size() < 22) return fail("stat: only " + std::to_string(f.size() + 2) + " fields");
  ProcessStat s;
  s.comm = std::string(text.substr(open + 1, close - open - 1));
  const std::pair<std::size_t, double*> wanted[] = {{14, &s.utime_ticks},
                                                    {15, &s.stime_ticks},
                                                    {22, &s.start_ticks},
                                                    {23, &s.virtual_bytes},
                                                    {24, &s.rss_pages}};
  for (const auto& [field, out] : wanted) {
    if (!number(f[field - 3], *out)) {
      return fail("stat: field " + std::to_string(field) + " is not a number");
    }
  }
  return s;
}

Result<std::uint64_t> parse_schedstat(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  const auto words = split_words(text);
  std::uint64_t values[3] = {};
  if (words.size() != 3) {
    return fail("schedstat: " + std::to_string(words.size()) + " values, expected 3");
  }
  for (std::size_t i = 0; i < 3; ++i) {
    if (!number(words[i], values[i])) {
      return fail("schedstat: value " + std::to_string(i + 1) + " is not an unsigned integer");
    }
  }
  return values[0];
}

Result<double> parse_boot_time(std::string_view text) {
  std::size_t at = 0;
  const std::string_view line = line_starting(text, "btime ", at);
  if (at == std::string_view::npos) return fail("/proc/stat: no btime line");
  double v = 0;
  if (!number(line.substr(6), v)) return fail("/proc/stat: btime is not a number");
  return v;
}

Result<CpuStat> parse_cpu_stat(std::string_view text) {
  std::size_t at = 0;
  const std::string_view line = line_starting(text, "cpu ", at);
  if (at == std::string_view::npos) return fail("/proc/stat: no \"cpu\" line");
  const auto words = split_words(line);
  // cpu user nice system idle [iowait irq softirq [steal [guest [guest_nice]]]]
  if (words.size() < 5) {
    return fail("/proc/stat: the cpu line has " + std::to_string(words.size() - 1) +
                " values, at least 4 expected");
  }
  std::vector<std::uint64_t> v(words.size() - 1);
  for (std::size_t i = 1; i < words.size(); ++i) {
    if (!number(words[i], v[i - 1])) {
      return fail("/proc/stat: cpu value " + std::to_string(i) + " is not an unsigned integer");
    }
  }
  v.resize(std::max<std::size_t>(v.size(), 8));
  CpuStat s;
  s.times = CpuTimes{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
  // Each online CPU has a "cpuN" line after the total.
  std::size_t pos = at;
  while ((pos = text.find("\ncpu", pos)) != std::string_view::npos) {
    pos += 4;
    if (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++s.cpus;
  }
  return s;
}

}  // namespace mcb
