#pragma once
// App: the daemon's wiring. One io_context on one thread runs the scheduler (collectors), the
// HTTP server and the signal handlers: SIGHUP reloads the configuration and the web configuration
// (a bad file is logged and the running ones kept), SIGINT and SIGTERM stop everything so run()
// returns 0. The service manager hears of each step (ready after the first sample, reloading,
// stopping) and gets watchdog pings from the loop. Owned by main; loop thread only; not
// thread-safe. (The HTTP server checks passwords on a thread of its own; nothing else leaves the
// loop.)

#include <memory>
#include <optional>
#include <vector>

#include <prometheus/gauge.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "collectors/discovery.hpp"
#include "collectors/table.hpp"
#include "config/config.hpp"
#include "daemon/alerts/evaluator.hpp"
#include "daemon/alerts/rules.hpp"
#include "daemon/flags.hpp"
#include "daemon/http/exposition.hpp"
#include "daemon/http/security.hpp"
#include "daemon/http/server.hpp"
#include "daemon/process_metrics.hpp"
#include "daemon/scheduler.hpp"
#include "daemon/service_notifier.hpp"

namespace mcb {

// The configuration the flags select: --config.file, else the default file if it exists, else
// the built-in defaults; then the flag overrides (--web.listen-address, --web.config.file,
// --log.level, --log.format).
Result<Config> load_configuration(const Flags& flags);

// The files a configuration names beyond its own text, checked alike by --check-config, the start
// and a reload, so that a configuration that --check-config refuses is refused by the daemon too.
// Errors: `paths.procfs` or `paths.sysfs` that is not a directory (every collector reading it would
// fail), a target's TLS file that does not load (every connection would fail with it), a network
// namespace file (a target's `netns`, `discover.only_netns`) that is there and is not a network
// namespace (a FIFO, a directory, /etc/hosts). Warnings: a namespace that is not there or cannot
// be entered now (a pod's may come later, and the daemon waits for it). Each message begins with
// where the file is named ("FILE:LINE:COL: targets[0].tls.ca_file: ..."), one per line.
struct NamedFilesCheck {
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
};
NamedFilesCheck check_named_files(const Config& config);

// check_named_files and load_http_security(config.web.config_file) together, at the start, under
// --check-config and at a reload: the web configuration, or the errors of both checks, one per
// line, so that one run shows everything there is to fix. `warnings` gets check_named_files'.
Result<std::shared_ptr<const HttpSecurity>> check_files_and_web(const Config& config,
                                                                std::vector<std::string>& warnings);

class App {
 public:
  // `security`: from load_http_security(config.web.config_file).
  App(Flags flags, Config config, std::shared_ptr<const HttpSecurity> security);

  // Binds HTTP, starts sampling and runs the loop until SIGINT or SIGTERM. Returns the exit code:
  // 0 after a stop signal, 1 when the listen address cannot be bound.
  int run();

 private:
  void start_sampling();
  // With discover.enabled: scans now and every discover.interval. A reload keeps the targets
  // found and their times (a crashed one still pages through its grace period).
  void start_discovery();
  // Scans; when the discovered targets changed, restarts sampling with them. `restart`: false
  // before sampling has started.
  void discover(bool restart);
  void on_cycle();
  void reload();
  void log_security() const;
  void wait_for_signal();
  HttpContent http_content();
  std::string status_line() const;

  Flags flags_;
  Config config_;
  std::shared_ptr<const HttpSecurity> security_;
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  ServiceNotifier notifier_;
  Exposition exposition_;
  std::shared_ptr<ProcessMetrics> process_;
  std::shared_ptr<Evaluator> evaluator_;  // outlives reloads: alert states and counter history
  CollectorSet collectors_;
  // With discover.enabled; the targets sampled are config_.targets and discovered_'s.
  std::unique_ptr<Discoverer> discoverer_;
  std::unique_ptr<DiscoveredTargets> discovered_;
  std::unique_ptr<PeriodicTimer> discover_timer_;
  prometheus::Gauge* discovered_gauge_ = nullptr;  // registered when discovery first starts
  prometheus::Gauge* discovery_problems_gauge_ = nullptr;
  std::size_t discovered_unfit_ = 0;  // discovered targets left out for descriptors, last said
  std::shared_ptr<Scheduler> scheduler_;
  // Sources of the collectors just started, swapped in when their first cycle ends.
  std::optional<std::vector<std::shared_ptr<const prometheus::Collectable>>> pending_sources_;
  std::unique_ptr<HttpServer> server_;
  bool ready_ = false;
};

}  // namespace mcb
