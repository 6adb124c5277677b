#!/usr/bin/env bash
# The package installed by dpkg into a throwaway root where systemd does not run, as in an image
# build or a container: a copy-on-write overlay of this machine's root in a private mount
# namespace, entered with chroot. There the maintainer scripts must record the enablement and
# start nothing, the installed binary must run and accept the installed configuration, the
# example Prometheus configuration must load the installed rules,
# systemd-analyze verify must be clean on the installed unit (every path it names exists), and
# a purge must leave nothing behind. Needs root and overlayfs.
# Usage: root_test.sh PACKAGE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"
deb=$(package_in "$1")
[ "$(id -u)" -eq 0 ] || { echo "FAIL: needs root for a mount namespace and chroot" >&2; exit 1; }
work=$(mktemp -d /tmp/mcb-root-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/root"

DEB=/var/cache/mcbacklogd-test/$(basename "$deb") unshare --mount --propagation private bash -c \
  "set -e; $(declare -f overlay_root); overlay_root '$work/root' '$deb'; exec chroot '$work/root/merged' bash -s" <<'INSIDE'
set -uo pipefail
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

echo "--- dpkg -i (no systemd running)"
dpkg -i "$DEB" || { echo "FAIL: dpkg -i" >&2; exit 1; }
[ -L /etc/systemd/system/multi-user.target.wants/mcbacklogd.service ] ||
  fail "postinst did not record the enablement"
[ "$(dpkg-query -W -f='${Status}' mcbacklogd)" = "install ok installed" ] || fail "not installed"

echo "--- the installed binary and configuration"
version=$(/usr/bin/mcbacklogd --version) || fail "--version failed"
echo "$version"
[[ "$version" =~ ^mcbacklogd\ [0-9]+\.[0-9]+\.[0-9]+\ \(revision\ [0-9a-f]+\)$ ]] ||
  fail "--version prints '$version'"
out=$(/usr/bin/mcbacklogd --check-config --config.file=/etc/mcbacklogd/mcbacklogd.yaml) ||
  fail "the installed configuration is refused: $out"
[ "$out" = "/etc/mcbacklogd/mcbacklogd.yaml: configuration is valid" ] || fail "--check-config: $out"
out=$(/usr/bin/mcbacklogd --check-config) || fail "without --config.file: $out"
[ "$out" = "/etc/mcbacklogd/mcbacklogd.yaml: configuration is valid" ] ||
  fail "the daemon does not read the installed file by default: $out"
# ARGS from the shipped /etc/default/mcbacklogd, as systemd passes them.
(. /etc/default/mcbacklogd && /usr/bin/mcbacklogd $ARGS --check-config >/dev/null) ||
  fail "the shipped ARGS are refused"

echo "--- the installed Prometheus and Alertmanager examples, with the rules where they name them"
examples=/usr/share/mcbacklogd/prometheus
out=$(promtool check config "$examples/prometheus.example.yml" 2>&1) || fail "promtool: $out"
grep -q "SUCCESS: 2 rule files found" <<<"$out" || fail "the example loads no rules: $out"
out=$(amtool check-config "$examples/alertmanager.example.yml" 2>&1) || fail "amtool: $out"

echo "--- systemd-analyze verify"
out=$(systemd-analyze verify /lib/systemd/system/mcbacklogd.service 2>&1) || fail "verify failed: $out"
[ -z "$out" ] || fail "verify is not clean: $out"

echo "--- dpkg --purge"
dpkg --purge mcbacklogd || fail "dpkg --purge"
for f in /usr/bin/mcbacklogd /etc/mcbacklogd /etc/default/mcbacklogd \
  /lib/systemd/system/mcbacklogd.service /etc/systemd/system/mcbacklogd.service \
  /etc/systemd/system/multi-user.target.wants/mcbacklogd.service; do
  [ ! -e "$f" ] && [ ! -L "$f" ] || fail "purge left $f"
done
[ $failures -eq 0 ] || exit 1
echo "all checks passed"
INSIDE
