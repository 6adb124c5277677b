#!/usr/bin/env bash
# The Debian package as dpkg-deb and lintian see it: control fields, dependencies that cover
# every library the binary links, the exact file list, conffiles, maintainer scripts, the unit
# and man page matching the sources, and lintian clean.
# Usage: deb_test.sh PACKAGE_DIR SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"
deb=$(package_in "$1")
src=$2
work=$(mktemp -d /tmp/mcb-deb-XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
field() { dpkg-deb --field "$deb" "$1"; }

echo "--- control fields ($(basename "$deb"))"
[ "$(field Package)" = mcbacklogd ] || fail "Package is $(field Package)"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture"
version=$(sed -n 's/^project(mcbacklogd VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[[ "$(field Version)" =~ ^${version//./\\.}-[0-9]+$ ]] || fail "Version $(field Version), project $version"
[ "$(field Section)" = net ] || fail "Section is $(field Section)"
[[ "$(field Maintainer)" =~ ^.+\ \<.+@.+\>$ ]] || fail "Maintainer is '$(field Maintainer)'"
[[ "$(field Description)" == "memcached listen backlog monitor and Prometheus exporter"$'\n'* ]] ||
  fail "Description: $(field Description)"
[ "$(field Suggests)" = "memcached, prometheus" ] || fail "Suggests is $(field Suggests)"
[ -z "$(field Recommends)" ] || fail "Recommends would install a second memcached: $(field Recommends)"

# dpkg-shlibdeps must have covered every library the binary needs: the package that ships each
# one on this machine, or a name it provides (libspdlog1.10 provides libspdlog1.10-fmt9), is in
# Depends. libssl.so.3 too: the binary opens it with dlopen when TLS or basic auth is configured.
dpkg-deb -x "$deb" "$work/root"
depends=", $(field Depends),"
echo "Depends: ${depends:2:-1}"
for soname in libssl.so.3 \
  $(readelf -d "$work/root/usr/bin/mcbacklogd" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p'); do
  library=$(realpath "$(ldconfig -p | awk -v s="$soname" '$1 == s {print $NF; exit}')")
  # dpkg knows a library by the path its package used: /usr/lib/... or, before merged /usr, /lib/...
  owner=$({ dpkg -S "$library" || dpkg -S "${library#/usr}"; } 2>/dev/null | cut -d: -f1 | head -1)
  names="$owner $(dpkg-query -W -f='${Provides}' "$owner" | tr -d ,)"
  covered=no
  for name in $names; do
    [[ "$depends" == *", $name "* || "$depends" == *", $name,"* ]] && covered=yes
  done
  [ $covered = yes ] || fail "$soname (package $owner) is not in Depends"
done

echo "--- files"
expected="/etc/default/mcbacklogd
/etc/mcbacklogd/mcbacklogd.yaml
/lib/systemd/system/mcbacklogd.service
/usr/bin/mcbacklogd
/usr/share/doc/mcbacklogd/README.md
/usr/share/doc/mcbacklogd/changelog.Debian.gz
/usr/share/doc/mcbacklogd/copyright
/usr/share/mcbacklogd/systemd/mcbacklogd-namespaces.conf
/usr/share/man/man1/mcbacklogd.1.gz"
# The docs the README links: every Markdown file and picture of docs/.
docs=$(cd "$src/docs" && find . -maxdepth 1 -type f \( -name '*.md' -o -name '*.png' \) |
  sed "s|^\.|/usr/share/doc/mcbacklogd/docs|")
expected+=$'\n'"$docs"
# Rules and the dashboard, once they exist in the sources, are shipped without their tests.
for dir in prometheus grafana; do
  [ -d "$src/packaging/$dir" ] || continue
  shipped=$(cd "$src/packaging/$dir" && find . -type f -not -path './tests/*' | sed "s|^\.|/usr/share/mcbacklogd/$dir|")
  expected+=$'\n'"$shipped"
done
actual=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|' | sort)
diff <(sort <<<"$expected") <(echo "$actual") || fail "the file list differs (< expected, > shipped)"
[ "$(dpkg-deb -c "$deb" | awk '$6 == "./usr/bin/mcbacklogd" {print $1 " " $2}')" = "-rwxr-xr-x root/root" ] ||
  fail "/usr/bin/mcbacklogd is not an executable owned by root"
cmp -s "$work/root/lib/systemd/system/mcbacklogd.service" "$src/systemd/mcbacklogd.service" ||
  fail "the shipped unit differs from systemd/mcbacklogd.service"
cmp -s "$work/root/etc/mcbacklogd/mcbacklogd.yaml" "$src/config/mcbacklogd.example.yaml" ||
  fail "the shipped configuration differs from config/mcbacklogd.example.yaml"
! readelf -S "$work/root/usr/bin/mcbacklogd" | grep '\.symtab' >/dev/null || fail "the binary is not stripped"

echo "--- conffiles and maintainer scripts"
dpkg-deb -e "$deb" "$work/control"
diff <(printf '/etc/default/mcbacklogd\n/etc/mcbacklogd/mcbacklogd.yaml\n') \
  <(sort "$work/control/conffiles") || fail "conffiles differ"
for script in postinst prerm postrm; do
  [ -x "$work/control/$script" ] || { fail "$script is missing or not executable"; continue; }
  sh -n "$work/control/$script" || fail "$script: syntax error"
done
grep -q 'deb-systemd-helper enable "$unit"' "$work/control/postinst" || fail "postinst does not enable"
grep -q 'deb-systemd-invoke "$action" "$unit"' "$work/control/postinst" || fail "postinst does not start"
grep -q 'deb-systemd-invoke stop mcbacklogd.service' "$work/control/prerm" || fail "prerm does not stop"
grep -q 'deb-systemd-helper purge "$unit"' "$work/control/postrm" || fail "postrm does not purge"
# Nothing is started or stopped where systemd does not run.
for script in postinst prerm; do
  grep -B3 'deb-systemd-invoke' "$work/control/$script" | grep '\[ -d /run/systemd/system \]' >/dev/null ||
    fail "$script calls deb-systemd-invoke without checking that systemd runs"
done

echo "--- man page"
man_page=$(zcat "$work/root/usr/share/man/man1/mcbacklogd.1.gz" | sed 's/\\-/-/g')
for flag in $("$work/root/usr/bin/mcbacklogd" --help | grep -oE '^ +(-h, )?--[a-z.-]+' | grep -oE -- '--[a-z.-]+'); do
  grep -q -- "$flag" <<<"$man_page" || fail "the man page does not document $flag"
done

echo "--- lintian"
# initial-upload-closes-no-bugs is about uploads to Debian's own archive (an ITP bug to close).
out=$(lintian --fail-on error,warning --suppress-tags initial-upload-closes-no-bugs "$deb" 2>&1) ||
  fail "lintian found errors or warnings"
grep -v 'running with root privileges' <<<"$out" || true

[ $failures -eq 0 ] || exit 1
echo "all checks passed"
