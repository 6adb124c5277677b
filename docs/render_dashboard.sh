#!/usr/bin/env bash
# Makes docs/dashboard.png, a static render of the Grafana dashboard's queries from real data:
# two memcached, the built daemon and Prometheus (scraping it every second with the shipped rules)
# in a private network namespace, the load phases of `render_dashboard.py drive` (about five
# minutes), then `render_dashboard.py render` over that time. Needs root (unshare), a build
# (scripts/build) and python3-matplotlib (scripts/bootstrap).
# Usage: [PHASE_SECONDS=80] docs/render_dashboard.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != --inside ]; then
  exec unshare --net --mount --propagation private "$0" --inside "${1:-docs/dashboard.png}"
fi
out=$2

work=$(mktemp -d /tmp/mcb-render-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  umount "$work/sys" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The namespace's devices: loopback, and a veth pair whose speed sysfs reports, with traffic
# sent to a neighbour that exists only in the ARP table.
ip link set lo up
ip link add veth0 type veth peer name veth1
ip addr add 10.200.0.1/24 dev veth0
ip link set veth0 up
ip link set veth1 up
ip neigh add 10.200.0.2 lladdr 02:00:00:00:00:02 dev veth0
mkdir "$work/sys"
mount -t sysfs sysfs "$work/sys"

memcached -u root -l 127.0.0.1 -p 11211 -m 16 -t 2 &
pids+=($!)
memcached -u root -l 127.0.0.1 -p 11311 -c 64 -b 64 -o no_maxconns_fast &
pids+=($!)

cat >"$work/mcbacklogd.yaml" <<YAML
targets:
  - { name: fast, address: "127.0.0.1:11211", probe_interval: 1s }
  - { name: strict, address: "127.0.0.1:11311", probe_interval: 1s }
collectors:
  netdev: { include: "^veth" }
paths: { sysfs: "$work/sys" }
YAML
build/daemon/mcbacklogd --config.file="$work/mcbacklogd.yaml" \
  --web.listen-address=127.0.0.1:9741 --log.level=warn &
pids+=($!)

rules=$PWD/packaging/prometheus
cat >"$work/prometheus.yml" <<YAML
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files:
  - "$rules/mcbacklogd.rules.yml"
  - "$rules/mcbacklogd-alerts.rules.yml"
scrape_configs:
  - job_name: mcbacklogd
    static_configs: [{ targets: ["127.0.0.1:9741"] }]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address=127.0.0.1:9090 --log.level=warn &
pids+=($!)
for _ in $(seq 100); do
  curl -sf 127.0.0.1:9090/-/ready >/dev/null && break
  sleep 0.2
done

start=$(date +%s)
/usr/bin/python3 docs/render_dashboard.py drive --fast 127.0.0.1:11211 --strict 127.0.0.1:11311 \
  --udp-to 10.200.0.2 --phase-seconds "${PHASE_SECONDS:-80}"
sleep 5
/usr/bin/python3 docs/render_dashboard.py render --prometheus http://127.0.0.1:9090 \
  --start "$start" --end "$(date +%s)" --out "$out"
