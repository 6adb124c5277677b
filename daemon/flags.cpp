#include "daemon/flags.hpp"

#include <array>

#include "common/text.hpp"
#include "config/address.hpp"

namespace mcb {

Result<Flags> parse_flags(const std::vector<std::string>& args) {
  Flags f;
  struct Valued {
    std::string_view name;
    std::optional<std::string> Flags::*field;
  };
  static constexpr std::array<Valued, 5> kValued{{
      {"--config.file", &Flags::config_file},
      {"--web.listen-address", &Flags::listen_address},
      {"--web.config.file", &Flags::web_config_file},
      {"--log.level", &Flags::log_level},
      {"--log.format", &Flags::log_format},
  }};
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      f.help = true;
      continue;
    }
    if (a == "--version") {
      f.version = true;
      continue;
    }
    if (a == "--check-config") {
      f.check_config = true;
      continue;
    }
    if (a == "diagnose" && f.command.empty()) {
      f.command = a;
      continue;
    }
    if (a == "--from-daemon") {
      f.from_daemon = true;
      continue;
    }
    if (a.rfind("--wait=", 0) == 0) {
      auto d = parse_duration(a.substr(7));
      if (!d || *d < std::chrono::milliseconds(100) || *d > std::chrono::minutes(1)) {
        return fail("--wait must be a duration from 100ms to 1m, e.g. --wait=3s");
      }
      f.diagnose_wait = *d;
      continue;
    }
    bool matched = false;
    for (const Valued& v : kValued) {
      if (a == v.name) {
        if (i + 1 >= args.size()) return fail(a + " needs a value");
        f.*v.field = args[++i];
        matched = true;
      } else if (a.size() > v.name.size() && a.compare(0, v.name.size(), v.name) == 0 &&
                 a[v.name.size()] == '=') {
        f.*v.field = a.substr(v.name.size() + 1);
        matched = true;
      }
      if (matched) break;
    }
    if (!matched) return fail("unknown argument " + quote_untrusted(a) + " (see --help)");
    // An unset variable in a unit's ARGS would otherwise pass silently: an empty
    // --web.config.file turned off the TLS and basic auth of the configuration's web.config_file.
    for (const Valued& v : kValued) {
      if (f.*v.field && (f.*v.field)->empty()) {
        return fail(std::string(v.name) + " needs a value, not an empty one");
      }
    }
  }
  if (f.log_level && *f.log_level != "debug" && *f.log_level != "info" && *f.log_level != "warn" &&
      *f.log_level != "error") {
    return fail("--log.level must be one of debug, info, warn, error");
  }
  if (f.log_format && *f.log_format != "text" && *f.log_format != "json") {
    return fail("--log.format must be text or json");
  }
  if (f.listen_address) {
    if (auto e = parse_listen_address(*f.listen_address); !e) {
      return fail("--web.listen-address: " + e.error().message);
    }
  }
  if (f.command != "diagnose" && (f.from_daemon || f.diagnose_wait != std::chrono::seconds(3))) {
    return fail("--from-daemon and --wait belong to the diagnose command");
  }
  return f;
}

std::string usage() {
  return R"(usage: mcbacklogd [flags]
       mcbacklogd diagnose [--from-daemon] [--wait=3s] [flags]

Watches memcached's listen backlog (the kernel accept queue), tells which cause is behind a full
one, and serves metrics, alert states and a diagnosis over HTTP.

Commands:
  (none)                     run the daemon
  diagnose                   take two samples, print every signal and each cause's verdict with
                             its evidence and fix; exit 0 ok, 1 warning, 2 critical, 3 unknown
    --wait=DURATION          time between the two samples (default 3s)
    --from-daemon            read the alert states of the daemon running at the configured
                             listen address instead of sampling (it has the history)

Flags:
  --config.file=PATH         YAML configuration (default /etc/mcbacklogd/mcbacklogd.yaml; without
                             it, built-in defaults)
  --web.listen-address=ADDR  HTTP listen address, overrides web.listen_address (default ":9741")
  --web.config.file=PATH     TLS and basic-auth settings in the Prometheus exporter-toolkit
                             format, overrides web.config_file (default: plain HTTP, no auth)
  --log.level=LEVEL          debug, info, warn or error, overrides log.level
  --log.format=FORMAT        text or json, overrides log.format
  --check-config             validate the configuration and the web configuration, print the
                             result and exit
  --version                  print the version and exit
  -h, --help                 print this help and exit

Signals: SIGHUP reloads the configuration and the web configuration (a bad file is logged and
the running ones kept); SIGINT and SIGTERM stop the daemon.
)";
}

}  // namespace mcb
