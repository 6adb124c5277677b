#pragma once
// The Collector interface: one source of metrics (a file, a netlink socket, a peer).
//
// Ownership and threading: collectors are owned by the app through shared_ptr (asynchronous ones
// keep themselves alive in their completion handlers with shared_from_this). Every method is
// called on the event-loop thread only; no collector is thread-safe.
//
// A run: the scheduler calls collect(done) once per interval and never starts a run while the
// previous one is in flight. The collector calls `done` exactly once per run, on the loop thread:
//  - a synchronous collector (files) does its work inside collect() and calls done before it
//    returns;
//  - an asynchronous collector (a network peer) starts operations on its io_context and calls
//    done from a completion handler. It bounds every operation by a deadline, and ends the run
//    when overdue() says the next cycle has come, so a silent peer costs one cycle, never more.
//    A deadline no earlier than the next cycle costs nothing when the peer answers: the loop
//    wakes for it only if it is still pending then (a timer cancelled earlier still wakes it).
// done(error) means the run failed; the message is logged by the scheduler (rate-limited) and
// mcbacklog_collector_success{collector} becomes 0. The framework, not the collector, times runs.
//
// Snapshot: after a run the collector's Collect() (prometheus::Collectable) returns the metric
// families of that run and nothing older, so a series whose subject went away leaves /metrics.
// A failed run may keep the families that still say something (memcached_up 0) or none.
// Collect() does no I/O: it builds the families from the run's sample when /metrics is
// rendered, so a run that nobody scrapes formats nothing.
//
// stop() cancels in-flight work (shutdown, reload). After stop() the collector never calls a
// pending `done` again.

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "common/families.hpp"
#include "common/result.hpp"

namespace mcb {

class Collector : public prometheus::Collectable {
 public:
  using Done = std::function<void(Status)>;

  // Stable name: the `collector` label and the key under `collectors:` in the config.
  virtual std::string_view name() const = 0;

  virtual void collect(Done done) = 0;

  virtual void stop() {}

  // The scheduler's next cycle has come and this run has not called done: end it now, as its
  // deadlines would (its peers' operations failed), calling done before returning. The default
  // does nothing: the run stays in flight and misses the cycle.
  virtual void overdue() {}

  // A collector that watches another network namespace than the daemon's: every series it
  // exports, and its mcbacklog_collector_* series, carry netns="<label>". Set before the first
  // run; empty (the default) for the daemon's own namespace.
  void set_netns_label(std::string label) { netns_label_ = std::move(label); }
  const std::string& netns_label() const { return netns_label_; }
  // For logs: the name, and the namespace of another than the daemon's ("sysctl (netns pod1)").
  std::string described() const {
    std::string out(name());
    if (!netns_label_.empty()) out += " (netns " + netns_label_ + ")";
    return out;
  }

  // A collector of targets in several namespaces (memcached): a series whose `target` label is a
  // key of `by_target` gets netns="<value>". Set before the first run.
  void set_target_netns(std::map<std::string, std::string, std::less<>> by_target) {
    target_netns_ = std::move(by_target);
  }

 protected:
  // `families` with the netns labels above added: every Collect() passes its families through
  // here, so the labels cost nothing until /metrics is rendered and nothing at all without them.
  Families labelled(Families families) const {
    if (!netns_label_.empty()) add_label(families, "netns", netns_label_);
    if (!target_netns_.empty()) add_label_by(families, "target", target_netns_, "netns");
    return families;
  }

 private:
  std::string netns_label_;
  std::map<std::string, std::string, std::less<>> target_netns_;
};

}  // namespace mcb
