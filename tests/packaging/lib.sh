# Sourced by the packaging tests.

# package_in DIR: prints the path of the one .deb in DIR; fails if there is not exactly one.
package_in() {
  local debs=("$1"/mcbacklogd_*.deb)
  if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ]; then
    echo "FAIL: expected one mcbacklogd .deb in $1" >&2
    return 1
  fi
  realpath "${debs[0]}"
}

# overlay_root DIR: mounts at DIR/merged a copy-on-write view of this machine's root whose
# changes land in a tmpfs at DIR, with fresh /proc, /sys, /run and /tmp. Call it in a private
# mount namespace (unshare --mount --propagation private): everything goes when that ends.
overlay_root() {
  mount -t tmpfs tmpfs "$1"
  mkdir "$1/upper" "$1/work" "$1/merged"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$1/upper,workdir=$1/work" "$1/merged"
  mount --rbind /dev "$1/merged/dev"
  mount -t proc proc "$1/merged/proc"
  mount -t sysfs sysfs "$1/merged/sys"
  mount -t tmpfs tmpfs "$1/merged/run"
  mount -t tmpfs tmpfs "$1/merged/tmp"
}
