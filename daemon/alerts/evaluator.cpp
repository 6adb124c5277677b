#include "daemon/alerts/evaluator.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/families.hpp"
#include "common/text.hpp"
#include "daemon/alerts/alerts_json.hpp"

namespace mcb {

Evaluator::Evaluator(const Thresholds& thresholds) { set_thresholds(thresholds); }

void Evaluator::set_thresholds(const Thresholds& thresholds) {
  // The windows keep what the longest window (or the connections' trend span) needs.
  retention_ = std::chrono::seconds(60);
  for (const Rule& r : rules()) {
    const auto it = thresholds.find(r.name);
    AlertThreshold& th = thresholds_[static_cast<std::size_t>(r.alert)];
    th = it == thresholds.end() ? r.defaults : it->second;
    retention_ = std::max(retention_, th.window);
  }
  retention_ = std::min<Duration>(retention_, std::chrono::hours(24));
}

void Evaluator::judge(const Rule& rule, std::string_view subject, const SubjectLabel& label,
                      RuleInput input) {
  // The key is built in a buffer kept between calls: a known track costs no allocation.
  key_.assign(rule.name);
  key_ += '\x1f';
  key_ += subject;
  auto it = tracks_.find(key_);
  if (it == tracks_.end()) {
    it = tracks_.try_emplace(key_).first;
    it->second.alert = rule.alert;
    // A subject of another namespace has the namespace's label beside its own.
    AlertLabels& labels = it->second.labels;
    if (label.value != nullptr) labels.emplace_back(std::string(label.name), *label.value);
    if (!input.observation.netns.empty()) labels.emplace_back("netns", input.observation.netns);
  }
  Track& t = it->second;
  input.current = t.track.condition();
  const AlertThreshold& th = input.threshold;
  // Numbers missing from this sample are a gap unless memcached is gone (it refuses, or is not
  // memcached): a stalled one still holds its connections.
  bool gap = true;
  if (input.target != nullptr) {
    const MemcachedSample& m = *input.target->memcached;
    gap = m.up || m.failure == FailureKind::kNoReply || m.failure == FailureKind::kAtLimit;
  }
  const Level before = t.track.state();
  t.track.update(rule.check(input), th.for_, input.observation.now, input.observation.wall, gap);
  if (t.track.state() != before || t.log.left_out() > 0) {
    log_change(rule, t, before, input.observation.now, input.observation.wall);
  }
  t.seen = evaluation_;
  order_.push_back(&t);
}

void Evaluator::log_change(const Rule& rule, Track& t, Level before,
                           std::chrono::steady_clock::time_point now,
                           std::chrono::system_clock::time_point wall) {
  // The state, not the condition: a log line for each page or resolution, none while pending. A
  // peer can make an alert flap every sample: past the budget the changes are counted, and the
  // state is logged with that count once it has held for kSettled (or the budget allows), so the
  // log never shows a page that ended long ago as the last word.
  const Level state = t.track.state();
  const bool changed = state != before;
  const bool settled = !changed && wall - t.track.since() >= kSettled;
  if (!settled && !t.log.take(now, changed)) return;
  const int left_out = t.log.left_out();
  t.log.clear_left_out();
  // Label values and evidence may hold outside bytes (a device's name): escaped for the log.
  std::string subject;
  for (const auto& [name, value] : t.labels) {
    subject += fmt::format("{}{}={}", subject.empty() ? "{" : ", ", name, quote_untrusted(value));
  }
  if (!subject.empty()) subject += '}';
  const std::string was = left_out > 0
                              ? fmt::format("after {} changes not logged: it flaps", left_out)
                              : "was " + std::string(level_name(before));
  const auto& verdict = t.track.last();
  const bool worse = state > before || (state == before && state != Level::kOk);
  spdlog::log(worse ? spdlog::level::warn : spdlog::level::info, "alert {}{} is {} ({}): {}",
              rule.name, subject, level_name(state), was,
              verdict ? printable_or_escaped(verdict->evidence) : "no data");
}

void Evaluator::evaluate(std::span<const Observation> observations) {
  ++evaluation_;
  statuses_.reset();
  json_.reset();
  order_.clear();
  for (const Observation& o : observations) windows_.feed(o, retention_);
  for (const Rule& r : rules()) {
    const AlertThreshold& th = thresholds_[static_cast<std::size_t>(r.alert)];
    for (const Observation& o : observations) {
      switch (r.subject) {
        case Subject::kHost:
          host_key_.assign("\x1e");
          host_key_ += o.netns;
          judge(r, host_key_, {}, RuleInput{o, windows_, th});
          break;
        case Subject::kTarget:
          for (const TargetView& t : o.targets) {
            RuleInput in{o, windows_, th};
            in.target = &t;
            judge(r, t.memcached->target, {"target", &t.memcached->target}, in);
          }
          break;
        case Subject::kDevice:
          if (o.netdev == nullptr) break;
          for (const NetdevDevice& d : o.netdev->devices) {
            RuleInput in{o, windows_, th};
            in.device = &d;
            judge(r, d.counters.device, {"device", &d.counters.device}, in);
          }
          break;
      }
    }
  }
  // Subjects that went away (a target removed on reload, a NIC unplugged) leave with their track.
  std::erase_if(tracks_, [this](const auto& kv) { return kv.second.seen != evaluation_; });

  walk_reason_.reset();
  for (const Track* t : order_) {
    switch (t->alert) {
      case Alert::kConnectionSprawl:
      case Alert::kSlowClients:
      case Alert::kMaxConnectionsNear:
      case Alert::kAcceptQueueFilling:
      case Alert::kListenQueueOverflow:
        if (t->track.condition() != Level::kOk) {
          walk_reason_ = std::string(rule(t->alert).name) + " holds";
        }
        break;
      default:
        break;
    }
    if (walk_reason_) return;
  }
  walk_reason_ = connections_moved(observations);
}

std::optional<std::string> Evaluator::connections_moved(
    std::span<const Observation> observations) const {
  constexpr Duration kSpan = std::chrono::seconds(10);
  for (const Observation& o : observations) {
    for (const TargetView& t : o.targets) {
      const MemcachedSample& m = *t.memcached;
      const SubjectWindows& w = windows_.target(m.target);
      const auto limit = connection_limit(m);
      const double rise = std::max(10.0, limit ? 0.05 * *limit : 0.0);
      if (at(w, Series::kCurrConnections).growth(o.now, kSpan) >= rise) {
        return m.target + ": connections rising";
      }
      if (at(w, Series::kTotalConnections).rate(o.now, kSpan) >= 10) {
        return m.target + ": new connections";
      }
      if (at(w, Series::kRejectedConnections).increase(o.now, kSpan) > 0 ||
          at(w, Series::kListenDisabled).increase(o.now, kSpan) > 0) {
        return m.target + ": connections refused";
      }
      for (const ListenerSample* l : t.listeners) {
        if (l->listening && (l->queue_max == 0 || l->queue_peak * 10 >= l->queue_max)) {
          return listener_name(*l) + ": accept queue";
        }
      }
    }
  }
  return std::nullopt;
}

const std::vector<AlertStatus>& Evaluator::statuses() const {
  if (!statuses_) {
    statuses_.emplace();
    statuses_->reserve(order_.size());
    for (const Track* t : order_) {
      const Rule& r = rule(t->alert);
      const auto& verdict = t->track.last();
      AlertStatus s;
      s.name = std::string(r.name);
      s.labels = t->labels;
      s.state = t->track.state();
      s.condition = t->track.condition();
      s.since = t->track.since();
      s.active_since = t->track.active_since();
      s.verdict = verdict;
      s.cause = std::string(r.cause);
      s.remediation = verdict && !verdict->fix.empty() ? verdict->fix : std::string(r.remediation);
      statuses_->push_back(std::move(s));
    }
  }
  return *statuses_;
}

Level Evaluator::worst() const {
  Level w = Level::kOk;
  for (const Track* t : order_) w = worse(w, t->track.state());
  return w;
}

Level Evaluator::worst_condition() const {
  Level w = Level::kOk;
  for (const Track* t : order_) w = worse(w, t->track.condition());
  return w;
}

const std::string& Evaluator::json() const {
  if (!json_) {
    json_ = alerts_json(statuses());
    ++json_builds_;
  }
  return *json_;
}

std::vector<prometheus::MetricFamily> Evaluator::Collect() const {
  auto state = gauge("mcbacklog_alert_state",
                     "Firing state of each alert as the daemon evaluates it every sample: 0 ok, 1 "
                     "warning, 2 critical, once its condition held for `for` (or at once when a "
                     "resource runs out sooner). See /alerts for the evidence.");
  auto condition = gauge("mcbacklog_alert_condition",
                         "Level each alert's condition holds at in the last evaluation: 0 ok, 1 "
                         "warning, 2 critical. Above mcbacklog_alert_state while pending.");
  for (const Track* t : order_) {
    Labels labels{{"alert", std::string(rule(t->alert).name)}};
    for (const auto& [name, value] : t->labels) labels.push_back({name, value});
    state.add(static_cast<double>(static_cast<int>(t->track.state())), labels);
    condition.add(static_cast<double>(static_cast<int>(t->track.condition())), std::move(labels));
  }
  Families out;
  std::move(state).into(out);
  std::move(condition).into(out);
  return out;
}

}  // namespace mcb
