#pragma once
// The metric families prometheus/memcached_exporter 0.16.0 exports, recorded as a fact for the
// tests that hold mcbacklogd's output against them: name, type as it exports the series, label
// names (mcbacklogd adds `target` to each), and which reply of memcached holds the source.
//
// Types are those of the series memcached_exporter writes, which its metric descriptions do not
// carry; where they differ from what the name suggests (memcached_uptime_seconds, the counters
// without _total, memcached_extstore_bytes_used) they are recorded as written.
// memcached_slab_mem_requested_bytes is written from both `stats items` (a counter) and, on
// versions that have it there, `stats slabs` (a gauge); the first is kept, as its registry does.

#include <array>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/metric_type.h>

namespace mcb::test {

// Where a family's value comes from; a family is exported only when memcached reports it.
enum class ExporterSource {
  kStats,     // `stats`
  kSettings,  // `stats settings` (the LRU crawler's, only while lru_crawler is yes)
  kItems,     // `stats items`, per slab class
  kSlabs,     // `stats slabs`, per slab class (memcached_malloced_bytes: its total_malloced)
  kTempLru,   // `stats items` of a memcached with a temporary LRU (-o temporary_ttl)
  kExtstore,  // `stats` of a memcached with extstore (-o ext_path)
  kProxy,     // `stats` of a memcached running its proxy
};

struct ExporterFamily {
  std::string_view name;
  prometheus::MetricType type;
  std::array<std::string_view, 3> labels;  // in order, "" after the last
  ExporterSource source;
};

namespace exporter_detail {
constexpr auto kC = prometheus::MetricType::Counter;
constexpr auto kG = prometheus::MetricType::Gauge;
using S = ExporterSource;
}  // namespace exporter_detail

inline constexpr std::array<ExporterFamily, 103> kMemcachedExporterFamilies = [] {
  using namespace exporter_detail;
  return std::array<ExporterFamily, 103>{{
      {"memcached_up", kG, {}, S::kStats},
      {"memcached_uptime_seconds", kC, {}, S::kStats},
      {"memcached_time_seconds", kG, {}, S::kStats},
      {"memcached_version", kG, {"version"}, S::kStats},
      {"memcached_process_user_cpu_seconds_total", kC, {}, S::kStats},
      {"memcached_process_system_cpu_seconds_total", kC, {}, S::kStats},
      {"memcached_read_bytes_total", kC, {}, S::kStats},
      {"memcached_written_bytes_total", kC, {}, S::kStats},
      {"memcached_current_connections", kG, {}, S::kStats},
      {"memcached_max_connections", kG, {}, S::kSettings},
      {"memcached_connections_total", kC, {}, S::kStats},
      {"memcached_connections_rejected_total", kC, {}, S::kStats},
      {"memcached_connections_yielded_total", kC, {}, S::kStats},
      {"memcached_connections_listener_disabled_total", kC, {}, S::kStats},
      {"memcached_current_bytes", kG, {}, S::kStats},
      {"memcached_limit_bytes", kG, {}, S::kStats},
      {"memcached_commands_total", kC, {"command", "status"}, S::kStats},
      {"memcached_current_items", kG, {}, S::kStats},
      {"memcached_items_total", kC, {}, S::kStats},
      {"memcached_items_evicted_total", kC, {}, S::kStats},
      {"memcached_items_reclaimed_total", kC, {}, S::kStats},
      {"memcached_item_too_large_total", kC, {}, S::kStats},
      {"memcached_item_no_memory_total", kC, {}, S::kStats},
      {"memcached_lru_crawler_enabled", kG, {}, S::kSettings},
      {"memcached_lru_crawler_sleep", kG, {}, S::kSettings},
      {"memcached_lru_crawler_to_crawl", kG, {}, S::kSettings},
      {"memcached_lru_crawler_maintainer_thread", kG, {}, S::kSettings},
      {"memcached_lru_crawler_hot_percent", kG, {}, S::kSettings},
      {"memcached_lru_crawler_warm_percent", kG, {}, S::kSettings},
      {"memcached_lru_crawler_hot_max_factor", kG, {}, S::kSettings},
      {"memcached_lru_crawler_warm_max_factor", kG, {}, S::kSettings},
      {"memcached_lru_crawler_starts_total", kC, {}, S::kStats},
      {"memcached_lru_crawler_reclaimed_total", kC, {}, S::kStats},
      {"memcached_lru_crawler_items_checked_total", kC, {}, S::kStats},
      {"memcached_lru_crawler_moves_to_cold_total", kC, {}, S::kStats},
      {"memcached_lru_crawler_moves_to_warm_total", kC, {}, S::kStats},
      {"memcached_lru_crawler_moves_within_lru_total", kC, {}, S::kStats},
      {"memcached_direct_reclaims_total", kC, {}, S::kStats},
      {"memcached_malloced_bytes", kG, {}, S::kSlabs},
      {"memcached_slab_current_items", kG, {"slab"}, S::kItems},
      {"memcached_slab_items_age_seconds", kG, {"slab"}, S::kItems},
      {"memcached_slab_items_crawler_reclaimed_total", kC, {"slab"}, S::kItems},
      {"memcached_slab_items_evicted_total", kC, {"slab"}, S::kItems},
      {"memcached_slab_items_evicted_nonzero_total", kC, {"slab"}, S::kItems},
      {"memcached_slab_items_evicted_time_seconds", kC, {"slab"}, S::kItems},
      {"memcached_slab_items_evicted_unfetched_total", kC, {"slab"}, S::kItems},
      {"memcached_slab_items_expired_unfetched_total", kC, {"slab"}, S::kItems},
      {"memcached_slab_items_outofmemory_total", kC, {"slab"}, S::kItems},
      {"memcached_slab_items_reclaimed_total", kC, {"slab"}, S::kItems},
      {"memcached_slab_items_tailrepairs_total", kC, {"slab"}, S::kItems},
      {"memcached_slab_items_moves_to_cold", kC, {"slab"}, S::kItems},
      {"memcached_slab_items_moves_to_warm", kC, {"slab"}, S::kItems},
      {"memcached_slab_items_moves_within_lru", kC, {"slab"}, S::kItems},
      {"memcached_slab_hot_items", kG, {"slab"}, S::kItems},
      {"memcached_slab_warm_items", kG, {"slab"}, S::kItems},
      {"memcached_slab_cold_items", kG, {"slab"}, S::kItems},
      {"memcached_slab_temporary_items", kG, {"slab"}, S::kTempLru},
      {"memcached_slab_hot_age_seconds", kG, {"slab"}, S::kItems},
      {"memcached_slab_warm_age_seconds", kG, {"slab"}, S::kItems},
      {"memcached_slab_lru_hits_total", kC, {"slab", "lru"}, S::kItems},
      {"memcached_slab_chunk_size_bytes", kG, {"slab"}, S::kSlabs},
      {"memcached_slab_chunks_per_page", kG, {"slab"}, S::kSlabs},
      {"memcached_slab_current_pages", kG, {"slab"}, S::kSlabs},
      {"memcached_slab_current_chunks", kG, {"slab"}, S::kSlabs},
      {"memcached_slab_chunks_used", kG, {"slab"}, S::kSlabs},
      {"memcached_slab_chunks_free", kG, {"slab"}, S::kSlabs},
      {"memcached_slab_chunks_free_end", kG, {"slab"}, S::kSlabs},
      {"memcached_slab_mem_requested_bytes", kC, {"slab"}, S::kItems},
      {"memcached_slab_commands_total", kC, {"slab", "command", "status"}, S::kSlabs},
      {"memcached_extstore_compact_lost_total", kC, {}, S::kExtstore},
      {"memcached_extstore_compact_rescued_total", kC, {}, S::kExtstore},
      {"memcached_extstore_compact_skipped_total", kC, {}, S::kExtstore},
      {"memcached_extstore_pages_allocated_total", kC, {}, S::kExtstore},
      {"memcached_extstore_pages_evicted_total", kC, {}, S::kExtstore},
      {"memcached_extstore_pages_reclaimed_total", kC, {}, S::kExtstore},
      {"memcached_extstore_pages_free", kG, {}, S::kExtstore},
      {"memcached_extstore_pages_used", kG, {}, S::kExtstore},
      {"memcached_extstore_objects_evicted_total", kC, {}, S::kExtstore},
      {"memcached_extstore_objects_read_total", kC, {}, S::kExtstore},
      {"memcached_extstore_objects_written_total", kC, {}, S::kExtstore},
      {"memcached_extstore_objects_used", kG, {}, S::kExtstore},
      {"memcached_extstore_bytes_evicted_total", kC, {}, S::kExtstore},
      {"memcached_extstore_bytes_written_total", kC, {}, S::kExtstore},
      {"memcached_extstore_bytes_read_total", kC, {}, S::kExtstore},
      {"memcached_extstore_bytes_used", kC, {}, S::kExtstore},
      {"memcached_extstore_bytes_fragmented", kG, {}, S::kExtstore},
      {"memcached_extstore_bytes_limit", kG, {}, S::kExtstore},
      {"memcached_extstore_io_queue_depth", kG, {}, S::kExtstore},
      {"memcached_accepting_connections", kG, {}, S::kStats},
      {"memcached_proxy_conn_requests_total", kC, {}, S::kProxy},
      {"memcached_proxy_conn_errors_total", kC, {}, S::kProxy},
      {"memcached_proxy_conn_oom_total", kC, {}, S::kProxy},
      {"memcached_proxy_req_active", kG, {}, S::kProxy},
      {"memcached_proxy_config_reloads_total", kC, {}, S::kProxy},
      {"memcached_proxy_config_reload_fails_total", kC, {}, S::kProxy},
      {"memcached_proxy_config_cron_runs_total", kC, {}, S::kProxy},
      {"memcached_proxy_config_cron_fails_total", kC, {}, S::kProxy},
      {"memcached_proxy_backend_total", kG, {}, S::kProxy},
      {"memcached_proxy_backend_marked_bad_total", kC, {}, S::kProxy},
      {"memcached_proxy_backend_failed", kG, {}, S::kProxy},
      {"memcached_proxy_request_failed_depth_total", kC, {}, S::kProxy},
      {"memcached_round_robin_fallback_total", kC, {}, S::kProxy},
      {"memcached_unexpected_napi_ids_total", kC, {}, S::kProxy},
  }};
}();

// Every way a text format body's memcached_* families differ from memcached_exporter's families
// of `sources`: a family missing, one memcached_exporter does not have, another type, other label
// names (mcbacklogd's `target` aside). Empty when they agree. Families outside `sources` may be
// present or not.
std::vector<std::string> exporter_differences(std::string_view metrics_text,
                                              const std::set<ExporterSource>& sources);

// The lines of `promtool check metrics` output other than its objection to memcached_exporter's
// counters whose names do not end in _total (memcached_uptime_seconds and six more), which
// mcbacklogd keeps as memcached_exporter writes them. Empty when the rest passes.
std::vector<std::string> promtool_problems(std::string_view output);

// The sources a default memcached 1.6.18 with items stored answers from: stats, stats settings,
// stats items and stats slabs.
inline const std::set<ExporterSource> kDefaultSources{
    ExporterSource::kStats, ExporterSource::kSettings, ExporterSource::kItems,
    ExporterSource::kSlabs};

}  // namespace mcb::test
