#include "daemon/app.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <tuple>

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include "collectors/memcached_client.hpp"
#include "collectors/netns.hpp"
#include "common/files.hpp"
#include "common/text.hpp"
#include "daemon/alerts/runbooks.hpp"
#include "daemon/logging.hpp"
#include "daemon/process_limits.hpp"
#include "daemon/version.hpp"

namespace mcb {

Result<Config> load_configuration(const Flags& flags) {
  Result<Config> loaded = default_config();
  if (flags.config_file) {
    loaded = load_config(*flags.config_file, alert_schemas());
  } else {
    struct stat st {};
    const std::string path(kDefaultConfigFile);
    if (::stat(path.c_str(), &st) == 0) loaded = load_config(path, alert_schemas());
  }
  if (!loaded) return loaded;
  Config& c = *loaded;
  // parse_flags checked it.
  if (flags.listen_address) c.web.listen_address = *flags.listen_address;
  if (flags.web_config_file) {
    c.web.config_file = *flags.web_config_file;
    c.web.config_file_origin.clear();
  }
  if (flags.log_level) c.log.level = *flags.log_level;
  if (flags.log_format) c.log.format = *flags.log_format;
  return loaded;
}

namespace {

// A network namespace file named at `where`: an error when it is there and is not a network
// namespace, a warning when it is not there or cannot be opened now, or, for one the daemon enters
// (a target's; discovery only compares inodes), cannot be entered now.
void check_netns(const NetnsConfig& netns, const std::string& procfs, const std::string& where,
                 bool entered, NamedFilesCheck& check) {
  const std::string file = netns_file(netns, procfs);
  if (auto opened = open_network_namespace(file, netns.pid); !opened) {
    const std::string why =
        "network namespace " + escape_untrusted(file, 4096) + ": " + opened.error().message;
    if (is_not_network_namespace(file)) {
      check.errors.push_back(where + ": " + why);
    } else {
      check.warnings.push_back(where + ": warning: " + why);
    }
  } else if (auto ran = entered ? run_in_netns(netns, procfs, [] {}) : ok_status(); !ran) {
    check.warnings.push_back(where + ": warning: " + ran.error().message);
  }
}

}  // namespace

NamedFilesCheck check_named_files(const Config& config) {
  NamedFilesCheck check;
  for (const auto& [dir, origin, key] :
       {std::tuple{&config.paths.procfs, &config.paths.procfs_origin, "paths.procfs"},
        std::tuple{&config.paths.sysfs, &config.paths.sysfs_origin, "paths.sysfs"}}) {
    struct stat st {};
    const std::string where = (origin->empty() ? config.source + ": " + key : *origin) + ": " +
                              escape_untrusted(*dir, 4096);
    if (::stat(dir->c_str(), &st) != 0) {
      check.errors.push_back(where + ": " + std::strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
      check.errors.push_back(where + ": is " + std::string(file_kind(st.st_mode)) +
                             ", not a directory");
    }
  }
  const auto target_origin = [&](const TargetConfig& target) {
    return config.source + ": target " + target.name;
  };
  for (const TargetConfig& target : config.targets) {
    if (target.tls) {
      // A file's error begins with where it is named; the system's CAs have no such place.
      for (const std::string& e : Transport::of(target).tls_errors) {
        check.errors.push_back(
            e.starts_with(config.source + ":") ? e : target_origin(target) + ": " + e);
      }
    }
    if (target.netns) {
      check_netns(*target.netns, config.paths.procfs,
                  target.netns_origin.empty() ? target_origin(target) : target.netns_origin,
                  /*entered=*/true, check);
    }
  }
  const DiscoverConfig& d = config.discover;
  for (std::size_t i = 0; i < d.only_netns.size(); ++i) {
    check_netns(NetnsConfig{d.only_netns[i], 0}, config.paths.procfs,
                i < d.only_netns_origins.size() ? d.only_netns_origins[i]
                                                : config.source + ": discover.only_netns",
                /*entered=*/false, check);
  }
  return check;
}

Result<std::shared_ptr<const HttpSecurity>> check_files_and_web(
    const Config& config, std::vector<std::string>& warnings) {
  NamedFilesCheck named = check_named_files(config);
  warnings = std::move(named.warnings);
  auto security = load_http_security(config.web.config_file, config.web.config_file_origin);
  if (!security) named.errors.push_back(security.error().message);
  if (named.errors.empty()) return security;
  std::string errors;
  for (const std::string& e : named.errors) errors += (errors.empty() ? "" : "\n") + e;
  return fail(errors);
}

App::App(Flags flags, Config config, std::shared_ptr<const HttpSecurity> security)
    : flags_(std::move(flags)),
      config_(std::move(config)),
      security_(std::move(security)),
      signals_(io_, SIGINT, SIGTERM, SIGHUP),
      notifier_(io_),
      process_(std::make_shared<ProcessMetrics>()),
      evaluator_(std::make_shared<Evaluator>(config_.thresholds)) {
  prometheus::BuildGauge()
      .Name("mcbacklog_build_info")
      .Help("A metric with a constant '1' value labeled by the version and revision of mcbacklogd.")
      .Register(exposition_.registry())
      .Add({{"version", kVersion}, {"revision", kRevision}})
      .Set(1);
  exposition_.on_render([this] { process_->refresh(); });
}

HttpContent App::http_content() {
  HttpContent c;
  c.metrics_text = [this]() -> const std::string& { return exposition_.text(); };
  c.metrics_gzip = [this]() -> const std::string& { return exposition_.gzip(); };
  c.ready = [this] { return ready_; };
  c.alerts_json = [this]() -> const std::string& { return evaluator_->json(); };
  c.runbook = [this](std::string_view path) -> std::optional<std::string> {
    const RunbookContext context{"mcbacklogd " + std::string(kVersion) + ", " + status_line(),
                                 std::chrono::system_clock::now()};
    if (path.empty()) return runbook_index_html(evaluator_->statuses(), context);
    return runbook_html(path, evaluator_->statuses(), *evaluator_, context);
  };
  c.target_metrics = [this](std::string_view target) -> std::optional<std::string> {
    auto families =
        collectors_.memcached ? collectors_.memcached->target_families(target) : std::nullopt;
    if (!families) return std::nullopt;
    return render_families(std::move(*families));
  };
  c.version = std::string(kVersion) + " (revision " + kRevision + ")";
  return c;
}

int App::run() {
  server_ = std::make_unique<HttpServer>(
      io_, [content = http_content()](const HttpRequest& req) { return handle_http(req, content); },
      HttpLimits{}, security_);
  auto bound = server_->listen(*parse_listen_address(config_.web.listen_address));
  if (!bound) {
    spdlog::error("{}", bound.error().message);
    return 1;
  }
  for (const std::string& address : *bound) {
    spdlog::info("HTTP server listening on {}", address);
  }
  log_security();
  spdlog::info("mcbacklogd {} (revision {}) starting with configuration from {}", kVersion,
               kRevision, config_.source);
  start_discovery();
  start_sampling();
  wait_for_signal();
  notifier_.start_watchdog();
  io_.run();
  spdlog::info("mcbacklogd stopped");
  return 0;
}

void App::start_discovery() {
  discover_timer_.reset();
  discoverer_.reset();
  if (!config_.discover.enabled) {
    discovered_.reset();
    if (discovered_gauge_ != nullptr) discovered_gauge_->Set(0);
    return;
  }
  if (discovered_gauge_ == nullptr) {
    discovered_gauge_ =
        &prometheus::BuildGauge()
             .Name("mcbacklog_discovered_targets")
             .Help(
                 "Discovered targets being sampled, those in their grace period included (not "
                 "those left out for the descriptor limit).")
             .Register(exposition_.registry())
             .Add({});
    discovery_problems_gauge_ =
        &prometheus::BuildGauge()
             .Name("mcbacklog_discovery_problems")
             .Help(
                 "Processes and namespaces the last discovery scan could not read (a missing "
                 "privilege, a process that ended meanwhile); the log says which.")
             .Register(exposition_.registry())
             .Add({});
  }
  discoverer_ = std::make_unique<Discoverer>(config_.discover, config_.paths.procfs);
  if (discovered_) {
    discovered_->set_grace(config_.discover.grace);
  } else {
    discovered_ = std::make_unique<DiscoveredTargets>(config_.discover.grace);
  }
  discover(false);
  discover_timer_ =
      std::make_unique<PeriodicTimer>(io_, config_.discover.interval, [this] { discover(true); });
  discover_timer_->start(config_.discover.interval);
}

void App::discover(bool restart) {
  std::vector<std::string> problems;
  const Configured configured = discoverer_->configured(config_.targets);
  auto found = discoverer_->targets(configured, problems);
  for (const std::string& p : problems) spdlog::warn("discovery: {}", p);
  const auto changes =
      discovered_->update(std::move(found), LoopClock::now(), configured.addresses);
  for (const std::string& c : changes) spdlog::info("discovery: {}", c);
  discovery_problems_gauge_->Set(static_cast<double>(discoverer_->problem_count()));
  if (changes.empty() || !restart) return;
  scheduler_->stop();
  start_sampling();
}

void App::start_sampling() {
  Config sampled = config_;
  if (discovered_) {
    // Those that fit in the descriptor limit beside the configured ones, by name; none under a
    // configured target's name (one in its grace period when a reload brought that name).
    auto found = discovered_->targets();
    std::erase_if(found, [this](const TargetConfig& d) {
      return std::any_of(config_.targets.begin(), config_.targets.end(),
                         [&d](const TargetConfig& t) { return target_label(t) == d.name; });
    });
    const std::size_t fit = std::min(found.size(), discovered_targets_that_fit(config_));
    if (fit < found.size() && found.size() - fit != discovered_unfit_) {
      spdlog::warn(
          "discovery: {} targets found, {} fit in the descriptor limit beside the configured "
          "ones; the rest are not watched: raise LimitNOFILE= in the systemd unit or ulimit -n",
          found.size(), fit);
    }
    discovered_unfit_ = found.size() - fit;
    for (std::size_t i = 0; i < fit; ++i) sampled.targets.push_back(std::move(found[i]));
    discovered_gauge_->Set(static_cast<double>(fit));
  }
  collectors_ = make_collectors(sampled, io_);
  auto all = collectors_.all();
  std::string names;
  for (const auto& c : all) names += (names.empty() ? "" : ", ") + c->described();
  spdlog::info("sampling every {} with collectors: {}", format_duration(config_.interval),
               names.empty() ? "none" : names);
  scheduler_ = std::make_shared<Scheduler>(io_, config_.interval, all, [this] { on_cycle(); });
  std::vector<std::shared_ptr<const prometheus::Collectable>> sources(all.begin(), all.end());
  sources.push_back(scheduler_);
  sources.push_back(process_);
  sources.push_back(evaluator_);
  // Served from the end of the first cycle on: until then, after a reload, /metrics keeps the
  // last snapshots of the collectors being replaced rather than the empty ones of the new.
  pending_sources_ = std::move(sources);
  scheduler_->start();
}

void App::on_cycle() {
  if (pending_sources_) {
    exposition_.set_sources(std::move(*pending_sources_));
    pending_sources_.reset();
  }
  const std::vector<Observation> observations =
      observe(collectors_, LoopClock::now(), std::chrono::system_clock::now());
  evaluator_->evaluate(observations);
  watch_memcached_listeners(collectors_, observations);
  // Something connection-related is wrong: count the connections every sample while it lasts.
  // The accept queues are sampled closely too, so a burst between runs shows in their peak.
  if (evaluator_->walk_reason()) {
    if (collectors_.sockdiag) {
      collectors_.sockdiag->walk_next();
      collectors_.sockdiag->sample_closely();
    }
    for (const NamespaceCollectors& n : collectors_.namespaces) {
      if (n.sockdiag) {
        n.sockdiag->walk_next();
        n.sockdiag->sample_closely();
      }
    }
  }
  exposition_.invalidate();
  if (!ready_) {
    ready_ = true;
    spdlog::info("first sample complete; ready");
    notifier_.ready(status_line());
  }
}

std::string App::status_line() const {
  return "sampling every " + format_duration(config_.interval) + " with the configuration from " +
         config_.source;
}

void App::log_security() const {
  spdlog::info("HTTP: {} ({})", security_->summary,
               security_->source.empty() ? "no web configuration file" : security_->source);
  for (const std::string& w : security_->warnings) spdlog::warn("{}", w);
  if (security_->auth && !security_->tls) {
    spdlog::warn("basic auth without TLS: passwords cross the network in clear text");
  }
}

void App::reload() {
  const ReleaseFreeMemory release;  // what parsing the files took
  notifier_.reloading();
  // Both files, or neither: a good configuration is not applied beside a bad web configuration.
  auto loaded = load_configuration(flags_);
  if (auto fits = loaded ? check_descriptor_budget(*loaded) : ok_status(); !fits) {
    loaded = fits.error();
  }
  std::vector<std::string> waiting;  // namespaces not there yet: the collectors say so themselves
  auto security = loaded ? check_files_and_web(*loaded, waiting)
                         : Result<std::shared_ptr<const HttpSecurity>>(loaded.error());
  if (!security) {
    // One event per error: a text log holds one line per event.
    std::string_view errors = security.error().message;
    for (std::string_view line; take_line(errors, line);) {
      spdlog::error("reload failed, keeping the running configuration: {}", line);
    }
    // Still serving; before the first sample on_cycle() reports ready instead.
    if (ready_) notifier_.ready("reload failed, see the log; " + status_line());
    return;
  }
  security_ = *security;
  server_->set_security(security_);
  log_security();
  if (loaded->web.listen_address != config_.web.listen_address) {
    spdlog::warn("web.listen_address changed to {}; it takes effect at the next restart",
                 loaded->web.listen_address);
    loaded->web.listen_address = config_.web.listen_address;
  }
  scheduler_->stop();
  config_ = std::move(*loaded);
  evaluator_->set_thresholds(config_.thresholds);
  setup_logging(config_.log.level, config_.log.format);
  spdlog::info("configuration reloaded from {}", config_.source);
  start_discovery();
  start_sampling();
  if (ready_) notifier_.ready(status_line());
}

void App::wait_for_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    if (signo == SIGHUP) {
      reload();
      wait_for_signal();
      return;
    }
    spdlog::info("received {}, stopping", signo == SIGINT ? "SIGINT" : "SIGTERM");
    notifier_.stopping();
    server_->stop();
    scheduler_->stop();
    // Work still pending (a collector waiting on a silent peer) must not delay the exit.
    io_.stop();
  });
}

}  // namespace mcb
