#!/usr/bin/env bash
# The package under a real systemd: boots systemd as PID 1 in namespaces of its own (pid, mount,
# network, uts, ipc, cgroup) on a throwaway overlay of this machine's root, installs the .deb
# there with dpkg, and checks what an operator would see:
#   - with a policy-rc.d that forbids it (an image build) postinst enables but does not start;
#   - otherwise postinst enabled and started mcbacklogd.service, active through READY=1, and an
#     upgrade restarts it;
#   - the daemon runs as a dynamic user with no capabilities, no new privileges and a seccomp
#     filter, and still reads every source: each collector succeeds (memcached.service runs next
#     to it, as on a real host); it raised its soft descriptor limit to the unit's hard one;
#   - systemd-analyze verify is clean and security rates the loaded unit 2.0 or lower;
#   - a target in another network namespace is down with the reason naming CAP_SYS_ADMIN under
#     the unit, and read with the packaged namespaces drop-in (the dynamic user with exactly
#     CAP_SYS_ADMIN and CAP_SYS_PTRACE, exposure 2.3 or lower), where discovery finds a memcached
#     in a second namespace and nothing twice;
#   - ARGS from /etc/default/mcbacklogd reach the daemon; systemctl reload rereads the
#     configuration (RELOADING=1 then READY=1 with the new status);
#   - with a web config in ARGS it serves HTTPS with basic auth as the dynamic user;
#   - a stalled event loop stops the watchdog pings, and systemd kills and restarts the daemon;
#   - systemctl stop ends it cleanly; dpkg --remove stops it, --purge removes its conffiles and
#     enablement.
# Nothing leaks out: the overlay's upper layer is a tmpfs in the private mount namespace, and
# systemd's cgroups are made under a cgroup of this test that is removed at the end.
#
# The build machine itself has no systemd as PID 1; this is how the unit is tested for real.
# Needs root, overlayfs, and systemd, memcached, curl, openssl and htpasswd installed
# (scripts/bootstrap).
# Usage: systemd_boot_test.sh PACKAGE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"
deb=$(package_in "$1")
# Where overlay_root puts the package inside the booted root.
inside_deb=/var/cache/mcbacklogd-test/$(basename "$deb")
work=$(mktemp -d /tmp/mcb-systemd-XXXXXX)
name=mcbacklogd-test-$$
failures=0
boot_pid=""
pid1=""

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
die() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root to boot systemd in namespaces (run scripts/test as root)"
[ -x /lib/systemd/systemd ] || die "systemd is not installed (scripts/bootstrap installs it)"

# Runs a command inside the booted system.
inside() { timeout 120 nsenter --target "$pid1" --all "$@"; }

# Waits up to $1 seconds for the command that follows to succeed.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

cleanup() {
  local status=$?
  if [ -n "$boot_pid" ]; then
    kill -KILL "$boot_pid" 2>/dev/null || true # unshare --kill-child takes PID 1 and all with it
    wait "$boot_pid" 2>/dev/null || true
  fi
  if [ -f "$work/cgroups" ]; then
    while read -r dir; do
      wait_for 10 sh -c "! find '$dir' -name cgroup.procs -exec cat {} + | grep . >/dev/null" || true
      find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null ||
        echo "warning: could not remove cgroup $dir" >&2
    done <"$work/cgroups"
  fi
  if [ $status -ne 0 ] && [ -s "$work/console" ]; then
    echo "--- systemd console (last 40 lines)" >&2
    tail -n 40 "$work/console" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Moves the calling shell into fresh child cgroups in every hierarchy, so that systemd (which
# gets a cgroup namespace rooted there) builds its tree below them and not in the host's.
enter_test_cgroups() {
  local id controllers path mount dir memberships
  memberships=$(cat /proc/self/cgroup) # read once: each move below changes it
  while IFS=: read -r id controllers path; do
    case "$controllers" in
      "") mount=/sys/fs/cgroup/unified ;;
      name=systemd) mount=/sys/fs/cgroup/systemd ;;
      *) mount=/sys/fs/cgroup/$controllers ;;
    esac
    [ -d "$mount" ] || mount=/sys/fs/cgroup # a pure cgroup v2 host
    [ -f "$mount/cgroup.procs" ] || continue
    dir="$mount${path%/}/$name"
    mkdir "$dir"
    echo "$dir" >>"$work/cgroups"
    if [ "$controllers" = cpuset ]; then # a v1 cpuset starts with no CPUs nor memory nodes
      cat "$(dirname "$dir")/cpuset.cpus" >"$dir/cpuset.cpus"
      cat "$(dirname "$dir")/cpuset.mems" >"$dir/cpuset.mems"
    fi
    echo "$BASHPID" >"$dir/cgroup.procs"
  done <<<"$memberships"
}

# PID 1 of the new namespaces: an overlay of / whose changes land in a tmpfs, a target that
# starts nothing but memcached, then systemd.
boot() {
  set -eu
  overlay_root "$work/root" "$deb"
  local m=$work/root/merged
  mount --bind "$work/console" "$m/dev/console"
  # Only what the test starts runs; none of this machine's enabled services.
  printf '[Unit]\nDescription=mcbacklogd test\nWants=memcached.service\n' \
    >"$m/etc/systemd/system/mcbacklogd-test.target"
  cd "$m"
  mkdir -p oldroot
  pivot_root . oldroot
  umount -l /oldroot
  exec env -i container=mcbacklogd-test /lib/systemd/systemd --system \
    --unit=mcbacklogd-test.target --show-status=no --log-target=journal
}

mkdir "$work/root"
: >"$work/console"
(
  enter_test_cgroups
  exec unshare --pid --fork --kill-child --mount --net --uts --ipc --cgroup \
    --propagation private bash -c "work='$work' deb='$deb'; $(declare -f overlay_root boot); boot"
) &
boot_pid=$!
wait_for 10 pgrep -P "$boot_pid" -x systemd || die "systemd did not start"
pid1=$(pgrep -P "$boot_pid" -x systemd)
wait_for 60 inside systemctl is-active --quiet memcached.service ||
  die "the booted system did not start memcached: $(inside systemctl status --no-pager memcached || true)"
echo "booted systemd $(inside systemctl --version | head -1 | cut -d' ' -f2) as PID 1 (pid $pid1 here)"

show() { inside systemctl show --value -p "$1" mcbacklogd.service; }
status_is() { [ "$(show StatusText)" = "$1" ]; }
restarted() { [ "$(show NRestarts)" -gt "$1" ] && [ "$(show ActiveState)" = active ]; }
metrics() { inside curl -sf --max-time 5 http://127.0.0.1:9741/metrics; }
unit_state() { inside systemctl "$1" mcbacklogd.service || true; }

echo "--- dpkg -i where policy-rc.d forbids starting services (as while building an image)"
inside sh -c 'printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
inside dpkg -i "$inside_deb" || die "dpkg -i failed"
[ "$(unit_state is-enabled)" = enabled ] || fail "postinst did not enable the unit"
[ "$(unit_state is-active)" = inactive ] || fail "postinst started the unit against policy-rc.d"
inside dpkg --purge mcbacklogd >/dev/null || die "dpkg --purge failed"
inside rm /usr/sbin/policy-rc.d

echo "--- dpkg -i"
inside dpkg -i "$inside_deb" || die "dpkg -i failed"
[ "$(unit_state is-enabled)" = enabled ] || fail "postinst did not enable the unit"
[ "$(unit_state is-active)" = active ] || fail "postinst did not start the unit"

echo "--- the running service"
[ "$(show Type)" = notify ] || fail "Type is $(show Type)"
status_is "sampling every 1s with the configuration from /etc/mcbacklogd/mcbacklogd.yaml" ||
  fail "READY=1 came without the expected STATUS: '$(show StatusText)'"
main_pid=$(show MainPID)
status=$(inside cat "/proc/$main_pid/status" || true)
uid=$(awk '/^Uid:/ {print $2}' <<<"$status")
[ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ] || fail "not a dynamic user: uid $uid"
grep -q '^CapEff:[[:space:]]*0000000000000000$' <<<"$status" || fail "has capabilities: $status"
grep -q '^CapBnd:[[:space:]]*0000000000000000$' <<<"$status" || fail "capability bounding set"
grep -q '^NoNewPrivs:[[:space:]]*1$' <<<"$status" || fail "NoNewPrivs is not set"
grep -q '^Seccomp:[[:space:]]*2$' <<<"$status" || fail "no seccomp filter"
# LimitNOFILE=1024:65536 starts it at a soft limit of 1024 (the hard one is 65536, or less where
# the machine allows less); the daemon raised its soft limit to the hard one through the filter.
limits=$(inside cat "/proc/$main_pid/limits" || true)
soft=$(awk '/^Max open files/ {print $4}' <<<"$limits")
hard=$(awk '/^Max open files/ {print $5}' <<<"$limits")
[ "$(show LimitNOFILESoft)" = 1024 ] || fail "LimitNOFILESoft is $(show LimitNOFILESoft)"
[ "${hard:-0}" -gt 1024 ] && [ "$soft" = "$hard" ] ||
  fail "the soft descriptor limit was not raised to the hard one: $(grep 'open files' <<<"$limits")"
[ "$(inside curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9741/-/ready)" = 200 ] ||
  fail "/-/ready is not 200"

# Every collector must succeed inside the sandbox: a file it cannot read, a socket family or a
# system call it is refused shows up here as mcbacklog_collector_success 0.
all_collectors_succeed() {
  local m
  m=$(metrics) || return 1
  grep -q '^mcbacklog_collector_success{' <<<"$m" || return 1
  ! grep -E '^mcbacklog_collector_success\{.*\} 0$' <<<"$m"
}
wait_for 15 all_collectors_succeed ||
  fail "a collector fails under the unit's sandbox: $(metrics | grep '^mcbacklog_collector_success')"
has_series() { metrics | grep -E "^$1\$" >/dev/null; }
# Kernel files, /proc/self, and memcached.service reached over TCP from inside the sandbox.
for series in 'mcbacklog_somaxconn [0-9]+' 'mcbacklog_listen_overflows_total [0-9]+' \
  'process_max_fds [0-9]+' 'memcached_up\{.*\} 1' 'mcbacklog_probe_success\{.*\} 1'; do
  wait_for 15 has_series "$series" || fail "/metrics has no series matching $series"
done
echo "collectors: $(metrics | grep -c '^mcbacklog_collector_success{') all succeeding"

echo "--- systemd-analyze"
out=$(inside systemd-analyze verify /lib/systemd/system/mcbacklogd.service 2>&1) ||
  fail "systemd-analyze verify failed"
[ -z "$out" ] || fail "systemd-analyze verify is not clean: $out"
out=$(inside systemd-analyze security --threshold=20 --no-pager mcbacklogd.service 2>&1) ||
  fail "the loaded unit's exposure is above 2.0: $(tail -1 <<<"$out")"
tail -1 <<<"$out"

echo "--- /etc/default/mcbacklogd and systemctl reload"
inside sed -i 's/^ARGS=.*/ARGS="--log.format=json"/' /etc/default/mcbacklogd
inside systemctl restart mcbacklogd.service || fail "restart failed"
# The reload adds a memcached on a unix socket in /run (mode 0666, as the README advises), which
# the sandboxed daemon must be able to connect to.
inside systemd-run --quiet --unit=memcached-unix -p User=memcache -p RuntimeDirectory=memcached-unix \
  /usr/bin/memcached -s /run/memcached-unix/memcached.sock -a 0666 -m 16
wait_for 10 inside test -S /run/memcached-unix/memcached.sock || fail "memcached-unix did not start"
inside sed -i -e 's/^interval: 1s/interval: 2s/' \
  -e '/^    probe_interval: 5s/a\  - { name: unix, address: "unix:/run/memcached-unix/memcached.sock" }' \
  /etc/mcbacklogd/mcbacklogd.yaml
inside systemctl reload mcbacklogd.service || fail "reload failed"
wait_for 10 status_is "sampling every 2s with the configuration from /etc/mcbacklogd/mcbacklogd.yaml" ||
  fail "after reload the status is '$(show StatusText)'"
[ "$(show ActiveState)" = active ] || fail "not active after reload: $(show ActiveState)"
journal=$(inside journalctl -u mcbacklogd.service -o cat --no-pager)
grep -q '"msg":"configuration reloaded from /etc/mcbacklogd/mcbacklogd.yaml"' <<<"$journal" ||
  fail "the journal has no JSON reload line: ARGS or the reload did not reach the daemon"
wait_for 15 has_series 'memcached_up\{target="unix"\} 1' ||
  fail "the daemon cannot reach memcached on a unix socket: $(metrics | grep '^memcached_up')"
wait_for 15 all_collectors_succeed || fail "a collector fails after the reload"

echo "--- TLS and basic auth under the sandbox"
# The dynamic user must read the key. README advises LoadCredential= for that; under this
# namespaced systemd the credentials directory stays root's (0700, no ACL), so here the
# throwaway key is made readable instead. What this shows: OpenSSL, the bcrypt thread and their
# system calls work as the dynamic user under the seccomp filter.
tls=/srv/mcbacklogd-tls
inside mkdir -p "$tls"
inside openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$tls/server.key" -out "$tls/server.crt" \
  2>/dev/null || fail "openssl could not make a certificate"
inside chmod 644 "$tls/server.key"
hash=$(inside htpasswd -nbBC 10 prometheus secret | cut -d: -f2)
inside sh -c "printf 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: %s\n' \
  '$hash' >$tls/web.yml"
inside sed -i "s|^ARGS=.*|ARGS=\"--log.format=json --web.config.file=$tls/web.yml\"|" /etc/default/mcbacklogd
inside systemctl restart mcbacklogd.service ||
  fail "restart with TLS failed: $(inside journalctl -u mcbacklogd.service -o cat --no-pager | tail -4)"
https() { inside curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$tls/server.crt" "$@" https://127.0.0.1:9741/metrics; }
answers_200() { [ "$(https -u prometheus:secret)" = 200 ]; }
wait_for 15 answers_200 || fail "no 200 over TLS with the right password: $(https -u prometheus:secret)"
[ "$(https)" = 401 ] || fail "without credentials over TLS: $(https)"
[ "$(https -u prometheus:wrong)" = 401 ] || fail "with a wrong password over TLS: $(https -u prometheus:wrong)"
[ "$(inside curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://127.0.0.1:9741/metrics)" = 000 ] ||
  fail "plain HTTP got an HTTP answer from the TLS port"
echo "TLS: 401 without and with a wrong password, 200 with the right one"
inside sed -i 's|^ARGS=.*|ARGS="--log.format=json"|' /etc/default/mcbacklogd

echo "--- memcached in other network namespaces: refused by the unit, allowed by the drop-in"
# Two pods' namespaces, each with a memcached of the memcache user: pod1 configured by name,
# pod2 for discovery to find.
for ns in pod1 pod2; do
  inside ip netns add "$ns" || die "ip netns add $ns failed"
  inside ip -n "$ns" link set lo up
  inside systemd-run --quiet --unit="memcached-$ns" -p User=memcache \
    -p NetworkNamespacePath="/run/netns/$ns" /usr/bin/memcached -l 127.0.0.1 -p 11211 -m 16
done
in_pod_answers() { inside ip netns exec "$1" bash -c 'exec 3<>/dev/tcp/127.0.0.1/11211'; }
for ns in pod1 pod2; do
  wait_for 10 in_pod_answers "$ns" || die "memcached in $ns did not start"
done
inside sed -i -e '/^    probe_interval: 5s/a\  - { name: pod1, address: "127.0.0.1:11211", netns: /run/netns/pod1 }' \
  /etc/mcbacklogd/mcbacklogd.yaml
# Plain HTTP again (the ARGS of the TLS check were put back above).
inside systemctl restart mcbacklogd.service || fail "restart failed"
wait_for 15 has_series 'memcached_up\{target="pod1",netns="pod1"\} 0' ||
  fail "pod1 is not down under the unprivileged unit: $(metrics | grep '^memcached_up')"
journal_names_the_capability() {
  inside journalctl -u mcbacklogd.service -o cat --no-pager | grep 'needs CAP_SYS_ADMIN' >/dev/null
}
wait_for 10 journal_names_the_capability || fail "the journal does not name CAP_SYS_ADMIN"
inside install -D -m 644 /usr/share/mcbacklogd/systemd/mcbacklogd-namespaces.conf \
  /etc/systemd/system/mcbacklogd.service.d/namespaces.conf
# The shipped configuration's discovery block, switched on.
discovery() { inside sed -i "/^discover:/,/^\$/ { s/enabled: .*/enabled: $1/; s/interval: [0-9a-z]*/interval: $2/ }" /etc/mcbacklogd/mcbacklogd.yaml; }
discovery true 1s
inside systemctl daemon-reload
inside systemctl restart mcbacklogd.service ||
  fail "restart with the drop-in failed: $(inside journalctl -u mcbacklogd.service -o cat --no-pager | tail -4)"
status=$(inside cat "/proc/$(show MainPID)/status" || true)
uid=$(awk '/^Uid:/ {print $2}' <<<"$status")
[ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ] || fail "with the drop-in, not a dynamic user: uid $uid"
# CAP_SYS_PTRACE is bit 19, CAP_SYS_ADMIN bit 21: those two and no other.
for set in CapEff CapBnd CapAmb; do
  grep -q "^$set:[[:space:]]*0000000000280000$" <<<"$status" || fail "with the drop-in, $set: $status"
done
wait_for 15 has_series 'memcached_up\{target="pod1",netns="pod1"\} 1' ||
  fail "with the drop-in pod1 is not read: $(metrics | grep '^memcached_up')"
wait_for 15 has_series 'mcbacklog_somaxconn\{netns="pod1"\} [0-9]+' ||
  fail "with the drop-in pod1's somaxconn is not read"
# pod2 is found; pod1 (configured) and memcached.service (the default target) are not found again.
pod2_pid=$(inside systemctl show --value -p MainPID memcached-pod2.service)
wait_for 15 has_series "memcached_up\\{target=\"memcached@[0-9]+:11211\",netns=\"pid:$pod2_pid\"\\} 1" ||
  fail "discovery did not find memcached in pod2: $(metrics | grep '^memcached_up')
$(inside journalctl -u mcbacklogd.service -o cat --no-pager | grep -E 'discovery|sampling every' | tail -5)"
[ "$(metrics | grep -c '^memcached_up{')" = 4 ] ||
  fail "a memcached was found twice: $(metrics | grep '^memcached_up')"
wait_for 15 all_collectors_succeed ||
  fail "a collector fails with the drop-in: $(metrics | grep '^mcbacklog_collector_success')"
out=$(inside systemd-analyze security --threshold=23 --no-pager mcbacklogd.service 2>&1) ||
  fail "with the drop-in the exposure is above 2.3: $(tail -1 <<<"$out")"
echo "namespaces drop-in: $(tail -1 <<<"$out")"
inside rm /etc/systemd/system/mcbacklogd.service.d/namespaces.conf
inside sed -i '/name: pod1/d' /etc/mcbacklogd/mcbacklogd.yaml
discovery false 30s
inside systemctl daemon-reload
inside systemctl restart mcbacklogd.service

echo "--- the watchdog"
inside mkdir -p /run/systemd/system/mcbacklogd.service.d
inside sh -c 'printf "[Service]\nWatchdogSec=2s\nRestartSec=100ms\n" >/run/systemd/system/mcbacklogd.service.d/watchdog.conf'
inside systemctl daemon-reload
inside systemctl restart mcbacklogd.service
stalled_pid=$(show MainPID)
restarts=$(show NRestarts)
inside kill -STOP "$stalled_pid" # the loop stops, and so do its pings
wait_for 30 restarted "$restarts" || fail "systemd did not restart the stalled daemon"
[ "$(show MainPID)" != "$stalled_pid" ] || fail "the stalled process still runs"
# journald may write systemd's line a moment after the restart.
journal_shows_watchdog() { inside journalctl -u mcbacklogd.service --no-pager | grep 'Watchdog timeout' >/dev/null; }
wait_for 10 journal_shows_watchdog || fail "the journal does not show the watchdog timeout"
echo "watchdog: restarted after a stall ($(show NRestarts) restart)"

echo "--- an upgrade (the same package again) restarts the running service"
old_pid=$(show MainPID)
inside dpkg -i "$inside_deb" >/dev/null || fail "reinstall failed"
[ "$(unit_state is-active)" = active ] && [ "$(show MainPID)" != "$old_pid" ] ||
  fail "postinst did not restart the service on upgrade"

echo "--- stop, remove, purge"
inside systemctl stop mcbacklogd.service
[ "$(show Result)" = success ] || fail "stop did not end cleanly: Result=$(show Result)"
inside systemctl start mcbacklogd.service
inside dpkg --remove mcbacklogd || fail "dpkg --remove failed"
[ "$(unit_state is-active)" != active ] || fail "still active after remove"
inside test -e /etc/mcbacklogd/mcbacklogd.yaml || fail "remove deleted a conffile"
inside test ! -e /usr/bin/mcbacklogd || fail "remove left the binary"
inside dpkg --purge mcbacklogd || fail "dpkg --purge failed"
for f in /etc/mcbacklogd /etc/default/mcbacklogd /etc/systemd/system/mcbacklogd.service \
  /etc/systemd/system/multi-user.target.wants/mcbacklogd.service; do
  inside test ! -e "$f" || fail "purge left $f"
done

if [ $failures -ne 0 ]; then
  echo "--- journal of mcbacklogd.service (systemd's lines and the daemon's)" >&2
  inside journalctl -u mcbacklogd.service --no-pager | tail -n 60 >&2 || true
  exit 1
fi
echo "all checks passed"
