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
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "collectors/discovery.hpp"
#include "collectors/table.hpp"
#include "common/text.hpp"
#include "config/bit_rate.hpp"
#include "daemon/alerts/alerts_json.hpp"
#include "daemon/alerts/rules.hpp"
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

std::string num(double v) { return format_number(v); }

std::string opt(const std::optional<double>& v, const char* missing = "unknown") {
  return v ? num(*v) : missing;
}

template <class T>
std::optional<double> as_double(const std::optional<T>& v) {
  return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
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

// One signal. Both parts may name what the kernel or a peer named (a NIC, a namespace, an error
// quoting a reply): escaped unless printable, so that nothing steers the terminal.
void line(std::string& out, const std::string& key, const std::string& value) {
  out += fmt::format("  {:<34} {}\n", printable_or_escaped(key), printable_or_escaped(value));
}

// An alert's labels (a target, a NIC, a namespace), escaped unless printable.
std::string subject_of(const AlertStatus& a) {
  std::string s;
  for (const auto& [name, value] : a.labels) s += (s.empty() ? "" : " ") + value;
  return printable_or_escaped(std::move(s));
}

void render_listener(std::string& out, const ListenerSample& l, const std::string& indent) {
  std::string queue = "no listener open (connections left from an earlier one)";
  if (l.listening) {
    queue = l.queue_max == 0
                ? fmt::format("{} waiting, max queue 0: not accepting", num(l.queue_length))
                : fmt::format("{} waiting of a max {} (peak {})", num(l.queue_length),
                              num(l.queue_max), num(l.queue_peak));
    if (l.drops) {
      queue += fmt::format("; {} dropped since it opened",
                           plural(static_cast<double>(*l.drops), "connection"));
    }
  }
  line(out, indent + "listener " + listener_name(l), queue);
  std::string top;
  for (const ClientConnections& c : l.top_clients) {
    top += fmt::format("{}{} ({})", top.empty() ? "" : ", ", c.client, num(c.connections));
  }
  line(out, indent + "  connections",
       fmt::format("{} established from {}{}; {} with unread replies",
                   num(static_cast<double>(l.established())),
                   plural(static_cast<double>(l.clients), "client"),
                   top.empty() ? "" : ", most from " + top,
                   num(static_cast<double>(l.send_queue_blocked))));
}

void render_target(std::string& out, const TargetView& view) {
  const MemcachedSample& m = *view.memcached;
  std::string head = "memcached " + m.target;
  if (m.address != m.target) head += " (" + m.address + ")";
  if (!m.up) {
    line(out, head, "stats failed: " + m.error);
  } else {
    const MemcachedStats& st = m.stats;
    line(out, head,
         fmt::format("up, version {}, {} worker threads, up for {}",
                     st.version.empty() ? "unknown" : st.version, opt(worker_threads(m)),
                     st.uptime ? seconds_text(static_cast<double>(*st.uptime)) : "unknown"));
    const auto limits = connection_limits(m);
    std::string conns = opt(as_double(st.curr_connections)) + " of -c " + opt(max_connections(m));
    if (limits) {
      conns += fmt::format(" (effective limit {}: {} memcached holds itself)", num(limits->limit()),
                           plural(limits->max_connections - limits->limit(), "descriptor"));
    }
    line(out, "  connections", conns);
    line(out, "  accepting new connections",
         !st.accepting_conns ? "unknown" : (*st.accepting_conns > 0 ? "yes" : "NO"));
    line(out, "  listen backlog (-b)", opt(listen_backlog(m)));
    if (const auto fast = maxconns_fast(m)) {
      line(out, "  at the limit",
           *fast ? "refuses with \"ERROR Too many open connections\" (maxconns_fast)"
                 : "stops accepting (-o no_maxconns_fast)");
    }
    line(out, "  CPU per worker thread", opt(m.cpu_utilization_ratio, "not yet measured"));
    if (const MemcachedThreads* t = view.threads) {
      if (t->view == ThreadView::kPerThread) {
        line(out, "  busiest worker thread",
             t->busiest
                 ? fmt::format("{} CPU s/s ({} {}), average {} over {}", num(*t->busiest),
                               kWorkerThreadName, t->busiest_tid, num(t->average.value_or(0)),
                               plural(static_cast<double>(t->workers), "worker thread"))
                 : std::string("not yet measured"));
      } else if (!t->reason.empty()) {
        line(out, "  busiest worker thread", "not read: " + t->reason);
      }
    }
    if (st.bytes && st.limit_maxbytes) {
      line(out, "  memory",
           bytes(static_cast<double>(*st.bytes)) + " of " +
               bytes(static_cast<double>(*st.limit_maxbytes)));
    }
  }
  if (!m.probe_enabled) {
    line(out, "  fresh-connection probe", "off");
  } else if (!m.probe) {
    line(out, "  fresh-connection probe", "no result yet");
  } else if (m.probe->success) {
    line(out, "  fresh-connection probe",
         fmt::format("answered in {:.2f} ms", m.probe->duration_seconds * 1000) +
             (m.probe->connect_seconds
                  ? fmt::format(" (TCP handshake {:.2f} ms)", *m.probe->connect_seconds * 1000)
                  : std::string()));
  } else {
    line(out, "  fresh-connection probe",
         fmt::format("FAILED after {:.2f} s: {}", m.probe->duration_seconds, m.probe->error));
  }
  for (const ListenerSample* l : view.listeners) render_listener(out, *l, "  ");
}

void render_signals(std::string& out, const Observation& o) {
  out += o.netns.empty() ? "Signals\n"
                         : "Signals of network namespace " + printable_or_escaped(o.netns) + "\n";
  std::vector<const ListenerSample*> shown;
  for (const TargetView& t : o.targets) {
    render_target(out, t);
    shown.insert(shown.end(), t.listeners.begin(), t.listeners.end());
  }
  line(out, "kernel net.core.somaxconn",
       opt(o.sysctl != nullptr ? as_double(o.sysctl->somaxconn) : std::nullopt));
  if (o.netstat != nullptr) {
    line(out, "kernel listen overflows / drops",
         opt(as_double(o.netstat->listen_overflows)) + " / " +
             opt(as_double(o.netstat->listen_drops)) + " since the network namespace started");
  } else {
    line(out, "kernel listen overflows / drops", "unknown (netstat collector off or failing)");
  }
  if (o.sockets == nullptr) {
    line(out, "listeners and connections", "unknown (sockdiag collector off or failing)");
  } else {
    // Watched listeners no target listens on (ports from collectors.sockdiag.ports).
    for (const ListenerSample& l : o.sockets->listeners) {
      if (std::find(shown.begin(), shown.end(), &l) == shown.end()) render_listener(out, l, "");
    }
  }
  if (o.netstat != nullptr && o.netstat->out_segments && o.netstat->retransmitted_segments) {
    line(out, "kernel TCP segments sent / retransmitted",
         num(static_cast<double>(*o.netstat->out_segments)) + " / " +
             num(static_cast<double>(*o.netstat->retransmitted_segments)) +
             " since the network namespace started");
  }
  if (o.softnet != nullptr) {
    line(out, "receive backlogs (softnet_stat)",
         fmt::format("{} dropped, {} squeezed since boot, {}",
                     num(static_cast<double>(o.softnet->dropped)),
                     plural(static_cast<double>(o.softnet->time_squeeze), "time"),
                     plural(o.softnet->cpus, "CPU")));
  }
  if (o.cpu != nullptr) {
    const CpuTimes& t = o.cpu->times;
    const double total = static_cast<double>(std::max<std::uint64_t>(t.total(), 1));
    line(out, "host CPU since boot",
         fmt::format("{:.1f}% steal, {:.1f}% iowait over {}",
                     static_cast<double>(t.steal) / total * 100,
                     static_cast<double>(t.iowait) / total * 100, plural(o.cpu->cpus, "CPU")));
  }
  if (o.netdev != nullptr) {
    if (o.netdev->devices.empty()) {
      line(out, "NICs", "none watched (collectors.netdev.include and exclude, docs/hosts.md)");
    }
    for (const NetdevDevice& d : o.netdev->devices) {
      auto pct = [](const std::optional<double>& v) {
        return v ? fmt::format("{:.0f}%", *v * 100) : std::string("?");
      };
      std::string speed =
          d.speed_error.empty() ? "no known link speed" : "link speed not read: " + d.speed_error;
      if (d.speed_bytes) {
        speed = format_bit_rate(static_cast<double>(*d.speed_bytes) * 8) +
                (d.speed_source == SpeedSource::kConfigured ? " (configured)" : "");
      }
      line(out, "NIC " + d.counters.device,
           fmt::format(
               "receive {}, transmit {} of {}; {} drops", pct(d.receive_utilization),
               pct(d.transmit_utilization), speed,
               num(static_cast<double>(d.counters.receive_drops + d.counters.transmit_drops))));
      if (d.driver) {
        std::string allowances;
        for (std::size_t a = 0; a < kAllowanceCount; ++a) {
          if (!d.driver->allowance_exceeded[a]) continue;
          allowances += fmt::format("{}{} {}", allowances.empty() ? "" : ", ",
                                    allowance_stat(static_cast<Allowance>(a)),
                                    num(static_cast<double>(*d.driver->allowance_exceeded[a])));
        }
        if (!allowances.empty()) line(out, "  cloud allowances since boot", allowances);
      } else if (!d.driver_error.empty()) {
        line(out, "  driver counters", "not read: " + d.driver_error);
      }
    }
  }
  out += "\n";
}

// Counters accumulated since memcached started: saturation that happened before this run.
void render_history(std::string& out, const Observation& o) {
  std::string notes;
  for (const TargetView& t : o.targets) {
    const MemcachedSample& m = *t.memcached;
    if (!m.up) continue;
    const MemcachedStats& st = m.stats;
    const std::string target = printable_or_escaped(m.target);
    if (st.rejected_connections && *st.rejected_connections > 0) {
      notes +=
          fmt::format("  {}: {} at the limit since memcached started\n", target,
                      plural(static_cast<double>(*st.rejected_connections), "connection rejected"));
    }
    if (st.listen_disabled_num && *st.listen_disabled_num > 0) {
      notes += fmt::format(
          "  {}: memcached stopped accepting {}, for {} in total, since it started\n", target,
          plural(static_cast<double>(*st.listen_disabled_num), "time"),
          seconds_text(static_cast<double>(st.time_in_listen_disabled_us.value_or(0)) / 1e6));
    }
    if (st.evictions && *st.evictions > 0) {
      notes += fmt::format("  {}: {} since memcached started\n", target,
                           plural(static_cast<double>(*st.evictions), "item evicted"));
    }
  }
  if (o.netstat != nullptr && o.netstat->listen_overflows && *o.netstat->listen_overflows > 0) {
    notes +=
        fmt::format("  kernel{}: {} since the network namespace started\n",
                    o.netns.empty() ? "" : " (netns " + printable_or_escaped(o.netns) + ")",
                    plural(static_cast<double>(*o.netstat->listen_overflows), "listen overflow"));
  }
  if (notes.empty()) return;
  out += "Earlier saturation (counters since start, not part of the result)\n" + notes + "\n";
}

Level shown_level(const AlertStatus& a) { return worse(a.state, a.condition); }

}  // namespace

int unknown_targets(const Observation& o, const std::vector<AlertStatus>& statuses) {
  return unknown_targets(std::span(&o, 1), statuses);
}

int unknown_targets(std::span<const Observation> observations,
                    const std::vector<AlertStatus>& statuses) {
  int unknown = 0;
  for (const Observation& o : observations) {
    for (const TargetView& t : o.targets) {
      if (t.memcached->up) continue;
      const bool judged = std::any_of(statuses.begin(), statuses.end(), [&](const AlertStatus& a) {
        return shown_level(a) == Level::kCritical && !a.labels.empty() &&
               a.labels.front().second == t.memcached->target;
      });
      if (!judged) ++unknown;
    }
  }
  return unknown;
}

int exit_code(const std::vector<AlertStatus>& statuses, int unknown) {
  Level worst = Level::kOk;
  for (const AlertStatus& a : statuses) worst = mcb::worse(worst, shown_level(a));
  if (unknown > 0 && worst != Level::kCritical) return 3;
  return static_cast<int>(worst);
}

std::string render_verdicts(const std::vector<AlertStatus>& statuses, bool color, int unknown) {
  std::string out = "Verdicts\n";
  // What holds first, worst first; then the rest in catalogue order.
  std::vector<const AlertStatus*> order;
  for (Level l : {Level::kCritical, Level::kWarning, Level::kOk}) {
    for (const AlertStatus& a : statuses) {
      if (shown_level(a) == l) order.push_back(&a);
    }
  }
  for (const AlertStatus* a : order) {
    const std::string subject = subject_of(*a);
    const Level level = shown_level(*a);
    out += "  " + state_word(level, color) + " " + (color ? kBold : "") + a->name +
           (color ? kReset : "") + (subject.empty() ? "" : " [" + subject + "]") +
           (a->pending() ? " (pending: its condition holds, `for` has not run out)" : "") + "\n";
    const std::string evidence =
        a->verdict ? printable_or_escaped(a->verdict->evidence) : "no data";
    if (level != Level::kOk) {
      out += "           cause:    " + a->cause + "\n";
      out += "           evidence: " + evidence + "\n";
      out += "           fix:      " + a->remediation + "\n";
    } else {
      out += "           " + evidence + "\n";
    }
  }
  const int code = exit_code(statuses, unknown);
  std::string word = code == 3 ? (color ? std::string(kBold) + "UNKNOWN" + kReset : "UNKNOWN")
                               : state_word(static_cast<Level>(code), color, 0);
  out += fmt::format("\nResult: {} (exit code {})\n", word, code);
  if (code == 3) {
    out += fmt::format("  {} could not be evaluated: stats failed and no alert says why\n",
                       plural(unknown, "target"));
  }
  return out;
}

std::string render_report(const Observation& observation, const std::vector<AlertStatus>& statuses,
                          bool color) {
  return render_report(std::span(&observation, 1), statuses, color);
}

std::string render_report(std::span<const Observation> observations,
                          const std::vector<AlertStatus>& statuses, bool color) {
  std::string out;
  for (const Observation& o : observations) render_signals(out, o);
  std::string history;
  for (const Observation& o : observations) render_history(history, o);
  out += history;
  out += render_verdicts(statuses, color, unknown_targets(observations, statuses));
  return out;
}

namespace {

bool use_color() { return ::isatty(STDOUT_FILENO) == 1 && std::getenv("NO_COLOR") == nullptr; }

// GET /alerts from the daemon at `listen_address` (its wildcard means this host), the whole
// exchange bounded by kFromDaemonTimeout: a daemon that accepts and never answers costs that
// long, not for ever.
Result<std::string> fetch_alerts(const std::string& listen_address) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  namespace asio = boost::asio;
  auto where = parse_listen_address(listen_address);
  if (!where) return where.error();
  std::string host = where->host;
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  const std::string at = fmt::format("{}:{}", host, where->port);
  // Owned by the handlers in flight: a name lookup that hangs (the resolver's thread) keeps its
  // handler, and so the whole exchange, alive, so its io_context is left behind rather than
  // destroyed (which would wait for that thread) when this returns.
  struct Exchange {
    asio::io_context io;
    asio::ip::tcp::resolver resolver{io};
    beast::tcp_stream stream{io};
    http::request<http::empty_body> req{http::verb::get, "/alerts", 11};
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    std::optional<Result<std::string>> result;
  };
  auto x = std::make_shared<Exchange>();
  x->req.set(http::field::host, host);
  x->req.set(http::field::user_agent, "mcbacklogd-diagnose");
  x->parser.body_limit(kMaxAlertsJsonBytes);
  x->stream.expires_after(kFromDaemonTimeout);
  auto failed = [x, at](const char* step, const boost::system::error_code& ec) {
    if (x->result) return;
    x->result = ec == beast::error::timeout
                    ? fail(fmt::format("no daemon answered at {} within {} ({})", at,
                                       format_duration(kFromDaemonTimeout), step))
                    : fail(fmt::format("no daemon answered at {}: {}: {}", at, step, ec.message()));
  };
  auto read = [x, failed](const boost::system::error_code& ec, std::size_t) {
    if (ec) return failed("reading the reply", ec);
    if (x->parser.get().result() != http::status::ok) {
      x->result = fail(fmt::format("GET /alerts answered {}", x->parser.get().result_int()));
    } else {
      x->result = x->parser.get().body();
    }
  };
  auto written = [x, failed, read](const boost::system::error_code& ec, std::size_t) {
    if (ec) return failed("sending the request", ec);
    http::async_read(x->stream, x->buffer, x->parser, read);
  };
  auto connected = [x, failed, written](const boost::system::error_code& ec, const auto&) {
    if (ec) return failed("connect", ec);
    http::async_write(x->stream, x->req, written);
  };
  x->resolver.async_resolve(host, std::to_string(where->port),
                            [x, failed, connected](const boost::system::error_code& ec,
                                                   const asio::ip::tcp::resolver::results_type& r) {
                              if (ec) return failed("resolve", ec);
                              x->stream.async_connect(r, connected);
                            });
  x->io.run_for(kFromDaemonTimeout + std::chrono::seconds(1));
  if (!x->result) {
    // Only a name lookup that hangs gets here: the stream's own deadline ends the rest.
    x->result = fail(
        fmt::format("no daemon answered at {} within {}", at, format_duration(kFromDaemonTimeout)));
  }
  return std::move(*x->result);
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
  // The collectors run once per wait: each run has until the next (at most 5 s), not the daemon's
  // interval, which may be far shorter than a loaded memcached needs to answer.
  config.interval = flags.diagnose_wait;
  // Both samples count the connections and read the listen counters and the CPU: two are all it
  // has.
  config.sockdiag.connections_interval = Duration{0};
  config.netstat.interval = Duration{0};
  config.cpu.interval = Duration{0};
  config.memcached_threads.interval = Duration{0};
  // Probes start with the first sample and again two thirds of the wait later, so the first
  // probe has ended (its deadline is its interval) by the second sample even when memcached
  // never answers it.
  if (config.discover.enabled) {
    std::vector<std::string> problems;
    Discoverer discoverer(config.discover, config.paths.procfs);
    auto found = discoverer.targets(discoverer.configured(config.targets), problems);
    for (const std::string& p : problems) std::fprintf(stderr, "discovery: %s\n", p.c_str());
    config.targets.insert(config.targets.end(), found.begin(), found.end());
  }
  for (TargetConfig& t : config.targets) {
    if (t.probe_interval.count() > 0) t.probe_interval = flags.diagnose_wait * 2 / 3;
  }
  if (!flags.log_level) spdlog::set_level(spdlog::level::off);  // the report says it all

  boost::asio::io_context io;
  const CollectorSet collectors = make_collectors(config, io);
  Evaluator evaluator(config.thresholds);
  int samples = 0;
  bool retaken = false;
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  std::fprintf(stderr, "mcbacklogd diagnose: sampling twice, %s apart%s",
               format_duration(flags.diagnose_wait).c_str(), tty ? "" : "\n");
  LoopClock::time_point first;
  std::shared_ptr<Scheduler> scheduler;
  scheduler = std::make_shared<Scheduler>(io, flags.diagnose_wait, collectors.all(), [&] {
    const auto now = LoopClock::now();
    // A first cycle held to its end by a target that did not answer ends when the second starts,
    // and that one may end at once: the second sample is the next cycle's, a wait later, so that
    // the rates between the two cover the wait and not a few milliseconds.
    if (samples == 1 && now - first < flags.diagnose_wait / 2) return;
    if (++samples == 1) first = now;
    const std::vector<Observation> observations =
        observe(collectors, now, std::chrono::system_clock::now());
    evaluator.evaluate(observations);
    if (watch_memcached_listeners(collectors, observations) && samples == 1 && !retaken) {
      // memcached named listeners this sample did not watch (-l with several ports): take it again
      // at once with them, so that the rates up to the second sample cover their drops too.
      retaken = true;
      samples = 0;
      boost::asio::post(io, [&scheduler] { scheduler->cycle_now(); });
      return;
    }
    std::fprintf(stderr, "%ssample %d of 2 taken%s", tty ? "\r\033[Kmcbacklogd diagnose: " : "",
                 samples, tty && samples < 2 ? "" : "\n");
    if (samples == 2) {
      scheduler->stop();
      io.stop();
    }
  });
  scheduler->start();
  io.run();
  // The observation the last evaluation read: the collectors have not run since.
  const std::vector<Observation> last =
      observe(collectors, LoopClock::now(), std::chrono::system_clock::now());
  std::printf("%s", render_report(last, evaluator.statuses(), use_color()).c_str());
  return exit_code(evaluator.statuses(), unknown_targets(last, evaluator.statuses()));
}

}  // namespace mcb
