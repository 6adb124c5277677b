#!/usr/bin/env bash
# The DaemonSet of packaging/kubernetes/daemonset.yaml, with the image of image_test.sh:
#   - its pod (the pod template and the ConfigMap, played by `podman kube play`, which plays no
#     DaemonSet): the daemon runs as root with exactly CAP_SYS_ADMIN and CAP_SYS_PTRACE
#     (effective, permitted and bounding; none inheritable or ambient), a read-only root and the
#     pod's own network namespace, and serves /-/ready and /metrics at the pod's address;
#   - what those privileges allow, row by row of the table in docs/containers.md. podman 4.3's
#     kube play ignores hostPID (4.5 implements it), so these run the image with `podman run`
#     and the settings the manifest asks for (manifests_test.sh holds the manifest to exactly
#     them) or fewer: the target is a host process of another user (uid 11211, like memcached)
#     in the host's network namespace, which has a device of its own.
#       without the host's PID namespace    its /proc/<pid> does not exist
#       uid 9741 without capabilities        reads /proc/<pid>/net/dev: the host's device
#       root without CAP_SYS_PTRACE         /proc/<pid>/ns/net cannot be opened
#       CAP_SYS_PTRACE without CAP_SYS_ADMIN opened, but setns is refused
#       both (the DaemonSet)                setns, and the host's device is seen
#       uid 9741 without capabilities        cannot open /proc/<pid>/ns/net
#   - discovery with those privileges (the ConfigMap's settings, limited to the test's own
#     namespace): a memcached of another user in a namespace of its own is found and read.
# Usage: daemonset_test.sh SOURCE_DIR WORK_DIR NODE_DIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source_dir=$1 work=$2 node_dir=$3
isolate "$work/storage" own "$@"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
start=$SECONDS
version=$(sed -n 's/^project(mcbacklogd VERSION \([0-9.]*\).*/\1/p' "$source_dir/CMakeLists.txt")
image=localhost/mcbacklogd:$version

node "$node_dir/manifests.mjs" pod-of "$source_dir/packaging/kubernetes/daemonset.yaml" >"$work/daemonset-pod.yaml"

trap 'podman kube down "$work/daemonset-pod.yaml" >/dev/null 2>&1 || true' EXIT
echo "--- podman kube play (the DaemonSet's pod)"
podman kube play "$work/daemonset-pod.yaml" >"$work/play.log" 2>&1 || { cat "$work/play.log" >&2; exit 1; }
pod=$(podman pod ps --format '{{.Name}}' | head -1)
daemon=$(podman ps --all --format '{{.Names}}' --filter "pod=$pod" | grep -- '-mcbacklogd$')
address=$(podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(
  podman pod inspect --format '{{.InfraContainerID}}' "$pod")")
echo "pod $pod at $address: container $daemon"
ready() { curl -sf --max-time 5 "http://$address:9741/-/ready"; }
if ! wait_for 60 "http://$address:9741/-/ready answers 200" ready; then
  podman logs "$daemon" >&2 || true
  exit 1
fi
metrics=$(curl -sf --max-time 5 "http://$address:9741/metrics") || fail "/metrics does not answer"
grep -q '^mcbacklog_build_info{' <<<"$metrics" || fail "/metrics has no mcbacklog_build_info"

pid=$(podman inspect --format '{{.State.Pid}}' "$daemon")
status=$(cat "/proc/$pid/status")
field() { awk -v f="$1:" '$1 == f { print $2 }' <<<"$status"; }
[ "$(field Uid)" = 0 ] || fail "the daemon's uid is $(field Uid)"
# CAP_SYS_PTRACE is bit 19, CAP_SYS_ADMIN bit 21.
for set in CapPrm CapEff CapBnd; do
  [ "$(field $set)" = 0000000000280000 ] || fail "$set is $(field $set), not SYS_ADMIN and SYS_PTRACE"
done
for set in CapInh CapAmb; do
  [ "$(field $set)" = 0000000000000000 ] || fail "$set is $(field $set)"
done
[ "$(readlink "/proc/$pid/ns/net")" != "$(readlink /proc/self/ns/net)" ] || fail "in the host's network namespace"
awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo" | grep -E '(^|,)ro(,|$)' >/dev/null || fail "the root file system is writable"
podman kube down "$work/daemonset-pod.yaml" >>"$work/play.log" 2>&1

echo "--- what the privileges allow"
setpriv --reuid=11211 --regid=11211 --clear-groups sleep 600 &
other=$!
ip link add mcbtest0 type veth peer name mcbtest1
# try NAME RESULT PODMAN_RUN_OPTIONS... -- COMMAND...: runs COMMAND in the image with the options
# and no capability but those added; RESULT "=TEXT" expects success printing TEXT, anything else
# a failure whose message contains RESULT.
try() {
  local name=$1 expected=$2 options=()
  shift 2
  while [ "$1" != -- ]; do options+=("$1"); shift; done
  shift
  local out
  if out=$(podman run --rm --network=none --read-only --cap-drop=all "${options[@]}" \
    --entrypoint "$1" "$image" "${@:2}" 2>&1); then
    [ "=$out" = "$expected" ] || fail "$name: succeeded with '$out', expected '$expected'"
  else
    [[ "$expected" != =* ]] && grep -qi -- "$expected" <<<"$out" || fail "$name: '$out', expected '$expected'"
  fi
  echo "$name: $out" | head -1
}
open=(/usr/bin/readlink --verbose "/proc/$other/ns/net")
enter=(/usr/bin/nsenter --net="/proc/$other/ns/net" /bin/grep -c mcbtest0: /proc/net/dev)
root=(--user 0:0)
try "without hostPID" "No such file" "${root[@]}" --cap-add=sys_admin,sys_ptrace -- "${open[@]}"
try "/proc/<pid>/net, no capability" "=1" --user 9741:9741 --pid=host -- \
  /bin/grep -c mcbtest0: "/proc/$other/net/dev"
try "root, no CAP_SYS_PTRACE" "Permission denied" "${root[@]}" --pid=host --cap-add=sys_admin -- "${open[@]}"
try "CAP_SYS_PTRACE, no CAP_SYS_ADMIN" "Operation not permitted" "${root[@]}" --pid=host \
  --cap-add=sys_ptrace -- "${enter[@]}"
try "the DaemonSet's" "=$(readlink /proc/self/ns/net)" "${root[@]}" --pid=host --cap-add=sys_admin,sys_ptrace -- "${open[@]}"
try "the DaemonSet's, setns" "=1" "${root[@]}" --pid=host --cap-add=sys_admin,sys_ptrace -- "${enter[@]}"
try "uid 9741, no capability" "Permission denied" --user 9741:9741 --pid=host -- "${open[@]}"
kill $other

echo "--- discovery with the DaemonSet's privileges"
# memcached as another user in a network namespace of its own, as in a pod; the daemon in the
# image, as root with the DaemonSet's two capabilities and the host's PIDs, finds it and reads it
# there. The ConfigMap's settings, limited to that namespace (other tests' memcached run beside).
unshare -n sh -c 'ip link set lo up && exec setpriv --reuid=11211 --regid=11211 --clear-groups \
  /usr/bin/memcached -U 0 -l 127.0.0.1 -p 11211 -m 16' &
pod_mc=$!
in_pod_answers() { nsenter --net="/proc/$pod_mc/ns/net" bash -c 'exec 3<>/dev/tcp/127.0.0.1/11211'; }
wait_for 10 "memcached in its namespace" in_pod_answers || fail "memcached did not start"
mc_pid=$(pgrep -P "$pod_mc" -x memcached || echo "$pod_mc")
inode=$(stat -L -c %i "/proc/$mc_pid/ns/net")
config=$work/daemonset-config.yaml
awk '/^  mcbacklogd.yaml: [|]/ { on = 1; next } /^---/ { on = 0 } on' \
  "$source_dir/packaging/kubernetes/daemonset.yaml" | sed 's/^    //' >"$config"
grep -q '^  enabled: true' "$config" || fail "the ConfigMap does not turn discovery on: $(cat "$config")"
sed -i -e 's/^  interval: 30s/  interval: 1s/' -e "/^  grace:/a\\  only_netns: [/proc/$mc_pid/ns/net]" "$config"
printf 'web:\n  listen_address: "127.0.0.1:9751"\n' >>"$config"
podman run -d --name discover --network=host --read-only --cap-drop=all --user 0:0 --pid=host \
  --cap-add=sys_admin,sys_ptrace -v "$config:/etc/mcbacklogd/mcbacklogd.yaml:ro" "$image" \
  --config.file=/etc/mcbacklogd/mcbacklogd.yaml >/dev/null
found() {
  curl -sf --max-time 5 http://127.0.0.1:9751/metrics |
    grep "^memcached_up{target=\"memcached@$inode:11211\",netns=\"pid:$mc_pid\"} 1$" >/dev/null
}
wait_for 30 "the discovered memcached is up" found ||
  fail "not discovered: $(curl -sf --max-time 5 http://127.0.0.1:9751/metrics | grep '^memcached_up'; podman logs discover 2>&1 | tail -5)"
podman logs discover 2>&1 | grep "discovery: added memcached@$inode:11211 (pid $mc_pid" >/dev/null ||
  fail "the log does not say what discovery added: $(podman logs discover 2>&1 | tail -5)"
podman rm -f discover >/dev/null
kill "$pod_mc" 2>/dev/null || true

[ $failures -eq 0 ] || exit 1
echo "all checks passed in $((SECONDS - start)) s"
