#include "daemon/process_limits.hpp"

#include <algorithm>

#include <malloc.h>
#include <sys/resource.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>

#include "daemon/http/server.hpp"

namespace mcb {

std::size_t descriptors_needed(const Config& config, std::size_t http_sessions) {
  const auto elsewhere = static_cast<std::size_t>(std::count_if(
      config.targets.begin(), config.targets.end(), [](const TargetConfig& t) { return t.netns; }));
  return kFixedDescriptors + http_sessions + kDescriptorsPerTarget * config.targets.size() +
         kDescriptorsPerTargetElsewhere * elsewhere +
         kDescriptorsPerNamespace * config.namespaces().size();
}

Status check_descriptor_budget(const Config& config, std::uint64_t soft_limit,
                               std::uint64_t hard_limit) {
  const std::size_t sessions = HttpLimits{}.max_sessions;
  const std::size_t needed = descriptors_needed(config, sessions);
  if (needed <= soft_limit) return ok_status();
  const auto text = [](std::uint64_t v) {
    return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v);
  };
  return fail(config.source + ": " + std::to_string(config.targets.size()) +
              " targets need up to " + std::to_string(needed) + " file descriptors (" +
              std::to_string(kDescriptorsPerTarget) + " per target, " +
              (config.namespaces().empty()
                   ? std::string()
                   : std::to_string(kDescriptorsPerNamespace) + " per other network namespace, ") +
              std::to_string(sessions) + " kept for HTTP, " + std::to_string(kFixedDescriptors) +
              " for the daemon), but the limit is " + text(soft_limit) + " (hard limit " +
              text(hard_limit) +
              "): raise LimitNOFILE= in the systemd unit or ulimit -n, or watch fewer targets "
              "from this daemon");
}

std::size_t discovered_targets_that_fit(const Config& config) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  const std::size_t needed = descriptors_needed(config, HttpLimits{}.max_sessions);
  if (limit.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
  if (limit.rlim_cur <= needed) return 0;
  return (limit.rlim_cur - needed) / (kDescriptorsPerTarget + kDescriptorsPerDiscoveredTarget);
}

Status check_descriptor_budget(const Config& config) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return fail(std::string("cannot read the descriptor limit: ") + std::strerror(errno));
  }
  return check_descriptor_budget(config, limit.rlim_cur, limit.rlim_max);
}

Status prepare_process(const Config& config) {
  for (const int ignored : {SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM}) std::signal(ignored, SIG_IGN);
  sigset_t handled;
  sigemptyset(&handled);
  for (const int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&handled, s);
  sigprocmask(SIG_UNBLOCK, &handled, nullptr);

  // systemd starts services with a soft limit of 1024 whatever the hard one (select() users need
  // it); this daemon uses epoll and may raise it to the hard limit, as systemd recommends.
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    // A refusal is not fatal: the budget check below says whether what is left is enough.
    (void)::setrlimit(RLIMIT_NOFILE, &raised);
  }
  return check_descriptor_budget(config);
}

ReleaseFreeMemory::~ReleaseFreeMemory() { malloc_trim(0); }

}  // namespace mcb
