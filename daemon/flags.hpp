#pragma once
// Command-line flags in the Prometheus style (--config.file=F or --config.file F). Pure.

#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "config/duration.hpp"

namespace mcb {

struct Flags {
  std::string command;  // "" runs the daemon; "diagnose" prints the one-shot report
  std::optional<std::string> config_file;
  std::optional<std::string> listen_address;
  std::optional<std::string> web_config_file;
  std::optional<std::string> log_level;
  std::optional<std::string> log_format;
  Duration diagnose_wait = std::chrono::seconds(3);  // between diagnose's two samples
  bool from_daemon = false;  // diagnose: read a running daemon's /alerts instead of sampling
  bool check_config = false;
  bool version = false;
  bool help = false;
};

Result<Flags> parse_flags(const std::vector<std::string>& args);

std::string usage();

}  // namespace mcb
