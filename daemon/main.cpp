// mcbacklogd entry point: flags, configuration, then the App's event loop.

#include <cstdio>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "daemon/app.hpp"
#include "daemon/diagnose.hpp"
#include "daemon/flags.hpp"
#include "daemon/logging.hpp"
#include "daemon/process_limits.hpp"
#include "daemon/version.hpp"

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
  std::vector<std::string> warnings;
  auto security = mcb::check_files_and_web(*config, warnings);
  if (!security) {
    std::fprintf(stderr, "%s\n", security.error().message.c_str());
    return 1;
  }
  if (flags->check_config) {
    for (const std::string& w : warnings) std::fprintf(stderr, "%s\n", w.c_str());
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
