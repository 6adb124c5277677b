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

# overlay_root DIR [FILE...]: mounts at DIR/merged a copy-on-write view of this machine's root
# whose changes land in a tmpfs at DIR, with fresh /proc, /sys, /run and /tmp, and copies each
# FILE into /var/cache/mcbacklogd-test there (a file under the host's /tmp, as in a clone under
# /tmp, would be hidden by the fresh /tmp). Call it in a private mount namespace (unshare --mount
# --propagation private): everything goes when that ends.
overlay_root() {
  local root=$1 file
  mount -t tmpfs tmpfs "$root"
  mkdir "$root/upper" "$root/work" "$root/merged"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$root/upper,workdir=$root/work" "$root/merged"
  mount --rbind /dev "$root/merged/dev"
  mount -t proc proc "$root/merged/proc"
  mount -t sysfs sysfs "$root/merged/sys"
  mount -t tmpfs tmpfs "$root/merged/run"
  mount -t tmpfs tmpfs "$root/merged/tmp"
  mkdir -p "$root/merged/var/cache/mcbacklogd-test"
  for file in "${@:2}"; do cp "$file" "$root/merged/var/cache/mcbacklogd-test/"; done
}
