#!/usr/bin/env bash
# Makes docs/runbook.png, a screenshot of the runbook page /runbooks/MaxConnectionsNear as the
# daemon serves it during a real saturation: memcached (-c 64 -o no_maxconns_fast) and the built
# daemon in a private network namespace, 100 clients connecting at once, then headless Chromium
# (Debian's; `scripts/bootstrap --docs` installs it) once the alert fires. Needs root (unshare)
# and a build (scripts/build).
# Usage: docs/render_runbook.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != --inside ]; then
  command -v chromium >/dev/null ||
    { echo "render_runbook: no chromium; run scripts/bootstrap --docs" >&2; exit 1; }
  exec unshare --net "$0" --inside "$(realpath -m "${1:-docs/runbook.png}")"
fi
out=$2
work=$(mktemp -d /tmp/mcb-runbook-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip link set lo up

memcached -u root -l 127.0.0.1 -p 11211 -c 64 -o no_maxconns_fast &
pids+=($!)
cat >"$work/mcbacklogd.yaml" <<YAML
targets: [{ name: main, address: 127.0.0.1:11211 }]
web: { listen_address: "127.0.0.1:9741" }
YAML
"${BUILD_DIR:-build}/daemon/mcbacklogd" --config.file="$work/mcbacklogd.yaml" 2>"$work/daemon.log" &
pids+=($!)
for _ in $(seq 100); do curl -sf http://127.0.0.1:9741/-/ready >/dev/null && break; sleep 0.1; done

# 100 clients that connect and hold their connections: memcached stops accepting at its limit.
python3 - <<'PY' &
import socket, time
held = []
for _ in range(100):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", 11211))
    held.append(s)
time.sleep(600)
PY
pids+=($!)
for _ in $(seq 150); do
  curl -sf http://127.0.0.1:9741/alerts | grep -q '"name": *"MaxConnectionsNear"[^}]*"state": *"critical"' && break
  sleep 0.2
done
curl -sf http://127.0.0.1:9741/alerts |
  grep -q '"name": *"MaxConnectionsNear"[^}]*"state": *"critical"' ||
  { echo "render_runbook: MaxConnectionsNear did not fire" >&2; cat "$work/daemon.log" >&2; exit 1; }
sleep 2  # a few samples of evidence
chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/chromium" \
  --window-size=1100,1500 --screenshot="$out" http://127.0.0.1:9741/runbooks/MaxConnectionsNear \
  2>"$work/chromium.log" || { cat "$work/chromium.log" >&2; exit 1; }
echo "render_runbook: wrote $out"
