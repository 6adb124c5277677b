#include "config/config.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "common/text.hpp"
#include "config/bit_rate.hpp"
#include "config/limits.hpp"
#include "config/yaml_walker.hpp"

namespace mcb {

Config Config::defaults(AlertSchemas alerts) {
  Config c;
  TargetConfig t;
  t.address = *parse_target_address(kDefaultTargetAddress);
  t.name = std::string(kDefaultTargetAddress);
  c.targets.push_back(t);
  for (const AlertSchema& a : alerts) c.thresholds.emplace(std::string(a.name), a.defaults);
  return c;
}

std::string NetnsConfig::describe() const {
  return path.empty() ? "pid " + std::to_string(pid) : path;
}

std::vector<std::uint16_t> Config::watched_ports(const std::optional<NetnsConfig>& netns) const {
  std::vector<std::uint16_t> ports = sockdiag.ports;
  if (ports.empty()) {
    for (const TargetConfig& t : targets) {
      if (!t.address.is_unix() && t.netns == netns) ports.push_back(t.address.port);
    }
  }
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  return ports;
}

std::vector<NetnsConfig> Config::namespaces() const {
  std::vector<NetnsConfig> out;
  for (const TargetConfig& t : targets) {
    if (t.netns && std::find(out.begin(), out.end(), *t.netns) == out.end()) {
      out.push_back(*t.netns);
    }
  }
  return out;
}

namespace {

using Walker = YamlWalker;

// A network namespace file: an absolute path ("/run/netns/NAME", "/proc/PID/ns/net").
std::optional<std::string> netns_file(Walker& w, const YAML::Node& n, const std::string& p) {
  if (!w.scalar(n, p, "a network namespace file such as \"/run/netns/NAME\"")) return std::nullopt;
  const std::string& file = n.Scalar();
  if (file.size() > kMaxPathBytes) {
    w.error(n.Mark(), p,
            "a name of " + std::to_string(file.size()) + " bytes; at most " +
                std::to_string(kMaxPathBytes) + " are allowed");
    return std::nullopt;
  }
  if (file.empty() || file.front() != '/') {
    w.error(n.Mark(), p,
            "a network namespace file needs an absolute path, such as \"/run/netns/NAME\" or "
            "\"/proc/PID/ns/net\"");
    return std::nullopt;
  }
  if (!is_printable_utf8(file)) {
    // Its last part labels series and log lines as a target's name does.
    w.error(n.Mark(), p,
            quote_untrusted(file) +
                ": a network namespace file's name must not hold control characters nor "
                "characters that reorder text (it labels series and log lines)");
    return std::nullopt;
  }
  return file;
}

// The name a TLS client sends (SNI) and checks the certificate against: a host name or an IP
// address. OpenSSL drops a name over 255 bytes from the handshake without a word, and a NUL
// would cut the name checked.
void server_name(Walker& w, const YAML::Node& n, const std::string& p, std::string& out) {
  if (!w.scalar(n, p, "a host name such as \"mc0.example.com\"")) return;
  const std::string& name = n.Scalar();
  constexpr std::size_t kMaxHostName = 253;  // RFC 1035, in text
  if (name.empty() || name.size() > kMaxHostName || !is_printable_utf8(name) ||
      name.find_first_of(" \t") != std::string::npos) {
    w.error(
        n.Mark(), p,
        quote_untrusted(name) + ": a host name or IP address of 1 to " +
            std::to_string(kMaxHostName) +
            " bytes without spaces or control characters, as the server's certificate names it");
    return;
  }
  out = name;
}

void walk_target(Walker& w, const YAML::Node& node, const std::string& path, TargetConfig& t) {
  std::string address_text;
  bool has_address = false;
  std::optional<YAML::Mark> netns_mark;
  auto set_netns = [&](const YAML::Node& n, const std::string& p, NetnsConfig value) {
    if (netns_mark) {
      w.error(n.Mark(), p, "netns and netns_pid name the same thing: give one of them");
      return;
    }
    netns_mark = n.Mark();
    t.netns = std::move(value);
    t.netns_origin = w.origin(n.Mark(), p);
  };
  w.mapping(
      node, path,
      {{"name", [&](auto& n, auto& p) { w.name(n, p, t.name); }},
       {"address",
        [&](auto& n, auto& p) {
          if (!w.scalar(n, p, "an address such as \"127.0.0.1:11211\"")) return;
          has_address = true;
          address_text = n.Scalar();
          auto e = parse_target_address(address_text);
          if (e) {
            t.address = *e;
          } else {
            w.error(n.Mark(), p, e.error().message);
          }
        }},
       {"netns",
        [&](auto& n, auto& p) {
          if (auto file = netns_file(w, n, p)) set_netns(n, p, NetnsConfig{*file, 0});
        }},
       {"netns_pid",
        [&](auto& n, auto& p) {
          int pid = 0;
          w.integer(n, p, pid, 1, 4194304);  // PID_MAX_LIMIT
          if (pid != 0) set_netns(n, p, NetnsConfig{"", pid});
        }},
       {"tls",
        [&](auto& n, auto& p) {
          TlsClientConfig tls;
          w.mapping(
              n, p,
              {{"ca_file",
                [&](auto& v, auto& r) { w.file_path(v, r, tls.ca_file, &tls.ca_file_origin); }},
               {"cert_file",
                [&](auto& v, auto& r) { w.file_path(v, r, tls.cert_file, &tls.cert_file_origin); }},
               {"key_file",
                [&](auto& v, auto& r) { w.file_path(v, r, tls.key_file, &tls.key_file_origin); }},
               {"server_name", [&](auto& v, auto& r) { server_name(w, v, r, tls.server_name); }},
               {"insecure_skip_verify",
                [&](auto& v, auto& r) { w.boolean(v, r, tls.insecure_skip_verify); }}});
          if (tls.cert_file.empty() != tls.key_file.empty()) {
            w.error(n.Mark(), p,
                    "cert_file and key_file go together: give both (a client certificate) "
                    "or neither");
          }
          t.tls = std::move(tls);
        }},
       {"probe_interval",
        [&](auto& n, auto& p) {
          w.duration(n, p, t.probe_interval, Duration{0}, std::chrono::hours(1));
          if (t.probe_interval.count() != 0 && t.probe_interval < kMinProbeInterval) {
            w.error(n.Mark(), p,
                    format_duration(t.probe_interval) +
                        " is too short: 0 turns the probe off, else it runs at most every " +
                        format_duration(kMinProbeInterval) + " (each probe is a new connection)");
          }
        }},
       {"slab_stats_interval", [&](auto& n, auto& p) {
          w.duration(n, p, t.slab_stats_interval, Duration{0}, std::chrono::hours(1));
        }}});
  if (node.IsMap() && !has_address) w.error(node.Mark(), path, "missing key \"address\"");
  if (t.name.empty() && !address_text.empty()) {
    // The address names the target: it must make a name as a given name would.
    t.name = address_text;
    if (t.name.size() > kMaxNameBytes || !is_printable_utf8(t.name)) {
      w.error(node.Mark(), path,
              "the address " + quote_untrusted(t.name) +
                  " cannot name the target (printable, at most " + std::to_string(kMaxNameBytes) +
                  " bytes): give it a name");
    }
  }
}

// collectors.netdev.speeds: device name -> bits per second ("10Gbit").
void walk_speeds(Walker& w, const YAML::Node& node, const std::string& path, NetdevConfig& n) {
  n.speeds.clear();
  w.entries(node, path, [&](const YAML::Node& key, const YAML::Node& value, const std::string& p) {
    const std::string& device = key.Scalar();
    // Linux device names: 1 to 15 bytes (IFNAMSIZ less its NUL), no '/', ':' or white space.
    if (device.empty() || device.size() > 15 ||
        device.find_first_of("/: \t\n") != std::string::npos) {
      w.error(key.Mark(), p,
              "not a network device name (1 to 15 characters, no '/', ':' or space)");
      return;
    }
    if (!w.scalar(value, p, "a speed such as \"10Gbit\"")) return;
    auto bps = parse_bit_rate(value.Scalar());
    if (bps) {
      n.speeds[device] = *bps;
    } else {
      w.error(value.Mark(), p, bps.error().message);
    }
  });
}

void walk_thresholds(Walker& w, const YAML::Node& node, const std::string& path, Config& c,
                     AlertSchemas alerts) {
  Walker::Table table;
  for (const AlertSchema& alert : alerts) {
    table.emplace_back(alert.name, [&w, &c, &alert](const YAML::Node& n, const std::string& p) {
      AlertThreshold& th = c.thresholds[std::string(alert.name)];
      // A level of a ratio above 1 is never reached: "80" meant 80 % would switch the alert off.
      const auto level = [&w, &alert](const YAML::Node& v, const std::string& q, double& out) {
        double read = out;
        w.number(v, q, read, 0, 1e12);
        if (alert.ratio && read > 1) {
          w.error(v.Mark(), q,
                  escape_untrusted(v.Scalar()) + " is out of range (0 to 1): the levels of " +
                      std::string(alert.name) + " are ratios (0.8 for 80 %)");
        } else {
          out = read;
        }
      };
      Walker::Table keys{
          {"warning", [&](auto& v, auto& q) { level(v, q, th.warning); }},
          {"critical", [&](auto& v, auto& q) { level(v, q, th.critical); }},
          {"clear", [&](auto& v, auto& q) { level(v, q, th.clear); }},
          {"for", [&](auto& v,
                      auto& q) { w.duration(v, q, th.for_, Duration{0}, std::chrono::hours(24)); }},
          {"window", [&](auto& v, auto& q) {
             w.duration(v, q, th.window, std::chrono::seconds(1), std::chrono::hours(24));
           }}};
      for (const ThresholdKey& extra : alert.extra_keys) {
        keys.emplace_back(extra.key, [&w, &th, &extra](auto& v, auto& q) {
          w.number(v, q, th.*extra.field, 0, extra.max);
        });
      }
      w.mapping(n, p, keys);
    });
  }
  w.mapping(node, path, table);
}

void walk_root(Walker& w, const YAML::Node& root, Config& c, AlertSchemas alerts) {
  bool targets_given = false;
  auto enabled = [&w](bool& flag) {
    return std::pair<std::string_view, Walker::Handler>{
        "enabled", [&w, &flag](auto& n, auto& p) { w.boolean(n, p, flag); }};
  };
  // `interval` of a paced collector (FileCollector::pace): 0 (every sample) to 1h.
  auto paced = [&w](Duration& interval) {
    return std::pair<std::string_view, Walker::Handler>{
        "interval", [&w, &interval](auto& n, auto& p) {
          w.duration(n, p, interval, Duration{0}, std::chrono::hours(1));
        }};
  };
  w.mapping(
      root, "",
      {{"interval",
        [&](auto& n, auto& p) {
          w.duration(n, p, c.interval, std::chrono::milliseconds(100), std::chrono::hours(1));
        }},
       {"targets",
        [&](auto& n, auto& p) {
          targets_given = true;
          c.targets.clear();
          w.sequence(n, p, [&](const YAML::Node& item, const std::string& ip) {
            TargetConfig t;
            walk_target(w, item, ip, t);
            c.targets.push_back(std::move(t));
          });
        }},
       {"collectors",
        [&](auto& n, auto& p) {
          w.mapping(
              n, p,
              {{"netstat",
                [&](auto& m, auto& q) {
                  w.mapping(m, q, {enabled(c.netstat.enabled), paced(c.netstat.interval)});
                }},
               {"sysctl", [&](auto& m, auto& q) { w.mapping(m, q, {enabled(c.sysctl.enabled)}); }},
               {"sockdiag",
                [&](auto& m, auto& q) {
                  SockdiagConfig& s = c.sockdiag;
                  w.mapping(m, q,
                            {enabled(s.enabled),
                             {"ports",
                              [&](auto& v, auto& r) {
                                s.ports.clear();
                                w.sequence(v, r,
                                           [&](const YAML::Node& item, const std::string& ip) {
                                             std::uint16_t port = 0;
                                             w.integer<std::uint16_t>(item, ip, port, 1, 65535);
                                             if (port != 0) s.ports.push_back(port);
                                           });
                                if (s.ports.size() > SockdiagConfig::kMaxPorts) {
                                  w.error(v.Mark(), r,
                                          std::to_string(s.ports.size()) + " ports; at most " +
                                              std::to_string(SockdiagConfig::kMaxPorts) +
                                              " fit in the kernel-side filter");
                                }
                              }},
                             {"top_clients",
                              [&](auto& v, auto& r) { w.integer(v, r, s.top_clients, 1, 1000); }},
                             {"sample_interval",
                              [&](auto& v, auto& r) {
                                w.duration(v, r, s.sample_interval, std::chrono::milliseconds(10),
                                           std::chrono::minutes(1));
                              }},
                             {"sample_at_rest",
                              [&](auto& v, auto& r) { w.boolean(v, r, s.sample_at_rest); }},
                             {"peak_window",
                              [&](auto& v, auto& r) {
                                w.duration(v, r, s.peak_window, std::chrono::seconds(1),
                                           std::chrono::hours(1));
                              }},
                             {"connections_interval",
                              [&](auto& v, auto& r) {
                                w.duration(v, r, s.connections_interval, Duration{0},
                                           std::chrono::hours(1));
                              }},
                             {"send_queue_threshold_bytes", [&](auto& v, auto& r) {
                                w.integer<std::uint64_t>(v, r, s.send_queue_threshold_bytes, 0,
                                                         std::uint64_t{1} << 40);
                              }}});
                }},
               {"netdev",
                [&](auto& m, auto& q) {
                  w.mapping(
                      m, q,
                      {enabled(c.netdev.enabled),
                       {"include", [&](auto& v, auto& r) { w.regex(v, r, c.netdev.include); }},
                       {"exclude", [&](auto& v, auto& r) { w.regex(v, r, c.netdev.exclude); }},
                       {"speeds", [&](auto& v, auto& r) { walk_speeds(w, v, r, c.netdev); }},
                       {"driver_stats",
                        [&](auto& v, auto& r) { w.boolean(v, r, c.netdev.driver_stats); }}});
                }},
               {"cpu",
                [&](auto& m, auto& q) {
                  w.mapping(m, q, {enabled(c.cpu.enabled), paced(c.cpu.interval)});
                }},
               {"softnet",
                [&](auto& m, auto& q) { w.mapping(m, q, {enabled(c.softnet.enabled)}); }},
               {"memcached_threads", [&](auto& m, auto& q) {
                  w.mapping(
                      m, q,
                      {enabled(c.memcached_threads.enabled), paced(c.memcached_threads.interval)});
                }}});
        }},
       {"discover",
        [&](auto& n, auto& p) {
          DiscoverConfig& d = c.discover;
          w.mapping(n, p,
                    {enabled(d.enabled),
                     {"interval",
                      [&](auto& v, auto& r) {
                        w.duration(v, r, d.interval, std::chrono::milliseconds(100),
                                   std::chrono::hours(1));
                      }},
                     {"grace",
                      [&](auto& v, auto& r) {
                        w.duration(v, r, d.grace, Duration{0}, std::chrono::hours(24));
                      }},
                     {"process_name",
                      [&](auto& v, auto& r) {
                        w.name(v, r, d.process_name);
                        if (d.process_name.size() > 15) {
                          w.error(
                              v.Mark(), r,
                              "at most 15 bytes: the kernel keeps the first 15 of a process's name "
                              "(/proc/PID/comm)");
                        }
                      }},
                     {"only_netns", [&](auto& v, auto& r) {
                        d.only_netns.clear();
                        d.only_netns_origins.clear();
                        w.sequence(v, r, [&](const YAML::Node& item, const std::string& ip) {
                          if (auto file = netns_file(w, item, ip)) {
                            d.only_netns.push_back(*file);
                            d.only_netns_origins.push_back(w.origin(item.Mark(), ip));
                          }
                        });
                      }}});
        }},
       {"thresholds", [&](auto& n, auto& p) { walk_thresholds(w, n, p, c, alerts); }},
       {"paths",
        [&](auto& n, auto& p) {
          w.mapping(n, p,
                    {{"procfs",
                      [&](auto& v, auto& r) {
                        w.directory(v, r, c.paths.procfs, &c.paths.procfs_origin);
                      }},
                     {"sysfs", [&](auto& v, auto& r) {
                        w.directory(v, r, c.paths.sysfs, &c.paths.sysfs_origin);
                      }}});
        }},
       {"web",
        [&](auto& n, auto& p) {
          w.mapping(n, p,
                    {{"listen_address",
                      [&](auto& v, auto& r) {
                        if (!w.scalar(v, r, "an address such as \":9741\"")) return;
                        auto e = parse_listen_address(v.Scalar());
                        if (e) {
                          c.web.listen_address = v.Scalar();
                        } else {
                          w.error(v.Mark(), r, e.error().message);
                        }
                      }},
                     {"config_file", [&](auto& v, auto& r) {
                        w.file_path(v, r, c.web.config_file, &c.web.config_file_origin);
                      }}});
        }},
       {"log", [&](auto& n, auto& p) {
          w.mapping(n, p,
                    {{"level",
                      [&](auto& v, auto& r) {
                        w.word(v, r, c.log.level, {"debug", "info", "warn", "error"});
                      }},
                     {"format", [&](auto& v, auto& r) {
                        w.word(v, r, c.log.format, {"text", "json"});
                      }}});
        }}});
  // Discovery finds the targets: the built-in 127.0.0.1:11211 is not added beside them.
  if (!targets_given && c.discover.enabled) c.targets.clear();
  if (!targets_given) return;
  // Target names label every memcached series, so they must be unique; /scrape?target= takes a
  // name or an address, so a name must not be another target's address either.
  std::set<std::string> names;
  std::map<std::string, std::size_t> addresses;
  for (std::size_t i = 0; i < c.targets.size(); ++i) {
    addresses.emplace(c.targets[i].address.to_string(), i);
  }
  for (std::size_t i = 0; i < c.targets.size(); ++i) {
    const std::string& name = c.targets[i].name;
    const std::string where = "targets[" + std::to_string(i) + "]";
    if (!name.empty() && !names.insert(name).second) {
      w.error(root["targets"][i].Mark(), where,
              "target name " + quote_untrusted(name) + " is used twice");
    } else if (const auto a = addresses.find(name); a != addresses.end() && a->second != i) {
      w.error(root["targets"][i].Mark(), where,
              "target name " + quote_untrusted(name) + " is the address of targets[" +
                  std::to_string(a->second) +
                  "]: /scrape?target= would not know which is meant; give another name");
    }
  }
}

// Cross-field checks that no single key can make: levels in order, windows that fit.
void check_consistency(Walker& w, const YAML::Node& root, const Config& c, AlertSchemas alerts) {
  // The ports sockdiag watches by default are the targets', one kernel-side filter a namespace.
  if (c.sockdiag.enabled && c.sockdiag.ports.empty() && root["targets"]) {
    std::vector<std::optional<NetnsConfig>> namespaces{std::nullopt};
    for (const NetnsConfig& ns : c.namespaces()) namespaces.emplace_back(ns);
    for (const auto& ns : namespaces) {
      const std::size_t ports = c.watched_ports(ns).size();
      if (ports <= SockdiagConfig::kMaxPorts) continue;
      w.error(root["targets"].Mark(), "targets",
              fmt::format("the targets {} listen on {} ports; at most {} fit in the kernel-side "
                          "filter of the sockdiag collector: list the ports to watch in "
                          "collectors.sockdiag.ports, or split the targets over two daemons",
                          ns ? "in network namespace " + ns->describe() : std::string("here"),
                          ports, SockdiagConfig::kMaxPorts));
    }
  }
  for (const AlertSchema& alert : alerts) {
    const std::string name(alert.name);
    const YAML::Node node = root["thresholds"] ? root["thresholds"][name] : YAML::Node();
    if (!node) continue;  // the defaults are consistent
    const AlertThreshold& th = c.thresholds.at(name);
    const std::string path = "thresholds." + name;
    // Each side says its value, and which came from the defaults: a warning lowered alone meets
    // the default clear above it.
    const auto side = [&node](const char* key, double value) {
      return fmt::format("{} ({}{})", key, value, node[key] ? "" : ", the default");
    };
    if (alert.lower_is_worse) {
      // Floors (SomaxconnTooLow): below `warning` always, below `critical` only while overflowing,
      // so the two are not ordered; a condition clears above `clear`.
      if (th.clear < th.warning) {
        w.error(node.Mark(), path,
                side("clear", th.clear) + " must not be below " + side("warning", th.warning) +
                    " (lower is worse)");
      }
      continue;
    }
    if (th.critical < th.warning) {
      w.error(node.Mark(), path,
              side("critical", th.critical) + " must not be below " + side("warning", th.warning));
    }
    if (th.clear > th.warning) {
      w.error(node.Mark(), path,
              side("clear", th.clear) + " must not be above " + side("warning", th.warning) +
                  "; set clear below warning too");
    }
  }
  if (c.sockdiag.peak_window < c.sockdiag.sample_interval) {
    const YAML::Node node = root["collectors"]["sockdiag"];
    w.error(node.Mark(), "collectors.sockdiag",
            "peak_window must not be shorter than sample_interval");
  }
}

}  // namespace

Result<Config> parse_config(std::string_view yaml, std::string_view file_name,
                            AlertSchemas alerts) {
  Walker w{std::string(file_name)};
  Config c = Config::defaults(alerts);
  c.source = escape_untrusted(file_name, kMaxPathBytes);  // for messages
  auto parsed = w.parse(yaml, [&](const YAML::Node& root) {
    walk_root(w, root, c, alerts);
    if (!w.has_errors() && root.IsMap()) check_consistency(w, root, c, alerts);
  });
  if (!parsed) return parsed.error();
  return c;
}

Result<Config> load_config(const std::string& path, AlertSchemas alerts) {
  auto text = read_config_file(path);
  if (!text) return text.error();
  return parse_config(*text, path, alerts);
}

}  // namespace mcb
