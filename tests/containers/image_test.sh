#!/usr/bin/env bash
# Builds the images the other container tests run, into the storage they share, and checks the
# mcbacklogd image:
#   - scripts/image builds it from the Debian package of this build, on a base made by mmdebstrap
#     (no image registry is reachable, none is used);
#   - it runs as uid 9741 with /usr/bin/mcbacklogd as its entry point, exposes 9741 and is
#     labelled with the project's version; dpkg in it knows the package at the version built, and
#     every library the binary needs is there;
#   - it holds no apt, no compiler and no memcached.
# And makes the stand-in for the official memcached image that the manifests name
# (memcached:1.6-bookworm): Debian 12's memcached on an essential base, running memcached as
# its entry point as the official image does for arguments that start with "-".
# Both bases are made at once, under a tmpfs (the sandbox's /run): dpkg in mmdebstrap spends most
# of its time waiting for the disk otherwise.
# Usage: image_test.sh SOURCE_DIR WORK_DIR PACKAGE_DIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source_dir=$1 work=$2
isolate "$work/storage" host "$@"
# Each run starts from empty storage (cleanup_test.sh empties it after the run; a run killed
# before that leaves images that would pile up).
out=$(podman system reset --force 2>&1) || { echo "FAIL: podman system reset: $out" >&2; exit 1; }
echo "storage emptied in $SECONDS s"
deb=$(realpath "$3"/mcbacklogd_*.deb)
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
start=$SECONDS

version=$(sed -n 's/^project(mcbacklogd VERSION \([0-9.]*\).*/\1/p' "$source_dir/CMakeLists.txt")
image=localhost/mcbacklogd:$version
memcached_image=docker.io/library/memcached:1.6-bookworm

export TMPDIR=/run/mcbacklogd-test/tmp
mkdir -p "$TMPDIR"
echo "--- building $image (scripts/image) and $memcached_image (mmdebstrap) at once"
"$source_dir/scripts/image" --deb "$deb" >"$work/image.out" 2>"$work/image.log" &
image_job=$!
(
  mmdebstrap --quiet --variant=essential --include=memcached --dpkgopt=force-unsafe-io \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    bookworm "$TMPDIR/memcached-base.tar"
  echo "memcached's base made at $((SECONDS - start)) s"
) >"$work/memcached-base.log" 2>&1 &
memcached_job=$!
if ! wait $image_job; then
  cat "$work/image.log" >&2
  echo "FAIL: scripts/image failed" >&2
  exit 1
fi
[ "$(cat "$work/image.out")" = "$image" ] || fail "scripts/image printed '$(cat "$work/image.out")', not $image"
sed 's/^/  /' "$work/image.log"
if ! wait $memcached_job; then
  cat "$work/memcached-base.log" >&2
  echo "FAIL: mmdebstrap could not make memcached's base" >&2
  exit 1
fi
podman import --quiet --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' --change 'USER memcache' \
  --change 'ENTRYPOINT ["/usr/bin/memcached"]' --change 'EXPOSE 11211' \
  "$TMPDIR/memcached-base.tar" "$memcached_image" >/dev/null
rm -f "$TMPDIR/memcached-base.tar"
echo "  $(tail -1 "$work/memcached-base.log"), imported at $((SECONDS - start)) s"
echo "both images built in $((SECONDS - start)) s"

echo "--- $image"
inspect() { podman image inspect --format "$1" "$image"; }
[ "$(inspect '{{.Config.User}}')" = "9741:9741" ] || fail "User is '$(inspect '{{.Config.User}}')'"
[ "$(inspect '{{json .Config.Entrypoint}}')" = '["/usr/bin/mcbacklogd"]' ] ||
  fail "Entrypoint is $(inspect '{{json .Config.Entrypoint}}')"
[ "$(inspect '{{json .Config.Cmd}}')" = "null" ] || fail "Cmd is $(inspect '{{json .Config.Cmd}}')"
inspect '{{json .Config.ExposedPorts}}' | grep '"9741/tcp"' >/dev/null || fail "9741/tcp is not exposed"
[ "$(inspect '{{index .Config.Labels "org.opencontainers.image.version"}}')" = "$version" ] ||
  fail "the version label is not $version"
echo "size: $(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1 / 1e6}')"

in_image() { podman run --rm --network=none --entrypoint "$1" "$image" "${@:2}"; }
out=$(podman run --rm --network=none "$image" --version) || fail "--version failed: $out"
grep -q "$version" <<<"$out" || fail "--version says '$out'"
[ "$(in_image /usr/bin/id -u)" = 9741 ] || fail "the default user is not 9741"
[ "$(in_image /usr/bin/dpkg-query -W -f='${Version} ${Status}' mcbacklogd)" = \
  "$(dpkg-deb --field "$deb" Version) install ok installed" ] || fail "dpkg does not know the package built"
missing=$(in_image /usr/bin/ldd /usr/bin/mcbacklogd | grep 'not found' || true)
[ -z "$missing" ] || fail "libraries missing in the image: $missing"
# OpenSSL is opened with dlopen for TLS and basic auth, so ldd does not list it.
in_image /sbin/ldconfig -p | grep -q 'libssl\.so\.3 ' ||
  fail "the image lacks libssl.so.3, which the daemon opens for TLS and basic auth"
for tool in apt-get gcc memcached; do
  in_image /bin/sh -c "! command -v $tool" >/dev/null || fail "the image holds $tool"
done
# The example configuration of the package is where the daemon looks by default.
in_image /usr/bin/mcbacklogd --check-config >/dev/null || fail "the image's default configuration does not load"

echo "--- $memcached_image"
out=$(podman run --rm --network=none "$memcached_image" -V) || fail "memcached -V failed: $out"
grep -q '^memcached 1\.6\.' <<<"$out" || fail "memcached -V says '$out'"

[ $failures -eq 0 ] || exit 1
echo "all checks passed in $((SECONDS - start)) s"
