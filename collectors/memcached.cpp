#include "collectors/memcached.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <tuple>

#include <spdlog/spdlog.h>

#include "common/families.hpp"
#include "common/text.hpp"

namespace mcb {
namespace {

using Getter = std::function<std::optional<double>(const MemcachedSample&)>;

template <class T>
Getter stat(std::optional<T> MemcachedStats::*field, double scale = 1) {
  return [field, scale](const MemcachedSample& s) -> std::optional<double> {
    const auto& v = s.stats.*field;
    if (!v) return std::nullopt;
    return static_cast<double>(*v) * scale;
  };
}

template <class T>
Getter setting(std::optional<T> MemcachedSettings::*field) {
  return [field](const MemcachedSample& s) -> std::optional<double> {
    if (!s.settings || !(*s.settings.*field)) return std::nullopt;
    return static_cast<double>(*(*s.settings.*field));
  };
}

// A setting of the LRU crawler: memcached_exporter reports them only while the crawler is on.
template <class T>
Getter crawler_setting(std::optional<T> MemcachedSettings::*field) {
  return [field](const MemcachedSample& s) -> std::optional<double> {
    if (!s.settings || s.settings->lru_crawler != true || !(*s.settings.*field)) {
      return std::nullopt;
    }
    return static_cast<double>(*(*s.settings.*field));
  };
}

template <class Group>
Getter group_stat(const std::optional<Group> MemcachedStats::*group,
                  std::optional<std::int64_t> Group::*field) {
  return [group, field](const MemcachedSample& s) -> std::optional<double> {
    const auto& g = s.stats.*group;
    if (!g || !(*g.*field)) return std::nullopt;
    return static_cast<double>(*(*g.*field));
  };
}

Getter extstore(std::optional<std::int64_t> ExtstoreStats::*field) {
  return group_stat(&MemcachedStats::extstore, field);
}

Getter proxy(std::optional<std::int64_t> ProxyStats::*field) {
  return group_stat(&MemcachedStats::proxy, field);
}

template <class T>
std::optional<double> as_double(const std::optional<T>& v) {
  return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
}

Labels target_label(const MemcachedSample& s) { return {{"target", s.target}}; }

Labels slab_labels(const MemcachedSample& s, const SlabClassStats& c) {
  return {{"target", s.target}, {"slab", std::to_string(c.id)}};
}

// a - b when both are known.
std::optional<double> difference(const std::optional<std::int64_t>& a, std::optional<double> b) {
  if (!a || !b) return std::nullopt;
  return static_cast<double>(*a) - *b;
}

std::optional<double> sum(std::initializer_list<std::optional<std::int64_t>> parts) {
  double total = 0;
  for (const auto& p : parts) {
    if (!p) return std::nullopt;
    total += static_cast<double>(*p);
  }
  return total;
}

std::string describe(const TargetConfig& t) {
  const std::string address = t.address.to_string();
  return t.name == address ? t.name : t.name + " (" + address + ")";
}

}  // namespace

std::optional<double> max_connections(const MemcachedSample& s) {
  if (!s.up) return std::nullopt;
  if (s.stats.max_connections) return static_cast<double>(*s.stats.max_connections);
  if (s.settings && s.settings->maxconns) return static_cast<double>(*s.settings->maxconns);
  return std::nullopt;
}

std::optional<ConnectionLimit> connection_limits(const MemcachedSample& s) {
  const auto max = max_connections(s);
  if (!max) return std::nullopt;
  constexpr double kBase = 6, kPerThread = 4, kListeners = 1, kDefaultThreads = 4;
  ConnectionLimit l;
  l.max_connections = *max;
  l.threads = worker_threads(s).value_or(kDefaultThreads);
  l.own = kBase + kPerThread * l.threads + kListeners;
  // Settings unread: today's default. Read without maxconns_fast: a memcached older than it.
  l.refusal = (s.settings ? s.settings->maxconns_fast.value_or(false) : true) ? 1 : 0;
  return l;
}

std::optional<double> connection_limit(const MemcachedSample& s) {
  const auto l = connection_limits(s);
  return l ? std::optional<double>(l->limit()) : std::nullopt;
}

std::optional<double> worker_threads(const MemcachedSample& s) {
  if (!s.up) return std::nullopt;
  if (s.stats.threads) return static_cast<double>(*s.stats.threads);
  if (s.settings && s.settings->num_threads) return static_cast<double>(*s.settings->num_threads);
  return std::nullopt;
}

std::optional<double> listen_backlog(const MemcachedSample& s) {
  if (!s.up || !s.settings || !s.settings->tcp_backlog) return std::nullopt;
  return static_cast<double>(*s.settings->tcp_backlog);
}

std::optional<bool> maxconns_fast(const MemcachedSample& s) {
  if (!s.up || !s.settings) return std::nullopt;
  return s.settings->maxconns_fast;
}

void ProbeHistogram::observe(double seconds) {
  for (std::size_t i = 0; i < kProbeLatencyBuckets.size(); ++i) {
    if (seconds <= kProbeLatencyBuckets[i]) ++cumulative[i];
  }
  ++count;
  sum += seconds;
}

std::optional<double> cpu_utilization(const MemcachedStats& before, SteadyClock::time_point t0,
                                      const MemcachedStats& after, SteadyClock::time_point t1,
                                      std::optional<double> threads) {
  if (!before.rusage_user || !before.rusage_system || !after.rusage_user || !after.rusage_system ||
      !threads || !(*threads > 0) || before.pid != after.pid) {
    return std::nullopt;
  }
  const double seconds = std::chrono::duration<double>(t1 - t0).count();
  const double cpu =
      (*after.rusage_user + *after.rusage_system) - (*before.rusage_user + *before.rusage_system);
  // Rusages too large for a double (no memcached has them) make the sums infinite, and the
  // difference NaN: no rate rather than one that is not a number.
  if (seconds <= 0 || !(cpu >= 0)) return std::nullopt;
  const double rate = cpu / seconds / *threads;
  if (!std::isfinite(rate)) return std::nullopt;
  return rate;
}

Families memcached_families(const std::vector<MemcachedSample>& samples) {
  Families out = memcached_target_families(samples);
  Families slabs = memcached_slab_families(samples);
  out.insert(out.end(), std::make_move_iterator(slabs.begin()),
             std::make_move_iterator(slabs.end()));
  return out;
}

Families memcached_slab_families(const std::vector<MemcachedSample>& samples) {
  Families out;
  // One series per slab class of each target that is up and listed the class.
  using SlabGetter = std::function<std::optional<double>(const SlabClassStats&)>;
  auto put_slab = [&](FamilyBuilder f, const SlabGetter& get) {
    for (const MemcachedSample& s : samples) {
      if (!s.up || !s.slabs) continue;
      for (const SlabClassStats& c : s.slabs->classes) {
        if (auto v = get(c)) f.add(*v, slab_labels(s, c));
      }
    }
    std::move(f).into(out);
  };
  auto slab_stat = [](std::optional<std::int64_t> SlabClassStats::*field) -> SlabGetter {
    return [field](const SlabClassStats& c) -> std::optional<double> {
      const auto& v = c.*field;
      return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
    };
  };
  auto malloced = gauge("memcached_malloced_bytes",
                        "Bytes of memory allocated to slab pages (total_malloced of stats slabs).");
  for (const MemcachedSample& s : samples) {
    if (s.up && s.slabs && s.slabs->total_malloced) {
      malloced.add(static_cast<double>(*s.slabs->total_malloced), target_label(s));
    }
  }
  std::move(malloced).into(out);

  // Per slab class, from `stats items` (label slab).
  using C = SlabClassStats;
  put_slab(gauge("memcached_slab_current_items", "Items stored in the class now (number)."),
           slab_stat(&C::number));
  put_slab(gauge("memcached_slab_hot_items", "Items in the class's HOT LRU (number_hot)."),
           slab_stat(&C::number_hot));
  put_slab(gauge("memcached_slab_warm_items", "Items in the class's WARM LRU (number_warm)."),
           slab_stat(&C::number_warm));
  put_slab(gauge("memcached_slab_cold_items", "Items in the class's COLD LRU (number_cold)."),
           slab_stat(&C::number_cold));
  put_slab(
      gauge("memcached_slab_temporary_items", "Items in the class's TEMPORARY LRU (number_temp)."),
      slab_stat(&C::number_temp));
  put_slab(gauge("memcached_slab_items_age_seconds",
                 "Age of the class's oldest item, in seconds (age)."),
           slab_stat(&C::age));
  put_slab(gauge("memcached_slab_hot_age_seconds",
                 "Age of the oldest item in the class's HOT LRU, in seconds (age_hot)."),
           slab_stat(&C::age_hot));
  put_slab(gauge("memcached_slab_warm_age_seconds",
                 "Age of the oldest item in the class's WARM LRU, in seconds (age_warm)."),
           slab_stat(&C::age_warm));
  put_slab(counter("memcached_slab_items_evicted_total",
                   "Items evicted from the class before they expired (evicted)."),
           slab_stat(&C::evicted));
  put_slab(counter("memcached_slab_items_evicted_nonzero_total",
                   "Items with an expiry time evicted before it (evicted_nonzero)."),
           slab_stat(&C::evicted_nonzero));
  put_slab(counter("memcached_slab_items_evicted_time_seconds",
                   "Seconds since the last use of the class's last evicted item (evicted_time)."),
           slab_stat(&C::evicted_time));
  put_slab(counter("memcached_slab_items_evicted_unfetched_total",
                   "Items evicted without ever being read (evicted_unfetched)."),
           slab_stat(&C::evicted_unfetched));
  put_slab(counter("memcached_slab_items_expired_unfetched_total",
                   "Items that expired without ever being read (expired_unfetched)."),
           slab_stat(&C::expired_unfetched));
  put_slab(counter("memcached_slab_items_outofmemory_total",
                   "Stores into the class refused for want of memory, with nothing to evict "
                   "(outofmemory; -M, or every item locked)."),
           slab_stat(&C::outofmemory));
  put_slab(counter("memcached_slab_items_reclaimed_total",
                   "Times an item was stored in the memory of an expired one (reclaimed)."),
           slab_stat(&C::reclaimed));
  put_slab(counter("memcached_slab_items_tailrepairs_total",
                   "Times memcached freed an item stuck at the tail of the LRU (tailrepairs)."),
           slab_stat(&C::tailrepairs));
  put_slab(counter("memcached_slab_items_crawler_reclaimed_total",
                   "Expired items of the class the LRU crawler freed (crawler_reclaimed)."),
           slab_stat(&C::crawler_reclaimed));
  put_slab(counter("memcached_slab_items_moves_to_cold",
                   "Items of the class moved from HOT or WARM to COLD (moves_to_cold)."),
           slab_stat(&C::moves_to_cold));
  put_slab(counter("memcached_slab_items_moves_to_warm",
                   "Items of the class moved from COLD to WARM (moves_to_warm)."),
           slab_stat(&C::moves_to_warm));
  put_slab(counter("memcached_slab_items_moves_within_lru",
                   "Active items of the class bumped within HOT or WARM (moves_within_lru)."),
           slab_stat(&C::moves_within_lru));
  put_slab(counter("memcached_slab_mem_requested_bytes",
                   "Bytes the class's items asked for (mem_requested of stats items, else of "
                   "stats slabs)."),
           [](const C& c) -> std::optional<double> {
             return as_double(c.mem_requested ? c.mem_requested : c.slab_mem_requested);
           });
  auto lru_hits = counter("memcached_slab_lru_hits_total",
                          "Reads that found their item, by the LRU it was in (hits_to_hot, "
                          "hits_to_warm, hits_to_cold, hits_to_temp).");
  // Per slab class, from `stats slabs`.
  put_slab(
      gauge("memcached_slab_chunk_size_bytes", "Bytes of each chunk of the class (chunk_size)."),
      slab_stat(&C::chunk_size));
  put_slab(
      gauge("memcached_slab_chunks_per_page", "Chunks in one page of the class (chunks_per_page)."),
      slab_stat(&C::chunks_per_page));
  put_slab(gauge("memcached_slab_current_pages", "Pages the class holds (total_pages)."),
           slab_stat(&C::total_pages));
  put_slab(gauge("memcached_slab_current_chunks", "Chunks the class holds (total_chunks)."),
           slab_stat(&C::total_chunks));
  put_slab(
      gauge("memcached_slab_chunks_used", "Chunks of the class holding an item (used_chunks)."),
      slab_stat(&C::used_chunks));
  put_slab(gauge("memcached_slab_chunks_free", "Chunks of the class free for items (free_chunks)."),
           slab_stat(&C::free_chunks));
  put_slab(gauge("memcached_slab_chunks_free_end",
                 "Free chunks at the end of the class's last page (free_chunks_end)."),
           slab_stat(&C::free_chunks_end));
  auto slab_commands = counter("memcached_slab_commands_total",
                               "Requests that found their item in the class, by command "
                               "(get_hits, ..., cas_badval; set is cmd_set less the cas "
                               "counters).");
  for (const MemcachedSample& s : samples) {
    if (!s.up || !s.slabs) continue;
    for (const C& c : s.slabs->classes) {
      const std::string slab = std::to_string(c.id);
      const std::pair<const char*, std::optional<std::int64_t>> lrus[] = {
          {"hot", c.hits_to_hot},
          {"warm", c.hits_to_warm},
          {"cold", c.hits_to_cold},
          {"temporary", c.hits_to_temp}};
      for (const auto& [lru, hits] : lrus) {
        if (hits) {
          lru_hits.add(static_cast<double>(*hits),
                       {{"target", s.target}, {"slab", slab}, {"lru", lru}});
        }
      }
      auto add = [&](const char* command, const char* status, std::optional<double> v) {
        if (v) {
          slab_commands.add(
              *v, {{"target", s.target}, {"slab", slab}, {"command", command}, {"status", status}});
        }
      };
      add("get", "hit", as_double(c.get_hits));
      add("delete", "hit", as_double(c.delete_hits));
      add("incr", "hit", as_double(c.incr_hits));
      add("decr", "hit", as_double(c.decr_hits));
      add("cas", "hit", as_double(c.cas_hits));
      add("touch", "hit", as_double(c.touch_hits));
      add("cas", "badval", as_double(c.cas_badval));
      add("set", "hit", difference(c.cmd_set, sum({c.cas_hits, c.cas_badval})));
    }
  }
  std::move(lru_hits).into(out);
  std::move(slab_commands).into(out);

  return out;
}

Families memcached_target_families(const std::vector<MemcachedSample>& samples) {
  Families out;
  // One family, one series per target that is up and reported the value.
  auto put = [&](FamilyBuilder f, const Getter& get) {
    for (const MemcachedSample& s : samples) {
      if (!s.up) continue;
      if (auto v = get(s)) f.add(*v, target_label(s));
    }
    std::move(f).into(out);
  };
  auto up = gauge("memcached_up",
                  "1 if memcached answered `stats` on the daemon's persistent connection in the "
                  "last run, 0 if it did not.");
  auto version = gauge("memcached_version", "The version memcached reports; the value is 1.");
  for (const MemcachedSample& s : samples) {
    up.add(s.up ? 1 : 0, target_label(s));
    if (s.up && !s.stats.version.empty()) {
      version.add(1, {{"target", s.target}, {"version", s.stats.version}});
    }
  }
  std::move(up).into(out);
  std::move(version).into(out);

  // memcached_exporter's families from `stats`, with its types.
  using S = MemcachedStats;
  put(counter("memcached_uptime_seconds", "Seconds since memcached started (uptime)."),
      stat(&S::uptime));
  put(gauge("memcached_time_seconds", "memcached's clock, in Unix seconds (time)."),
      stat(&S::time));
  put(gauge("memcached_current_connections", "Open connections (curr_connections)."),
      stat(&S::curr_connections));
  put(gauge("memcached_max_connections",
            "Connections memcached allows, its -c (max_connections, else maxconns of "
            "stats settings)."),
      [](const MemcachedSample& s) { return max_connections(s); });
  put(counter("memcached_connections_total",
              "Connections memcached accepted since it started (total_connections)."),
      stat(&S::total_connections));
  put(counter("memcached_connections_rejected_total",
              "Connections accepted past the -c limit, told ERROR and closed, in maxconns_fast "
              "mode (rejected_connections)."),
      stat(&S::rejected_connections));
  put(counter("memcached_connections_listener_disabled_total",
              "Times memcached reached its connection limit and stopped accepting "
              "(listen_disabled_num)."),
      stat(&S::listen_disabled_num));
  put(counter("memcached_connections_yielded_total",
              "Times a connection yielded after -R requests in one event (conn_yields)."),
      stat(&S::conn_yields));
  put(gauge("memcached_accepting_connections",
            "1 if memcached is accepting new connections, 0 while its listener is disabled "
            "(accepting_conns)."),
      stat(&S::accepting_conns));
  put(counter("memcached_process_user_cpu_seconds_total",
              "CPU seconds memcached spent in user mode (rusage_user)."),
      stat(&S::rusage_user));
  put(counter("memcached_process_system_cpu_seconds_total",
              "CPU seconds memcached spent in the kernel (rusage_system)."),
      stat(&S::rusage_system));
  put(counter("memcached_read_bytes_total", "Bytes memcached read from the network (bytes_read)."),
      stat(&S::bytes_read));
  put(counter("memcached_written_bytes_total",
              "Bytes memcached sent to the network (bytes_written)."),
      stat(&S::bytes_written));
  put(gauge("memcached_current_bytes", "Bytes used to store items (bytes)."), stat(&S::bytes));
  put(gauge("memcached_limit_bytes",
            "Bytes memcached may use to store items, its -m (limit_maxbytes)."),
      stat(&S::limit_maxbytes));
  put(gauge("memcached_current_items", "Items stored now (curr_items)."), stat(&S::curr_items));
  put(counter("memcached_items_total", "Items stored since memcached started (total_items)."),
      stat(&S::total_items));
  put(counter("memcached_items_evicted_total",
              "Valid items removed to free memory for new ones (evictions)."),
      stat(&S::evictions));
  put(counter("memcached_items_reclaimed_total",
              "Times an item was stored in the memory of an expired one (reclaimed)."),
      stat(&S::reclaimed));
  put(counter("memcached_item_too_large_total",
              "Stores refused because the item was larger than -I (store_too_large)."),
      stat(&S::store_too_large));
  put(counter("memcached_item_no_memory_total",
              "Stores refused for want of memory (store_no_memory)."),
      stat(&S::store_no_memory));
  put(counter("memcached_direct_reclaims_total",
              "Times a worker thread had to reclaim or evict items itself (direct_reclaims)."),
      stat(&S::direct_reclaims));
  put(counter("memcached_lru_crawler_starts_total",
              "Times the LRU crawler started (lru_crawler_starts)."),
      stat(&S::lru_crawler_starts));
  put(counter("memcached_lru_crawler_items_checked_total",
              "Items the LRU crawler examined (crawler_items_checked)."),
      stat(&S::crawler_items_checked));
  put(counter("memcached_lru_crawler_reclaimed_total",
              "Expired items the LRU crawler freed (crawler_reclaimed)."),
      stat(&S::crawler_reclaimed));
  put(counter("memcached_lru_crawler_moves_to_cold_total",
              "Items moved from the HOT or WARM LRU to COLD (moves_to_cold)."),
      stat(&S::moves_to_cold));
  put(counter("memcached_lru_crawler_moves_to_warm_total",
              "Items moved from the COLD LRU to WARM (moves_to_warm)."),
      stat(&S::moves_to_warm));
  put(counter("memcached_lru_crawler_moves_within_lru_total",
              "Active items bumped within the HOT or WARM LRU (moves_within_lru)."),
      stat(&S::moves_within_lru));
  // Requests by command and outcome. memcached counts a cas in cmd_set too, so sets are cmd_set
  // less the cas counters.
  auto commands = counter("memcached_commands_total",
                          "Requests by command and outcome (get_hits, get_misses, ..., "
                          "cas_badval, cmd_flush; set is cmd_set less the cas counters).");
  for (const MemcachedSample& s : samples) {
    if (!s.up) continue;
    const S& st = s.stats;
    auto add = [&](const char* command, const char* status, std::optional<double> v) {
      if (v) commands.add(*v, {{"target", s.target}, {"command", command}, {"status", status}});
    };
    const std::pair<const char*,
                    std::pair<std::optional<std::int64_t>, std::optional<std::int64_t>>>
        hit_miss[] = {{"get", {st.get_hits, st.get_misses}},
                      {"delete", {st.delete_hits, st.delete_misses}},
                      {"incr", {st.incr_hits, st.incr_misses}},
                      {"decr", {st.decr_hits, st.decr_misses}},
                      {"cas", {st.cas_hits, st.cas_misses}},
                      {"touch", {st.touch_hits, st.touch_misses}}};
    for (const auto& [command, counts] : hit_miss) {
      add(command, "hit", as_double(counts.first));
      add(command, "miss", as_double(counts.second));
    }
    add("cas", "badval", as_double(st.cas_badval));
    add("flush", "hit", as_double(st.cmd_flush));
    add("set", "hit", difference(st.cmd_set, sum({st.cas_misses, st.cas_hits, st.cas_badval})));
  }
  std::move(commands).into(out);

  // The LRU crawler's settings, while it is on.
  using T = MemcachedSettings;
  put(gauge("memcached_lru_crawler_enabled", "1 while the LRU crawler is on (lru_crawler)."),
      [](const MemcachedSample& s) -> std::optional<double> {
        return s.settings && s.settings->lru_crawler == true ? std::optional<double>(1)
                                                             : std::nullopt;
      });
  put(gauge("memcached_lru_crawler_sleep",
            "Microseconds the LRU crawler sleeps between items (lru_crawler_sleep)."),
      crawler_setting(&T::lru_crawler_sleep));
  put(gauge("memcached_lru_crawler_to_crawl",
            "Items the LRU crawler examines per slab class and run, 0 for all "
            "(lru_crawler_tocrawl)."),
      crawler_setting(&T::lru_crawler_tocrawl));
  put(gauge("memcached_lru_crawler_maintainer_thread",
            "1 if the segmented LRU and its maintainer thread are on (lru_maintainer_thread)."),
      crawler_setting(&T::lru_maintainer_thread));
  put(gauge("memcached_lru_crawler_hot_percent",
            "Percent of a slab class's memory for the HOT LRU (hot_lru_pct)."),
      crawler_setting(&T::hot_lru_pct));
  put(gauge("memcached_lru_crawler_warm_percent",
            "Percent of a slab class's memory for the WARM LRU (warm_lru_pct)."),
      crawler_setting(&T::warm_lru_pct));
  put(gauge("memcached_lru_crawler_hot_max_factor",
            "The HOT LRU's idle age limit, as a factor of the COLD LRU's age (hot_max_factor)."),
      crawler_setting(&T::hot_max_factor));
  put(gauge("memcached_lru_crawler_warm_max_factor",
            "The WARM LRU's idle age limit, as a factor of the COLD LRU's age "
            "(warm_max_factor)."),
      crawler_setting(&T::warm_max_factor));

  // extstore, when memcached runs it.
  using E = ExtstoreStats;
  put(counter("memcached_extstore_compact_lost_total",
              "Items lost in extstore compaction because they were locked "
              "(extstore_compact_lost)."),
      extstore(&E::compact_lost));
  put(counter("memcached_extstore_compact_rescued_total",
              "Items moved to a new page in extstore compaction (extstore_compact_rescues)."),
      extstore(&E::compact_rescues));
  put(counter("memcached_extstore_compact_skipped_total",
              "Items dropped in extstore compaction for inactivity (extstore_compact_skipped)."),
      extstore(&E::compact_skipped));
  put(counter("memcached_extstore_pages_allocated_total",
              "Extstore pages allocated (extstore_page_allocs)."),
      extstore(&E::page_allocs));
  put(counter("memcached_extstore_pages_evicted_total",
              "Extstore pages evicted (extstore_page_evictions)."),
      extstore(&E::page_evictions));
  put(counter("memcached_extstore_pages_reclaimed_total",
              "Empty extstore pages freed (extstore_page_reclaims)."),
      extstore(&E::page_reclaims));
  put(gauge("memcached_extstore_pages_free",
            "Extstore pages holding no item (extstore_pages_free)."),
      extstore(&E::pages_free));
  put(gauge("memcached_extstore_pages_used",
            "Extstore pages holding at least one item (extstore_pages_used)."),
      extstore(&E::pages_used));
  put(counter("memcached_extstore_objects_evicted_total",
              "Items evicted from extstore for space (extstore_objects_evicted)."),
      extstore(&E::objects_evicted));
  put(counter("memcached_extstore_objects_read_total",
              "Items read from extstore (extstore_objects_read)."),
      extstore(&E::objects_read));
  put(counter("memcached_extstore_objects_written_total",
              "Items written to extstore (extstore_objects_written)."),
      extstore(&E::objects_written));
  put(gauge("memcached_extstore_objects_used", "Items stored in extstore (extstore_objects_used)."),
      extstore(&E::objects_used));
  put(counter("memcached_extstore_bytes_evicted_total",
              "Bytes evicted from extstore for space (extstore_bytes_evicted)."),
      extstore(&E::bytes_evicted));
  put(counter("memcached_extstore_bytes_written_total",
              "Bytes written to extstore (extstore_bytes_written)."),
      extstore(&E::bytes_written));
  put(counter("memcached_extstore_bytes_read_total",
              "Bytes read from extstore (extstore_bytes_read)."),
      extstore(&E::bytes_read));
  // A gauge by nature; a counter as memcached_exporter types it.
  put(counter("memcached_extstore_bytes_used",
              "Bytes of items stored in extstore (extstore_bytes_used)."),
      extstore(&E::bytes_used));
  put(gauge("memcached_extstore_bytes_fragmented",
            "Bytes of extstore pages allocated but holding no item (extstore_bytes_fragmented)."),
      extstore(&E::bytes_fragmented));
  put(gauge("memcached_extstore_bytes_limit",
            "Bytes of external storage memcached may use (extstore_limit_maxbytes)."),
      extstore(&E::limit_maxbytes));
  put(gauge("memcached_extstore_io_queue_depth",
            "Extstore reads and writes waiting (extstore_io_queue)."),
      extstore(&E::io_queue));

  // The proxy, when memcached runs it.
  using P = ProxyStats;
  put(counter("memcached_proxy_conn_requests_total",
              "Backend connections the proxy opened (proxy_conn_requests)."),
      proxy(&P::conn_requests));
  put(counter("memcached_proxy_conn_errors_total",
              "Backend connection errors of the proxy (proxy_conn_errors)."),
      proxy(&P::conn_errors));
  put(counter("memcached_proxy_conn_oom_total",
              "Times the proxy had no memory for a backend connection (proxy_conn_oom)."),
      proxy(&P::conn_oom));
  put(gauge("memcached_proxy_req_active",
            "Requests the proxy is forwarding now (proxy_req_active)."),
      proxy(&P::req_active));
  put(counter("memcached_proxy_config_reloads_total",
              "Reloads of the proxy's configuration (proxy_config_reloads)."),
      proxy(&P::config_reloads));
  put(counter("memcached_proxy_config_reload_fails_total",
              "Failed reloads of the proxy's configuration (proxy_config_reload_fails)."),
      proxy(&P::config_reload_fails));
  put(counter("memcached_proxy_config_cron_runs_total",
              "Runs of the proxy's configuration cron hooks (proxy_config_cron_runs)."),
      proxy(&P::config_cron_runs));
  put(counter("memcached_proxy_config_cron_fails_total",
              "Failed runs of the proxy's configuration cron hooks (proxy_config_cron_fails)."),
      proxy(&P::config_cron_fails));
  put(gauge("memcached_proxy_backend_total", "Backends the proxy has (proxy_backend_total)."),
      proxy(&P::backend_total));
  put(counter("memcached_proxy_backend_marked_bad_total",
              "Times the proxy marked a backend bad (proxy_backend_marked_bad)."),
      proxy(&P::backend_marked_bad));
  put(gauge("memcached_proxy_backend_failed", "Backends failed now (proxy_backend_failed)."),
      proxy(&P::backend_failed));
  put(counter("memcached_proxy_request_failed_depth_total",
              "Requests the proxy failed because a backend's queue was full "
              "(proxy_request_failed_depth)."),
      proxy(&P::request_failed_depth));
  put(counter("memcached_round_robin_fallback_total",
              "Times the proxy fell back to round-robin routing (round_robin_fallback)."),
      proxy(&P::round_robin_fallback));
  put(counter("memcached_unexpected_napi_ids_total",
              "Unexpected NAPI ids the proxy saw on connections (unexpected_napi_ids)."),
      proxy(&P::unexpected_napi_ids));

  // mcbacklogd's own view of memcached, which memcached_exporter has no family for.
  put(counter("mcbacklog_memcached_connections_listener_disabled_seconds_total",
              "Seconds memcached spent not accepting connections because it was at its "
              "connection limit (time_in_listen_disabled_us)."),
      stat(&S::time_in_listen_disabled_us, 1e-6));
  put(gauge("mcbacklog_memcached_connection_structures",
            "Connection structures memcached has allocated (connection_structures)."),
      stat(&S::connection_structures));
  put(gauge("mcbacklog_memcached_reserved_fds",
            "File descriptors memcached keeps for its own use out of -c (reserved_fds)."),
      stat(&S::reserved_fds));
  put(gauge("mcbacklog_memcached_threads",
            "Worker threads, memcached's -t (threads, else num_threads of stats settings)."),
      [](const MemcachedSample& s) { return worker_threads(s); });
  put(gauge("mcbacklog_memcached_listen_backlog",
            "The listen backlog memcached asks for, its -b (tcp_backlog of stats settings); the "
            "kernel cuts it to net.core.somaxconn."),
      [](const MemcachedSample& s) { return listen_backlog(s); });
  put(gauge("mcbacklog_memcached_maxconns_fast",
            "1 if memcached rejects connections past -c at once (maxconns_fast), 0 if it "
            "disables its listener instead (-o no_maxconns_fast)."),
      [](const MemcachedSample& s) -> std::optional<double> {
        const auto fast = maxconns_fast(s);
        if (!fast) return std::nullopt;
        return *fast ? 1 : 0;
      });
  put(gauge("mcbacklog_memcached_cpu_utilization_ratio",
            "CPU memcached used (user + system) over the last interval, per worker thread: "
            "near 1 means its workers are saturated."),
      [](const MemcachedSample& s) { return s.cpu_utilization_ratio; });
  put(gauge("mcbacklog_memcached_unreadable_stats",
            "Stats of memcached's last replies whose values mcbacklogd could not read; each is "
            "left out with what derives from it, and the log names them."),
      [](const MemcachedSample& s) { return static_cast<double>(s.unreadable.size()); });

  // The probe, whether or not stats answered.
  auto success = gauge("mcbacklog_probe_success",
                       "1 if the last fresh-connection probe got memcached's version, 0 if not.");
  auto duration = gauge("mcbacklog_probe_duration_seconds",
                        "Connect-to-reply time of the last probe, or time to its failure.");
  auto connect = gauge("mcbacklog_probe_connect_duration_seconds",
                       "TCP handshake time of the last probe, which the kernels answer without "
                       "memcached: a round-trip time of the network. TCP targets only.");
  auto failures = counter("mcbacklog_probe_failures_total", "Probes that failed.");
  prometheus::MetricFamily latency;
  latency.name = "mcbacklog_probe_latency_seconds";
  latency.help = "Connect-to-reply time of every successful fresh-connection probe.";
  latency.type = prometheus::MetricType::Histogram;
  for (const MemcachedSample& s : samples) {
    if (!s.probe && s.probe_latency.count == 0 && s.probe_failures == 0) continue;
    if (s.probe) {
      success.add(s.probe->success ? 1 : 0, target_label(s));
      duration.add(s.probe->duration_seconds, target_label(s));
      if (s.probe->connect_seconds) connect.add(*s.probe->connect_seconds, target_label(s));
    }
    failures.add(static_cast<double>(s.probe_failures), target_label(s));
    prometheus::ClientMetric m;
    m.label = target_label(s);
    m.histogram.sample_count = s.probe_latency.count;
    m.histogram.sample_sum = s.probe_latency.sum;
    for (std::size_t i = 0; i < kProbeLatencyBuckets.size(); ++i) {
      m.histogram.bucket.push_back({s.probe_latency.cumulative[i], kProbeLatencyBuckets[i]});
    }
    latency.metric.push_back(std::move(m));
  }
  std::move(success).into(out);
  std::move(duration).into(out);
  std::move(connect).into(out);
  std::move(failures).into(out);
  if (!latency.metric.empty()) out.push_back(std::move(latency));
  return out;
}

MemcachedTiming MemcachedTiming::for_interval(Duration interval) {
  MemcachedTiming t;
  t.run_timeout = std::min<Duration>(interval, std::chrono::seconds(5));
  t.connection.backoff_base =
      std::clamp<Duration>(interval, std::chrono::milliseconds(100), std::chrono::seconds(5));
  return t;
}

MemcachedCollector::MemcachedCollector(boost::asio::io_context& io,
                                       std::vector<TargetConfig> targets, MemcachedTiming timing)
    : io_(io), timing_(timing) {
  for (TargetConfig& c : targets) {
    Target t;
    if (c.name.empty()) c.name = c.address.to_string();
    t.connection = std::make_shared<StatsConnection>(io, Transport::of(c), timing_.connection);
    t.config = std::move(c);
    targets_.push_back(std::move(t));
  }
}

void MemcachedCollector::collect(Done done) {
  if (!probes_started_) start_probes();
  done_ = std::move(done);
  ++run_;
  pending_ = targets_.size();
  const auto now = SteadyClock::now();
  const auto deadline = now + timing_.run_timeout;
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    Target& t = targets_[i];
    t.reply.reset();
    t.slabs_asked = t.config.slab_stats_interval.count() > 0 && now >= t.slabs_due;
    t.settings_asked = now >= t.settings_due;
    t.connection->query(
        deadline,
        [weak = weak_from_this(), i, run = run_](StatsReply reply) {
          if (auto self = weak.lock()) self->on_reply(i, run, std::move(reply));
        },
        StatsRequest{.settings = t.settings_asked, .slabs = t.slabs_asked});
  }
  if (targets_.empty()) end_run();
}

void MemcachedCollector::on_reply(std::size_t index, std::uint64_t run, StatsReply reply) {
  if (stopped_ || run != run_ || !done_) return;
  targets_[index].reply = std::move(reply);
  if (--pending_ == 0) end_run();
}

void MemcachedCollector::end_run() {
  samples_.clear();
  std::string down;
  for (Target& t : targets_) {
    samples_.push_back(sample_of(t));
    if (!samples_.back().up) down += (down.empty() ? "" : ", ") + t.config.name;
  }
  std::vector<std::pair<const SlabStats*, bool>> slabs_of;
  slabs_of.reserve(samples_.size());
  for (const MemcachedSample& s : samples_) slabs_of.emplace_back(s.slabs.get(), s.up);
  if (slabs_of != slab_families_of_) {
    slab_families_ = memcached_slab_families(samples_);
    slab_families_of_ = std::move(slabs_of);
  }
  Done done = std::move(done_);
  done_ = nullptr;
  if (down.empty()) {
    done(ok_status());
  } else {
    done(fail("stats failed on " + down));
  }
}

MemcachedSample MemcachedCollector::sample_of(Target& t) {
  MemcachedSample s;
  s.target = t.config.name;
  s.address = t.config.address.to_string();
  s.endpoint = t.config.address;
  s.probe_enabled = t.config.probe_interval.count() > 0;
  s.time = SteadyClock::now();
  StatsReply reply = t.reply ? std::move(*t.reply) : StatsReply{};
  if (!t.reply) reply.failure = FailureKind::kNoReply;
  if (!reply.stats) {
    s.error = reply.stats.error().message;
    s.failure = reply.failure;
    // A target that is down gets its slab stats afresh when it is back. Its settings stay: a new
    // connection's first write asks them again, and a restart behind the same connection shows in
    // its pid.
    t.slabs.reset();
    t.slabs_unreadable.clear();
    t.slabs_due = {};
  } else {
    s.up = true;
    s.time = reply.received;
    s.stats = memcached_stats(*reply.stats, s.unreadable);
    read_settings(t, reply, SteadyClock::now());
    // A memcached that restarted behind a connection that stayed (a proxy in front of it, say):
    // its settings and slab stats are asked again in the next run, unless this one brought them.
    if (t.previous && (t.previous->pid != s.stats.pid || (s.stats.uptime && t.previous->uptime &&
                                                          *s.stats.uptime < *t.previous->uptime))) {
      if (!reply.settings) t.settings_due = {};
      if (!reply.items) t.slabs_due = {};
    }
    s.settings = t.settings;
    s.settings_error = t.settings_error;
    s.unreadable.insert(s.unreadable.end(), t.settings_unreadable.begin(),
                        t.settings_unreadable.end());
    read_slabs(t, reply, SteadyClock::now());
    s.unreadable.insert(s.unreadable.end(), t.slabs_unreadable.begin(), t.slabs_unreadable.end());
  }
  s.slabs = t.slabs;
  // After read_settings: an answer in this reply names its listeners in this sample.
  s.listen_endpoints = t.listen_endpoints;

  const auto now = SteadyClock::now();
  if (!s.up) {
    if (t.stats_log.failed(s.error, now)) {
      spdlog::warn("memcached target {} is down: {}{}{}{}", describe(t.config), s.error,
                   s.failure == FailureKind::kNotTextProtocol ? "; " : "",
                   s.failure == FailureKind::kNotTextProtocol ? failure_kind_causes(s.failure)
                                                              : std::string_view(),
                   t.stats_log.note());
    }
  } else {
    if (t.stats_log.succeeded(now)) {
      spdlog::info("memcached target {} is up{}", describe(t.config), t.stats_log.note());
    }
    if (t.previous) {
      s.cpu_utilization_ratio =
          cpu_utilization(*t.previous, t.previous_time, s.stats, s.time, worker_threads(s));
    }
    t.previous = s.stats;
    t.previous_time = s.time;
    if (s.settings_error.empty()) {
      if (t.settings_log.succeeded(now)) {
        spdlog::info("memcached target {}: stats settings answers again{}", describe(t.config),
                     t.settings_log.note());
      }
    } else if (t.settings_log.failed(s.settings_error, now)) {
      spdlog::warn("memcached target {}: stats settings failed, {}: {}{}", describe(t.config),
                   s.settings ? "the values of its last answer stand" : "its series are left out",
                   s.settings_error, t.settings_log.note());
    }
    log_unreadable(t, s.unreadable, now);
  }

  if (t.probe_timer) {
    s.probe = t.last_probe;
    s.probe_latency = t.probe_latency;
    s.probe_failures = t.probe_failures;
  }
  return s;
}

void MemcachedCollector::read_settings(Target& t, StatsReply& reply, SteadyClock::time_point now) {
  // A new connection's first query asks them whether due or not: take them then too.
  if (reply.settings) {
    t.settings_unreadable.clear();
    t.settings = memcached_settings(*reply.settings, t.settings_unreadable);
    t.listen_endpoints =
        std::make_shared<const std::vector<Endpoint>>(memcached_listen_endpoints(*t.settings));
    t.settings_error.clear();
  } else if (t.settings_asked) {
    // The last answer stands (settings change only with a restart, which asks again) and is asked
    // again in a minute; without one, in the next run, as before they were cached.
    t.settings_error = reply.settings.error().message;
    if (!t.settings) return;
  } else {
    return;  // not asked: the last answer stands
  }
  t.settings_due = now + kSettingsInterval;
}

void MemcachedCollector::read_slabs(Target& t, StatsReply& reply, SteadyClock::time_point now) {
  if (t.config.slab_stats_interval.count() <= 0) return;
  // A new connection's first query asks them whether due or not: take them then too.
  if (!reply.items && !reply.slabs) {
    if (t.slabs_asked) {
      // No reply by the deadline (the rest of the run came): ask again in the next run.
      const std::string why = reply.items.error().message;
      if (t.slabs_log.failed(why, now)) {
        spdlog::warn(
            "memcached target {}: stats items and stats slabs failed, the slab series "
            "are left out: {}{}",
            describe(t.config), why, t.slabs_log.note());
      }
    }
    return;
  }
  auto slabs = std::make_shared<SlabStats>();
  t.slabs_unreadable.clear();
  std::string errors;
  for (auto [command, text, parse] :
       {std::tuple{"stats items", &reply.items, &parse_stats_items},
        std::tuple{"stats slabs", &reply.slabs, &parse_stats_slabs}}) {
    const Status st = *text ? parse(**text, *slabs, t.slabs_unreadable) : Status(text->error());
    if (!st)
      errors += (errors.empty() ? "" : "; ") + std::string(command) + ": " + st.error().message;
  }
  if (errors.empty()) {
    if (t.slabs_log.succeeded(now)) {
      spdlog::info("memcached target {}: stats items and stats slabs answer again{}",
                   describe(t.config), t.slabs_log.note());
    }
  } else if (t.slabs_log.failed(errors, now)) {
    spdlog::warn("memcached target {}: the series of what failed are left out: {}{}",
                 describe(t.config), errors, t.slabs_log.note());
  }
  t.slabs = std::move(slabs);
  t.slabs_due = now + t.config.slab_stats_interval;
}

void MemcachedCollector::log_unreadable(Target& t, const std::vector<UnreadableStat>& unreadable,
                                        SteadyClock::time_point now) {
  if (unreadable.empty()) {
    if (t.unreadable_log.succeeded(now)) {
      spdlog::info("memcached target {}: every stat is read again{}", describe(t.config),
                   t.unreadable_log.note());
    }
    return;
  }
  // The names decide when to log again; the values (which a counter changes every run) do not.
  // A line names the first few: a peer's reply of 256 KiB would otherwise make a line as long.
  constexpr std::size_t kNamed = 10;
  std::string names;
  std::string quoted;
  for (std::size_t i = 0; i < unreadable.size() && i < kNamed; ++i) {
    const UnreadableStat& u = unreadable[i];
    names += (names.empty() ? "" : " ") + u.command + ":" + escape_untrusted(u.name);
    quoted += (quoted.empty() ? "" : ", ") + escape_untrusted(u.name) + " " +
              quote_untrusted(u.value) + " (" + u.command + ")";
  }
  if (unreadable.size() > kNamed) {
    const std::string more = std::to_string(unreadable.size() - kNamed);
    names += " +" + more;
    quoted += " and " + more + " more";
  }
  if (t.unreadable_log.failed(names, now)) {
    spdlog::warn(
        "memcached target {}: cannot read {}; {} left out, with what derives from {}, the rest "
        "is read{}",
        describe(t.config), quoted, unreadable.size() == 1 ? "this stat is" : "these stats are",
        unreadable.size() == 1 ? "it" : "them", t.unreadable_log.note());
  }
}

std::vector<prometheus::MetricFamily> MemcachedCollector::Collect() const {
  if (samples_.empty()) return {};
  Families families = memcached_target_families(samples_);
  families.insert(families.end(), slab_families_.begin(), slab_families_.end());
  return labelled(std::move(families));
}

std::optional<Families> MemcachedCollector::target_families(std::string_view target) const {
  const auto t = std::find_if(targets_.begin(), targets_.end(),
                              [&](const Target& t) { return t.config.name == target; });
  const auto by_address = std::find_if(targets_.begin(), targets_.end(), [&](const Target& t) {
    return t.config.address.to_string() == target;
  });
  if (t == targets_.end() && by_address == targets_.end()) return std::nullopt;
  const std::string& name = (t != targets_.end() ? t : by_address)->config.name;
  Families out;
  for (const prometheus::MetricFamily& f : Collect()) {
    prometheus::MetricFamily only = f;
    only.metric.clear();
    for (const prometheus::ClientMetric& m : f.metric) {
      const bool ours = std::any_of(m.label.begin(), m.label.end(), [&](const auto& l) {
        return l.name == "target" && l.value == name;
      });
      if (ours) only.metric.push_back(m);
    }
    if (!only.metric.empty()) out.push_back(std::move(only));
  }
  return out;
}

void MemcachedCollector::start_probes() {
  probes_started_ = true;
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    Target& t = targets_[i];
    if (t.config.probe_interval.count() <= 0) continue;
    t.probe_timer =
        std::make_unique<PeriodicTimer>(io_, t.config.probe_interval, [weak = weak_from_this(), i] {
          if (auto self = weak.lock(); self && !self->stopped_) self->start_probe(i);
        });
    t.probe_timer->start();
  }
}

void MemcachedCollector::start_probe(std::size_t index) {
  Target& t = targets_[index];
  if (t.probe) return;  // the last one is still out: it ends by its own deadline
  const Duration timeout = std::min(t.config.probe_interval, timing_.probe_timeout_cap);
  t.probe = Probe::start(io_, t.connection->transport(), SteadyClock::now() + timeout,
                         [weak = weak_from_this(), index](const ProbeResult& r) {
                           if (auto s = weak.lock()) s->on_probe(index, r);
                         });
}

void MemcachedCollector::on_probe(std::size_t index, const ProbeResult& result) {
  if (stopped_) return;
  Target& t = targets_[index];
  t.probe.reset();
  t.last_probe = result;
  if (result.success) {
    t.probe_latency.observe(result.duration_seconds);
    if (t.probe_log.succeeded(result.at)) {
      spdlog::info("probe of memcached target {} succeeds again{}", describe(t.config),
                   t.probe_log.note());
    }
  } else {
    ++t.probe_failures;
    if (t.probe_log.failed(result.error, result.at)) {
      spdlog::warn("probe of memcached target {} failed: {}{}", describe(t.config), result.error,
                   t.probe_log.note());
    }
  }
}

void MemcachedCollector::overdue() {
  // Each connection still waiting calls on_reply synchronously; the last ends the run.
  const std::uint64_t run = run_;
  for (Target& t : targets_) {
    if (stopped_ || run != run_ || !done_) return;
    if (!t.reply) t.connection->expire();
  }
}

void MemcachedCollector::stop() {
  stopped_ = true;
  done_ = nullptr;
  for (Target& t : targets_) {
    t.connection->close();
    if (t.probe_timer) t.probe_timer->stop();
    if (t.probe) t.probe->cancel();
    t.probe.reset();
  }
}

}  // namespace mcb
