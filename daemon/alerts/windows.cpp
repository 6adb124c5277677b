#include "daemon/alerts/windows.hpp"

#include <algorithm>

#include "daemon/alerts/observation.hpp"

namespace mcb {

static_assert(static_cast<std::size_t>(Series::kAllowanceLinklocal) -
                      static_cast<std::size_t>(Series::kAllowanceBwIn) + 1 ==
                  kAllowanceCount,
              "one series per allowance, in Allowance order");

namespace {

template <class T>
std::optional<double> as_double(const std::optional<T>& v) {
  return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
}

void put(SubjectWindows& w, Series s, std::optional<double> value, SeriesWindow::Steady now,
         Duration retention, bool reset = false) {
  if (value) w[static_cast<std::size_t>(s)].add(now, *value, retention, reset);
}

}  // namespace

void SeriesWindow::add(Steady t, double value, Duration retention, bool reset) {
  double delta = 0;
  bool began_again = false;
  if (!points_.empty()) {
    const double previous = points_.back().value;
    began_again = reset || value < previous;
    delta = began_again ? value : value - previous;
  }
  points_.push_back(Point{t, value, delta, began_again});
  // Keep one point at or before the retention's start as the baseline.
  while (points_.size() > 2 && points_[1].t <= t - retention) points_.pop_front();
}

double SeriesWindow::increase(Steady now, Duration window) const {
  double sum = 0;
  for (std::size_t i = 1; i < points_.size(); ++i) {
    if (points_[i].t > now - window) sum += points_[i].delta;
  }
  return sum;
}

double SeriesWindow::increase_between(Steady from, Steady to) const {
  double sum = 0;
  for (std::size_t i = 1; i < points_.size(); ++i) {
    if (points_[i].t > from && points_[i].t <= to) sum += points_[i].delta;
  }
  return sum;
}

std::optional<SeriesWindow::Reset> SeriesWindow::last_reset(Steady now, Duration window) const {
  for (std::size_t i = points_.size(); i-- > 1;) {
    if (points_[i].t <= now - window) break;
    if (points_[i].reset) return Reset{points_[i - 1].t, points_[i].t};
  }
  return std::nullopt;
}

std::optional<SeriesWindow::Steady> SeriesWindow::first_after(Steady t) const {
  for (const Point& p : points_) {
    if (p.t > t) return p.t;
  }
  return std::nullopt;
}

double SeriesWindow::rate(Steady now, Duration window) const {
  if (points_.size() < 2) return 0;
  // The span from the baseline (or the window's start, if the baseline is older) to the newest.
  auto first = points_.front().t;
  for (std::size_t i = 1; i < points_.size(); ++i) {
    if (points_[i].t > now - window) {
      first = points_[i - 1].t;
      break;
    }
  }
  const auto span = points_.back().t - first;
  if (span < kMinRateSpan) return 0;
  return increase(now, window) / std::chrono::duration<double>(span).count();
}

std::optional<double> SeriesWindow::latest() const {
  if (points_.empty()) return std::nullopt;
  return points_.back().value;
}

std::optional<double> SeriesWindow::highest(Steady now, Duration window) const {
  std::optional<double> out;
  for (const Point& p : points_) {
    if (p.t > now - window && (!out || p.value > *out)) out = p.value;
  }
  return out;
}

double SeriesWindow::growth(Steady now, Duration window) const {
  if (points_.empty()) return 0;
  double lowest = points_.back().value;
  for (const Point& p : points_) {
    if (p.t > now - window) lowest = std::min(lowest, p.value);
  }
  return points_.back().value - lowest;
}

bool SeriesWindow::rising(int samples) const {
  if (samples < 1 || points_.size() < static_cast<std::size_t>(samples) + 1) return false;
  for (std::size_t i = points_.size() - static_cast<std::size_t>(samples); i < points_.size();
       ++i) {
    if (!(points_[i].value > points_[i - 1].value)) return false;
  }
  return true;
}

double SeriesWindow::slope(Steady now, Duration span) const {
  if (points_.size() < 2) return 0;
  const Point* first = &points_.back();
  for (const Point& p : points_) {
    if (p.t >= now - span) {
      first = &p;
      break;
    }
  }
  const double seconds = std::chrono::duration<double>(points_.back().t - first->t).count();
  return seconds > 0 ? (points_.back().value - first->value) / seconds : 0;
}

std::optional<SeriesWindow::Steady> SeriesWindow::first_time() const {
  if (points_.empty()) return std::nullopt;
  return points_.front().t;
}

std::optional<double> SeriesWindow::first_value() const {
  if (points_.empty()) return std::nullopt;
  return points_.front().value;
}

std::optional<SeriesWindow::Steady> SeriesWindow::last_time() const {
  if (points_.empty()) return std::nullopt;
  return points_.back().t;
}

Windows::Subject& Windows::fed(const std::string& key, Steady now) {
  ++lookups_;
  Subject& s = subjects_[key];
  s.fed = now;
  return s;
}

const SubjectWindows& Windows::find(const std::string& key) const {
  static const SubjectWindows kNone{};
  ++lookups_;
  const auto it = subjects_.find(key);
  return it == subjects_.end() ? kNone : it->second.windows;
}

namespace {

// Keys of the subjects of a network namespace: those of the daemon's own as they always were.
std::string host_key(std::string_view netns) {
  return netns.empty() ? std::string("host") : "host\x1f" + std::string(netns);
}
std::string listener_key(const std::string& name, std::string_view netns) {
  std::string key = "listener\x1f" + name;
  if (!netns.empty()) key += "\x1f" + std::string(netns);
  return key;
}

}  // namespace

const SubjectWindows& Windows::host(std::string_view netns) const { return find(host_key(netns)); }
const SubjectWindows& Windows::target(const std::string& name) const {
  return find("target\x1f" + name);
}
const SubjectWindows& Windows::listener(const std::string& name, std::string_view netns) const {
  return find(listener_key(name, netns));
}
const SubjectWindows& Windows::device(const std::string& name) const {
  return find("device\x1f" + name);
}

std::vector<std::pair<std::string, const SubjectWindows*>> Windows::gone_listeners(
    std::string_view netns, Steady now, Duration window) const {
  constexpr std::string_view kPrefix = "listener\x1f";
  std::vector<std::pair<std::string, const SubjectWindows*>> out;
  for (const auto& [key, subject] : subjects_) {
    if (!key.starts_with(kPrefix) || subject.fed >= now || subject.fed < now - window) continue;
    const std::string_view rest = std::string_view(key).substr(kPrefix.size());
    const std::size_t end = rest.find('\x1f');
    const std::string_view in = end == std::string_view::npos ? "" : rest.substr(end + 1);
    if (in == netns) out.emplace_back(std::string(rest.substr(0, end)), &subject.windows);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

void Windows::feed(const Observation& o, Duration retention) {
  const Steady now = o.now;
  if (o.netstat != nullptr || o.softnet != nullptr || o.cpu != nullptr) {
    SubjectWindows& w = fed(host_key(o.netns), now).windows;
    if (o.netstat != nullptr) {
      const NetstatSample& n = *o.netstat;
      put(w, Series::kListenOverflows, as_double(n.listen_overflows), now, retention);
      put(w, Series::kListenDrops, as_double(n.listen_drops), now, retention);
      put(w, Series::kSentSegments, as_double(n.out_segments), now, retention);
      put(w, Series::kRetransmittedSegments, as_double(n.retransmitted_segments), now, retention);
    }
    if (o.softnet != nullptr) {
      put(w, Series::kSoftnetDropped, static_cast<double>(o.softnet->dropped), now, retention);
      put(w, Series::kSoftnetSqueezed, static_cast<double>(o.softnet->time_squeeze), now,
          retention);
    }
    if (o.cpu != nullptr) {
      const CpuTimes& t = o.cpu->times;
      put(w, Series::kCpuSteal, static_cast<double>(t.steal), now, retention);
      put(w, Series::kCpuIowait, static_cast<double>(t.iowait), now, retention);
      put(w, Series::kCpuTotal, static_cast<double>(t.total()), now, retention);
    }
  }
  for (const TargetView& t : o.targets) {
    const MemcachedSample& m = *t.memcached;
    Subject& s = fed("target\x1f" + m.target, now);
    SubjectWindows& w = s.windows;
    // Probe counts are the daemon's own, kept across memcached restarts.
    if (m.probe_enabled) {
      put(w, Series::kProbeFailures, static_cast<double>(m.probe_failures), now, retention);
      put(w, Series::kProbeSuccesses, static_cast<double>(m.probe_latency.count), now, retention);
    }
    if (!m.up) continue;
    // A lower uptime, or another pid, than last time means memcached restarted: its counters
    // start over.
    const auto uptime = as_double(m.stats.uptime);
    const auto pid = as_double(m.stats.pid);
    const bool restarted =
        (uptime && s.uptime && *uptime < *s.uptime) || (pid && s.pid && *pid != *s.pid);
    if (uptime) s.uptime = uptime;
    if (pid) s.pid = pid;
    const MemcachedStats& st = m.stats;
    put(w, Series::kTotalConnections, as_double(st.total_connections), now, retention, restarted);
    put(w, Series::kRejectedConnections, as_double(st.rejected_connections), now, retention,
        restarted);
    put(w, Series::kListenDisabled, as_double(st.listen_disabled_num), now, retention, restarted);
    put(w, Series::kEvictions, as_double(st.evictions), now, retention, restarted);
    put(w, Series::kCurrConnections, as_double(st.curr_connections), now, retention);
  }
  if (o.sockets != nullptr) {
    for (const ListenerSample& l : o.sockets->listeners) {
      if (!l.listening) continue;
      SubjectWindows& w = fed(listener_key(listener_name(l), o.netns), now).windows;
      put(w, Series::kListenerDrops, as_double(l.drops), now, retention);
      put(w, Series::kListenerPeak, static_cast<double>(l.queue_peak), now, retention);
    }
  }
  if (o.netdev != nullptr) {
    for (const NetdevDevice& d : o.netdev->devices) {
      SubjectWindows& w = fed("device\x1f" + d.counters.device, now).windows;
      put(w, Series::kNicDrops,
          static_cast<double>(d.counters.receive_drops + d.counters.transmit_drops), now,
          retention);
      if (!d.driver) continue;
      for (std::size_t a = 0; a < kAllowanceCount; ++a) {
        put(w, allowance_series(static_cast<Allowance>(a)),
            as_double(d.driver->allowance_exceeded[a]), now, retention);
      }
    }
  }
  // Subjects not fed for a day (a target removed on reload, a NIC unplugged) are forgotten.
  std::erase_if(subjects_,
                [&](const auto& kv) { return kv.second.fed < now - std::chrono::hours(24); });
}

Series allowance_series(Allowance a) {
  return static_cast<Series>(static_cast<std::size_t>(Series::kAllowanceBwIn) +
                             static_cast<std::size_t>(a));
}

}  // namespace mcb
