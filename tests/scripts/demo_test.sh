#!/usr/bin/env bash
# scripts/demo as a user runs it, in a private network namespace so that its memcached on
# 127.0.0.1:11211 and the daemon on :9741 are its own: the daemon answers /alerts and diagnose,
# and SIGTERM (then, in a second run, SIGINT) to the script's process id stops the daemon and the
# memcached the script started. The install and build steps are replaced by no-ops over the
# built tree (the suite has built it; bootstrap is checked by every run of scripts/test).
# Usage: demo_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
source_dir=$1
build_dir=$2
if [ "${IN_NETNS:-}" != 1 ]; then
  exec env IN_NETNS=1 unshare --net --map-root-user "$0" "$@"
fi
ip link set lo up
work=$(mktemp -d /tmp/mcb-demo-XXXXXX)
started=() # every process a run started, killed whatever happens
trap 'kill -KILL "${started[@]}" 2>/dev/null || :; rm -rf "$work"' EXIT
mkdir "$work/scripts"
cp "$source_dir/scripts/demo" "$work/scripts/"
printf '#!/bin/sh\nexit 0\n' >"$work/scripts/bootstrap"
cp "$work/scripts/bootstrap" "$work/scripts/build"
chmod +x "$work/scripts/"*
ln -s "$build_dir" "$work/build"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
wait_for() { # SECONDS COMMAND...: true once COMMAND succeeds within SECONDS
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}
# Started from another folder, as "from any folder" promises.
run_and_stop() { # SIGNAL
  local signal=$1 demo daemon memcached
  (cd / && exec "$work/scripts/demo" --web.listen-address=127.0.0.1:9741) >"$work/demo.out" 2>&1 &
  demo=$!
  started+=("$demo")
  wait_for 30 curl -sf http://127.0.0.1:9741/-/ready ||
    { fail "the daemon did not get ready: $(cat "$work/demo.out")"; kill -KILL "$demo"; return; }
  daemon=$(pgrep -P "$demo" -x mcbacklogd) || fail "no daemon child"
  memcached=$(pgrep -P "$demo" -x memcached) || fail "no memcached child"
  for pid in "${daemon:-}" "${memcached:-}"; do [ -z "$pid" ] || started+=("$pid"); done
  grep -q 'demo: starting memcached on 127.0.0.1:11211' "$work/demo.out" || fail "no memcached started"
  wait_for 15 sh -c "curl -sf http://127.0.0.1:9741/metrics | grep '^memcached_up{.*} 1' >/dev/null" ||
    fail "memcached_up is not 1"
  curl -sf http://127.0.0.1:9741/alerts | grep '"MaxConnectionsNear"' >/dev/null || fail "/alerts lacks the alerts"
  # The command the demo prints, as printed.
  cmd=$(sed -n 's/^  \(.*mcbacklogd diagnose --from-daemon\).*/\1/p' "$work/demo.out")
  [ -n "$cmd" ] || fail "the demo does not show diagnose"
  status=0
  out=$(cd "$work" && $cmd --web.listen-address=127.0.0.1:9741) || status=$?
  [ "$status" -le 1 ] || fail "diagnose exits $status: $out"
  grep -q "MaxConnectionsNear" <<<"$out" || fail "diagnose prints no verdicts: $out"

  kill "-$signal" "$demo"
  wait_for 30 sh -c "! kill -0 $demo" || fail "the demo still runs 30 s after SIG$signal"
  [ -z "${daemon:-}" ] || ! kill -0 "$daemon" 2>/dev/null || fail "SIG$signal to the demo left the daemon running"
  [ -z "${memcached:-}" ] || ! kill -0 "$memcached" 2>/dev/null || fail "SIG$signal to the demo left memcached running"
  wait "$demo" 2>/dev/null || true
}
run_and_stop TERM
run_and_stop INT
[ "$failures" -eq 0 ] || exit 1
echo "PASS: the demo runs from any folder and stops everything it started"
