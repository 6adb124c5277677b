#include "daemon/diagnose.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>

#include "collectors/table.hpp"
#include "daemon/scheduler.hpp"

namespace mcb {
namespace {

constexpr const char* kReset = "\033[0m";
constexpr const char* kBold = "\033[1m";

const char* level_color(Level l) {
  switch (l) {
    case Level::kOk:
      return "\033[32m";  // green
    case Level::kWarning:
      return "\033[33m";  // yellow
    case Level::kCritical:
      return "\033[31m";  // red
  }
  return "";
}

// The state in capitals, padded to `width` so verdicts line up.
std::string state_word(Level l, bool color, int width = 8) {
  std::string word(level_name(l));
  for (char& c : word) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::string padded = fmt::format("{:<{}}", word, width);
  return color ? std::string(level_color(l)) + kBold + padded + kReset : padded;
}

std::string num(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.0f}", v);
  return fmt::format("{:.3g}", v);
}

std::string opt(const std::optional<double>& v, const char* missing = "unknown") {
  return v ? num(*v) : missing;
}

std::string bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", b) : fmt::format("{:.1f} {}", b, units[u]);
}

std::string seconds_text(double s) {
  if (s < 120) return fmt::format("{:.1f} s", s);
  if (s < 7200) return fmt::format("{:.0f} min", s / 60);
  if (s < 172800) return fmt::format("{:.1f} h", s / 3600);
  return fmt::format("{:.1f} days", s / 86400);
}

void line(std::string& out, const std::string& key, const std::string& value) {
  out += fmt::format("  {:<34} {}\n", key, value);
}

std::string subject_of(const AlertStatus& a) {
  std::string s;
  for (const auto& [name, value] : a.labels) s += (s.empty() ? "" : " ") + value;
  return s;
}

void render_signals(std::string& out, const Signals& s) {
  out += "Signals\n";
  for (const TargetSignals& t : s.targets) {
    std::string head = "memcached " + t.name;
    if (t.address != t.name) head += " (" + t.address + ")";
    if (!t.up) {
      line(out, head, "stats failed: " + t.stats_error);
    } else {
      line(out, head,
           fmt::format("up, version {}, {} worker threads, up for {}", t.version, opt(t.threads),
                       t.uptime ? seconds_text(*t.uptime) : "unknown"));
      std::string conns = opt(t.curr_connections) + " of -c " + opt(t.max_connections);
      if (t.reserved_fds && t.max_connections) {
        conns += fmt::format(" (effective limit {}: {} descriptors reserved)",
                             num(*t.max_connections - *t.reserved_fds), num(*t.reserved_fds));
      }
      line(out, "  connections", conns);
      line(out, "  accepting new connections",
           !t.accepting_conns ? "unknown" : (*t.accepting_conns > 0 ? "yes" : "NO"));
      line(out, "  listen backlog (-b)", opt(t.tcp_backlog));
      if (t.maxconns_fast) {
        line(out, "  at the limit",
             *t.maxconns_fast ? "refuses with \"ERROR Too many open connections\" (maxconns_fast)"
                              : "stops accepting (-o no_maxconns_fast)");
      }
      line(out, "  CPU per worker thread", opt(t.cpu_utilization, "not yet measured"));
      if (t.bytes && t.limit_maxbytes) {
        line(out, "  memory", bytes(*t.bytes) + " of " + bytes(*t.limit_maxbytes));
      }
    }
    if (!t.probe_enabled) {
      line(out, "  fresh-connection probe", "off");
    } else if (!t.probe_success) {
      line(out, "  fresh-connection probe", "no result yet");
    } else if (*t.probe_success) {
      line(out, "  fresh-connection probe",
           fmt::format("answered in {:.2f} ms", t.probe_seconds.value_or(0) * 1000));
    } else {
      line(out, "  fresh-connection probe",
           fmt::format("FAILED after {:.2f} s: {}", t.probe_seconds.value_or(0), t.probe_error));
    }
  }
  line(out, "kernel net.core.somaxconn", opt(s.host.somaxconn));
  line(out, "kernel listen overflows / drops",
       opt(s.host.listen_overflows) + " / " + opt(s.host.listen_drops) +
           " since the network namespace started");
  if (s.sockets_known) {
    for (const ListenerSignals& l : s.listeners) {
      line(out, fmt::format("listener {}:{}", l.address, l.port),
           (l.queue_max == 0
                ? fmt::format("{} waiting, max queue 0: not accepting", num(l.queue_length))
                : fmt::format("{} waiting of a max {} (peak {})", num(l.queue_length),
                              num(l.queue_max), num(l.queue_peak))) +
               (l.drops ? fmt::format("; {} connections dropped since it opened", num(*l.drops))
                        : ""));
    }
    for (const PortSignals& p : s.ports) {
      std::string top;
      for (const ClientCount& c : p.top_clients) {
        top += fmt::format("{}{} ({})", top.empty() ? "" : ", ", c.client, num(c.connections));
      }
      line(out, fmt::format("port {}", p.port),
           fmt::format("{} established from {} clients{}; {} with unread replies",
                       num(p.established), num(p.clients), top.empty() ? "" : ", most from " + top,
                       num(p.send_queue_blocked)));
    }
  } else {
    line(out, "listeners and connections", "unknown (sockdiag collector off or failing)");
  }
  for (const NicSignals& n : s.nics) {
    auto pct = [](const std::optional<double>& v) {
      return v ? fmt::format("{:.0f}%", *v * 100) : std::string("?");
    };
    line(out, "NIC " + n.device,
         fmt::format("receive {}, transmit {} of link speed; {} drops", pct(n.receive_utilization),
                     pct(n.transmit_utilization), num(n.receive_drops + n.transmit_drops)));
  }
  out += "\n";
}

// Counters accumulated since memcached started: saturation that happened before this run.
void render_history(std::string& out, const Signals& s) {
  std::string notes;
  for (const TargetSignals& t : s.targets) {
    if (t.rejected_connections && *t.rejected_connections > 0) {
      notes += fmt::format("  {}: {} connections rejected at the limit since memcached started\n",
                           t.name, num(*t.rejected_connections));
    }
    if (t.listen_disabled_num && *t.listen_disabled_num > 0) {
      notes += fmt::format(
          "  {}: memcached stopped accepting {} times, for {} in total, since it started\n", t.name,
          num(*t.listen_disabled_num),
          seconds_text(t.time_in_listen_disabled_us.value_or(0) / 1e6));
    }
    if (t.evictions && *t.evictions > 0) {
      notes += fmt::format("  {}: {} items evicted since memcached started\n", t.name,
                           num(*t.evictions));
    }
  }
  if (s.host.listen_overflows && *s.host.listen_overflows > 0) {
    notes += fmt::format("  kernel: {} listen overflows since the network namespace started\n",
                         num(*s.host.listen_overflows));
  }
  if (notes.empty()) return;
  out += "Earlier saturation (counters since start, not part of the result)\n" + notes + "\n";
}

}  // namespace

int exit_code(const std::vector<AlertStatus>& statuses) {
  Level worst = Level::kOk;
  for (const AlertStatus& a : statuses) worst = mcb::worse(worst, a.state);
  return static_cast<int>(worst);
}

std::string render_verdicts(const std::vector<AlertStatus>& statuses, bool color) {
  std::string out = "Verdicts\n";
  // Firing alerts first, worst first; then the rest in catalogue order.
  std::vector<const AlertStatus*> order;
  for (Level l : {Level::kCritical, Level::kWarning, Level::kOk}) {
    for (const AlertStatus& a : statuses) {
      if (a.state == l) order.push_back(&a);
    }
  }
  for (const AlertStatus* a : order) {
    const std::string subject = subject_of(*a);
    out += "  " + state_word(a->state, color) + " " + (color ? kBold : "") + a->name +
           (color ? kReset : "") + (subject.empty() ? "" : " [" + subject + "]") + "\n";
    const std::string evidence = a->verdict ? a->verdict->evidence : "no data";
    if (a->state != Level::kOk) {
      out += "           cause:    " + a->cause + "\n";
      out += "           evidence: " + evidence + "\n";
      out += "           fix:      " + a->remediation + "\n";
    } else {
      out += "           " + evidence + "\n";
    }
  }
  const int code = exit_code(statuses);
  out += fmt::format("\nResult: {} (exit code {})\n",
                     state_word(static_cast<Level>(code), color, 0), code);
  return out;
}

std::string render_report(const Signals& signals, const std::vector<AlertStatus>& statuses,
                          bool color) {
  std::string out;
  render_signals(out, signals);
  render_history(out, signals);
  out += render_verdicts(statuses, color);
  return out;
}

Result<std::vector<AlertStatus>> parse_alerts_json(const std::string& json) {
  namespace pt = boost::property_tree;
  pt::ptree tree;
  try {
    std::istringstream in(json);
    pt::read_json(in, tree);
    std::vector<AlertStatus> out;
    for (const auto& [unused, a] : tree.get_child("alerts")) {
      AlertStatus s;
      s.name = a.get<std::string>("name");
      const std::string state = a.get<std::string>("state");
      s.state = state == "critical" ? Level::kCritical
                                    : (state == "warning" ? Level::kWarning : Level::kOk);
      for (const auto& [name, value] : a.get_child("labels")) {
        s.labels.emplace_back(name, value.data());
      }
      s.cause = a.get<std::string>("cause");
      s.remediation = a.get<std::string>("remediation");
      Verdict v;
      v.level = s.state;
      v.evidence = a.get<std::string>("evidence");
      v.value = a.get<double>("value", 0);
      v.threshold = a.get<double>("threshold", 0);
      s.verdict = v;
      out.push_back(std::move(s));
    }
    return out;
  } catch (const pt::ptree_error& e) {
    return fail(std::string("not the /alerts format: ") + e.what());
  }
}

namespace {

bool use_color() { return ::isatty(STDOUT_FILENO) == 1 && std::getenv("NO_COLOR") == nullptr; }

// GET /alerts from the daemon at `listen_address` (its wildcard means this host).
Result<std::string> fetch_alerts(const std::string& listen_address) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  auto where = parse_listen_address(listen_address);
  if (!where) return where.error();
  std::string host = where->host;
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(5));
    stream.connect(resolver.resolve(host, std::to_string(where->port)));
    http::request<http::empty_body> req{http::verb::get, "/alerts", 11};
    req.set(http::field::host, host);
    req.set(http::field::user_agent, "mcbacklogd-diagnose");
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::uint64_t{16} * 1024 * 1024);
    http::read(stream, buffer, parser);
    if (parser.get().result() != http::status::ok) {
      return fail(fmt::format("GET /alerts answered {}", parser.get().result_int()));
    }
    return parser.get().body();
  } catch (const boost::system::system_error& e) {
    return fail(
        fmt::format("no daemon answered at {}:{}: {}", host, where->port, e.code().message()));
  }
}

int run_from_daemon(const Config& config) {
  auto body = fetch_alerts(config.web.listen_address);
  if (!body) {
    std::fprintf(stderr, "mcbacklogd diagnose: %s\n", body.error().message.c_str());
    if (!config.web.config_file.empty()) {
      std::fprintf(stderr,
                   "mcbacklogd diagnose: --from-daemon speaks plain HTTP without credentials, "
                   "and %s may ask for TLS or basic auth: read /alerts with curl instead, or run "
                   "diagnose without --from-daemon\n",
                   config.web.config_file.c_str());
    }
    return 3;
  }
  auto statuses = parse_alerts_json(*body);
  if (!statuses) {
    std::fprintf(stderr, "mcbacklogd diagnose: %s\n", statuses.error().message.c_str());
    return 3;
  }
  std::printf("Alert states of the daemon at %s\n\n%s", config.web.listen_address.c_str(),
              render_verdicts(*statuses, use_color()).c_str());
  return exit_code(*statuses);
}

}  // namespace

int run_diagnose(const Flags& flags, const Config& configured) {
  if (flags.from_daemon) return run_from_daemon(configured);
  Config config = configured;
  // The collectors run once per wait: each run's deadline is half of it, not half of the daemon's
  // interval, which may be far shorter than a loaded memcached needs to answer.
  config.interval = flags.diagnose_wait;
  // Probes start with the first sample and again two thirds of the wait later, so the first
  // probe has ended (its deadline is its interval) by the second sample even when memcached
  // never answers it. Two samples are the only history, so nothing waits `for`.
  for (TargetConfig& t : config.targets) {
    if (t.probe_interval.count() > 0) t.probe_interval = flags.diagnose_wait * 2 / 3;
  }
  Evaluator::Thresholds thresholds = config.thresholds;
  for (auto& [name, th] : thresholds) th.for_ = Duration{0};
  if (!flags.log_level) spdlog::set_level(spdlog::level::off);  // the report says it all

  boost::asio::io_context io;
  const CollectorSet collectors = make_collectors(config, io);
  Evaluator evaluator(thresholds);
  Signals last;
  int samples = 0;
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  std::fprintf(stderr, "mcbacklogd diagnose: sampling twice, %s apart%s",
               format_duration(flags.diagnose_wait).c_str(), tty ? "" : "\n");
  std::shared_ptr<Scheduler> scheduler;
  scheduler = std::make_shared<Scheduler>(io, flags.diagnose_wait, collectors.all(), [&] {
    ++samples;
    last = collect_signals(collectors, config, std::chrono::steady_clock::now(),
                           std::chrono::system_clock::now());
    evaluator.evaluate(last);
    std::fprintf(stderr, "%ssample %d of 2 taken%s", tty ? "\r\033[Kmcbacklogd diagnose: " : "",
                 samples, tty && samples < 2 ? "" : "\n");
    if (samples == 2) {
      scheduler->stop();
      io.stop();
    }
  });
  scheduler->start();
  io.run();
  std::printf("%s", render_report(last, evaluator.statuses(), use_color()).c_str());
  return exit_code(evaluator.statuses());
}

}  // namespace mcb
