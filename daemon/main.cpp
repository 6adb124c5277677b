// mcbacklogd entry point: flags, configuration, then the App's event loop.

#include <cstdio>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "collectors/memcached_client.hpp"
#include "collectors/netns.hpp"
#include "daemon/app.hpp"
#include "daemon/diagnose.hpp"
#include "daemon/flags.hpp"
#include "daemon/logging.hpp"
#include "daemon/process_limits.hpp"
#include "daemon/version.hpp"

namespace {

// What --check-config finds beyond the file's text, for each target: a TLS file that does not
// load is an error (every connection would fail with it); a network namespace that cannot be
// entered now is a warning (a pod's may come later, and the daemon waits for it). Each message
// begins with where the file or namespace is named (file, line, column and key). Prints each to
// stderr; returns the number of errors.
int check_targets(const mcb::Config& config) {
  int errors = 0;
  for (const mcb::TargetConfig& target : config.targets) {
    if (target.tls) {
      const mcb::Transport transport = mcb::Transport::of(target);
      const std::string& e = transport.tls_error;
      if (!e.empty()) {
        // A file's error begins with where it is named; the system's CAs have no such place.
        const bool located = e.starts_with(config.source + ":");
        std::fprintf(stderr, "%s%s\n",
                     located ? "" : (config.source + ": target " + target.name + ": ").c_str(),
                     e.c_str());
        ++errors;
      }
    }
    if (target.netns) {
      auto entered = mcb::run_in_netns(*target.netns, "/proc", [] {});
      if (!entered) {
        const std::string where = target.netns_origin.empty()
                                      ? config.source + ": target " + target.name
                                      : target.netns_origin;
        std::fprintf(stderr, "%s: warning: %s\n", where.c_str(), entered.error().message.c_str());
      }
    }
  }
  return errors;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  auto flags = mcb::parse_flags(args);
  if (!flags) {
    std::fprintf(stderr, "mcbacklogd: %s\n", flags.error().message.c_str());
    return 2;
  }
  if (flags->help) {
    std::fputs(mcb::usage().c_str(), stdout);
    return 0;
  }
  if (flags->version) {
    std::printf("mcbacklogd %s (revision %s)\n", mcb::kVersion, mcb::kRevision);
    return 0;
  }
  auto config = mcb::load_configuration(*flags);
  if (!config) {
    std::fprintf(stderr, "%s\n", config.error().message.c_str());
    return 1;
  }
  if (auto prepared = mcb::prepare_process(*config); !prepared) {
    std::fprintf(stderr, "%s\n", prepared.error().message.c_str());
    return 1;
  }
  if (flags->command == "diagnose") return mcb::run_diagnose(*flags, *config);
  auto security = mcb::load_http_security(config->web.config_file, config->web.config_file_origin);
  if (!security) {
    std::fprintf(stderr, "%s\n", security.error().message.c_str());
    return 1;
  }
  if (flags->check_config) {
    if (check_targets(*config) > 0) return 1;
    std::printf("%s: configuration is valid\n", config->source.c_str());
    if (!config->web.config_file.empty()) {
      std::printf("%s: web configuration is valid\n", config->web.config_file.c_str());
    }
    for (const std::string& w : (*security)->warnings) std::fprintf(stderr, "%s\n", w.c_str());
    return 0;
  }
  mcb::setup_logging(config->log.level, config->log.format);
  mcb::App app(std::move(*flags), std::move(*config), std::move(*security));
  return app.run();
}
