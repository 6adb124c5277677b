#!/usr/bin/env bash
# packaging/kubernetes/sidecar.yaml, as shipped, played by `podman kube play` with the images of
# image_test.sh, and mcbacklogd scraped from the host (the test's own network namespace) at the
# pod's address:
#   - memcached_up 1: the daemon reaches memcached inside the pod;
#   - the pod's kernel, not the host's: the host's net.core.somaxconn is set to 333 first, the
#     pod's stays at a new namespace's 4096, and memcached's listener (which the host does not
#     have) is seen with its max queue; then memcached is stopped (SIGSTOP) and more connections
#     are opened than its accept queue holds: the daemon in the pod counts listen overflows while
#     the host's counter stays at 0;
#   - the manifest's securityContext holds: the daemon runs as 9741 with no capability,
#     no_new_privs and a read-only root, in the pod's network namespace; it stays within the
#     manifest's memory limit and answers the liveness probe's path.
# Usage: sidecar_test.sh SOURCE_DIR WORK_DIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source_dir=$1 work=$2
isolate "$work/storage" own "$@"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
start=$SECONDS
manifest=$source_dir/packaging/kubernetes/sidecar.yaml

sysctl -q -w net.core.somaxconn=333
trap 'podman kube down "$manifest" >/dev/null 2>&1 || true' EXIT
echo "--- podman kube play sidecar.yaml"
podman kube play "$manifest" >"$work/play.log" 2>&1 || { cat "$work/play.log" >&2; exit 1; }
pod=$(podman pod ps --format '{{.Name}}' | head -1)
container() { podman ps --all --format '{{.Names}}' --filter "pod=$pod" | grep -- "-$1\$"; }
daemon=$(container mcbacklogd) memcached=$(container memcached)
address=$(podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(
  podman pod inspect --format '{{.InfraContainerID}}' "$pod")")
echo "pod $pod at $address: containers $daemon, $memcached (up in $((SECONDS - start)) s)"

metrics=""
scrape() { metrics=$(curl -sf --max-time 5 "http://$address:9741/metrics"); }
listener_max() {
  metric "$metrics" 'mcbacklog_accept_queue_max{address="0.0.0.0",port="11211"}' ||
    metric "$metrics" 'mcbacklog_accept_queue_max{address="::",port="11211"}'
}
# memcached answers, and the daemon has seen its listener (a sample after memcached started).
up() {
  scrape && [ "$(metric "$metrics" 'memcached_up{target="memcached"}')" = 1 ] && listener_max >/dev/null
}
if ! wait_for 60 "memcached_up{target=\"memcached\"} 1 and its listener at http://$address:9741/metrics" up; then
  podman logs "$daemon" >&2 || true
  podman logs "$memcached" >&2 || true
  exit 1
fi
echo "memcached_up 1 after $((SECONDS - start)) s"

echo "--- the pod's kernel, not the host's"
[ "$(cat /proc/sys/net/core/somaxconn)" = 333 ] || fail "the host's somaxconn is not 333"
[ "$(metric "$metrics" mcbacklog_somaxconn)" = 4096 ] ||
  fail "mcbacklog_somaxconn is $(metric "$metrics" mcbacklog_somaxconn || echo absent), not the pod's 4096"
max=$(listener_max || true)
[ "$max" = 1024 ] || fail "memcached's listener max queue is '${max:-absent}', not min(-b 1024, somaxconn 4096)"

podman kill --signal STOP "$memcached" >/dev/null
# Twice the queue: the first 1025 connections fill it, the kernel drops the rest.
python3 - "$address" 2048 <<'EOF' &
import socket, sys, time
address, count = sys.argv[1], int(sys.argv[2])
sockets = []
for _ in range(count):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex((address, 11211))
    sockets.append(s)
time.sleep(120)
EOF
load=$!
overflowed() {
  scrape && awk '{ exit !($1 > 0) }' <<<"$(metric "$metrics" mcbacklog_listen_overflows_total)"
}
wait_for 60 "mcbacklog_listen_overflows_total above 0 in the pod" overflowed ||
  fail "no overflow counted: $(grep -E '^mcbacklog_(listen|accept)' <<<"$metrics")"
echo "pod: $(grep -E '^mcbacklog_listen_overflows_total|^mcbacklog_accept_queue_(length|peak)' <<<"$metrics" | tr '\n' ' ')"
host_overflows=$(netstat_counter ListenOverflows)
echo "host: ListenOverflows $host_overflows"
[ "$host_overflows" = 0 ] || fail "the host's namespace counted $host_overflows overflows"
kill $load
podman kill --signal CONT "$memcached" >/dev/null

echo "--- the daemon's privileges"
pid=$(podman inspect --format '{{.State.Pid}}' "$daemon")
status=$(cat "/proc/$pid/status")
field() { awk -v f="$1:" '$1 == f { print $2 }' <<<"$status"; }
[ "$(field Uid)" = 9741 ] || fail "the daemon's uid is $(field Uid)"
[ "$(field Gid)" = 9741 ] || fail "the daemon's gid is $(field Gid)"
for set in CapInh CapPrm CapEff CapBnd CapAmb; do
  [ "$(field $set)" = 0000000000000000 ] || fail "$set is $(field $set)"
done
[ "$(field NoNewPrivs)" = 1 ] || fail "no_new_privs is not set"
# The manifest's memory limit is 128 MiB; the daemon has sampled for a while and served scrapes.
rss_kb=$(field VmRSS)
echo "the daemon's resident memory: $((rss_kb / 1024)) MiB"
[ "$rss_kb" -lt $((128 * 1024)) ] || fail "the daemon uses ${rss_kb} kB, above the manifest's 128 MiB limit"
curl -sf --max-time 5 "http://$address:9741/-/healthy" >/dev/null || fail "/-/healthy (the liveness probe) does not answer 200"
awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo" | grep -E '(^|,)ro(,|$)' >/dev/null || fail "the root file system is writable"
[ "$(readlink "/proc/$pid/ns/net")" != "$(readlink /proc/self/ns/net)" ] || fail "the daemon runs in the host's network namespace"
[ "$(readlink "/proc/$pid/ns/net")" = "$(readlink "/proc/$(podman inspect --format '{{.State.Pid}}' "$memcached")/ns/net")" ] ||
  fail "the daemon and memcached are in different network namespaces"

[ $failures -eq 0 ] || exit 1
echo "all checks passed in $((SECONDS - start)) s"
