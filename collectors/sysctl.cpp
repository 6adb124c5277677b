#include "collectors/sysctl.hpp"

#include <charconv>

#include "collectors/netns.hpp"
#include "collectors/procfs.hpp"
#include "common/families.hpp"
#include "common/text.hpp"

namespace mcb {

Result<std::int64_t> parse_sysctl_value(std::string_view text) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return fail("expected one integer, got " + quote_untrusted(text, 40));
  }
  return v;
}

Families sysctl_families(const SysctlSample& s) {
  Families out;
  auto put = [&out](FamilyBuilder f, const std::optional<std::int64_t>& v) {
    if (v) std::move(f.add(static_cast<double>(*v))).into(out);
  };
  put(gauge("mcbacklog_somaxconn",
            "net.core.somaxconn: the kernel's cap on every listener's accept queue; a larger "
            "memcached -b is silently cut down to it."),
      s.somaxconn);
  put(gauge("mcbacklog_tcp_max_syn_backlog",
            "net.ipv4.tcp_max_syn_backlog: the cap on half-open connections per listener."),
      s.tcp_max_syn_backlog);
  put(gauge("mcbacklog_tcp_syncookies",
            "net.ipv4.tcp_syncookies: 0 off, 1 when a SYN queue overflows, 2 always."),
      s.tcp_syncookies);
  put(gauge("mcbacklog_tcp_abort_on_overflow",
            "net.ipv4.tcp_abort_on_overflow: 1 resets connections that find the accept queue "
            "full, 0 drops them silently so the client retries."),
      s.tcp_abort_on_overflow);
  return out;
}

Result<SysctlSample> SysctlCollector::read() {
  Result<SysctlSample> out = fail("not read");
  if (!netns_) {
    out = read_here();
  } else {
    // /proc/sys/net shows the namespace of the thread that opens it: entered once a read, which
    // is once every `refresh`.
    auto entered = run_in_netns(*netns_, procfs_, [&] { out = read_here(); });
    if (!entered) return entered.error();
  }
  return out;
}

Result<SysctlSample> SysctlCollector::read_here() const {
  SysctlSample s;
  const std::pair<const char*, std::optional<std::int64_t>*> settings[] = {
      {"/sys/net/core/somaxconn", &s.somaxconn},
      {"/sys/net/ipv4/tcp_max_syn_backlog", &s.tcp_max_syn_backlog},
      {"/sys/net/ipv4/tcp_syncookies", &s.tcp_syncookies},
      {"/sys/net/ipv4/tcp_abort_on_overflow", &s.tcp_abort_on_overflow},
  };
  std::size_t found = 0;
  for (const auto& [file, field] : settings) {
    const std::string path = procfs_ + file;
    auto text = read_optional_file(path);
    if (!text) return text.error();
    if (!text->has_value()) continue;  // this kernel lacks the setting
    auto value = parse_sysctl_value(**text);
    if (!value) return fail(escape_untrusted(path, 4096) + ": " + value.error().message);
    *field = *value;
    ++found;
  }
  // Every kernel has some of them: none at all is a procfs that is not one (a wrong
  // paths.procfs, /proc/sys not mounted), and a run that reports nothing must not pass.
  if (found == 0) {
    return fail(
        "none of net.core.somaxconn, net.ipv4.tcp_max_syn_backlog, "
        "net.ipv4.tcp_syncookies, net.ipv4.tcp_abort_on_overflow is under " +
        escape_untrusted(procfs_, 4096) + "/sys/net: is paths.procfs a procfs?");
  }
  return s;
}

}  // namespace mcb
