# Sourced by the container tests: podman in a sandbox of the test's own, so that a test neither
# reads nor changes the machine's containers, networks or firewall, and leaves no process behind.
#
# Usage, first thing in a test script:
#   source "$(dirname "$0")/lib.sh"
#   source_dir=...   # the source tree
#   isolate STORAGE_DIR NETWORK "$@"
# isolate re-executes the script in new mount and PID namespaces, and with NETWORK "own" a new
# network namespace (unshare), then sets up podman there:
#   - network: with "own", the test's own namespace is the "host" of its pods (loopback up;
#     netavark makes its bridge and firewall rules here, and they vanish with the namespace).
#     "host" keeps the machine's, for a test that downloads (mmdebstrap) and runs no pod;
#   - PID: when the script ends, or is killed, the kernel kills every process it started,
#     containers and conmon included;
#   - mount: a tmpfs on /run holds podman's run-time state (container state, network
#     configuration, the pods' namespace files), fresh for each test; images persist in
#     STORAGE_DIR, which the tests of one run share (one at a time: ctest's RESOURCE_LOCK podman);
#   - podman reads packaging/container/containers.conf (as scripts/image does) with the settings
#     of this sandbox added, a storage.conf naming STORAGE_DIR, and a registries.conf with no
#     registry at all: an image that is not in STORAGE_DIR fails at once instead of being pulled.

# The kernel's own answers, read in the test's namespace.
netstat_counter() { # netstat_counter FIELD: TcpExt FIELD of this namespace's /proc/net/netstat
  awk -v f="$1" '$1 == "TcpExt:" && !n { for (i = 2; i <= NF; i++) h[i] = $i; n = 1; next }
                 $1 == "TcpExt:" { for (i = 2; i <= NF; i++) if (h[i] == f) print $i }' /proc/net/netstat
}

# metric TEXT SERIES: the value of SERIES (written as in the exposition, labels in order) in TEXT.
metric() {
  awk -v s="$2" '$1 == s { print $2; found = 1 } END { exit !found }' <<<"$1"
}

# wait_for SECONDS DESCRIPTION COMMAND...: runs COMMAND every 0.5 s until it succeeds; fails the
# test naming DESCRIPTION after SECONDS (a bound for a broken build, never a timing claim).
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local end=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then
      echo "FAIL: after ${seconds} s: $what" >&2
      return 1
    fi
    sleep 0.5
  done
}

isolate() {
  local storage network=$2
  storage=$(realpath -m "$1")
  shift 2
  if [ -z "${MCBACKLOGD_ISOLATED:-}" ]; then
    [ "$(id -u)" -eq 0 ] || { echo "FAIL: the container tests need root (podman, unshare)" >&2; exit 1; }
    for tool in podman unshare runc netavark; do
      command -v "$tool" >/dev/null || [ -x "/usr/lib/podman/$tool" ] ||
        { echo "FAIL: $tool is missing: run scripts/bootstrap" >&2; exit 1; }
    done
    local namespaces=(--mount --pid --fork --mount-proc)
    [ "$network" = own ] && namespaces+=(--net)
    # --kill-child: if unshare itself is killed (a ctest timeout), so is the namespace's init.
    MCBACKLOGD_ISOLATED=1 exec unshare "${namespaces[@]}" --kill-child --propagation private \
      "$0" "$@"
  fi
  mount -t tmpfs -o mode=0755 tmpfs /run
  if [ "$network" = own ]; then ip link set lo up; fi
  local conf=/run/mcbacklogd-test
  mkdir -p "$conf" "$storage"
  # The shipped settings, with this sandbox's: cgroups managed directly (no systemd here), events
  # in a file, networks in the tmpfs.
  sed '/^\[engine\]/a cgroup_manager = "cgroupfs"\nevents_logger = "file"' \
    "$source_dir/packaging/container/containers.conf" >"$conf/containers.conf"
  printf '\n[network]\nnetwork_backend = "netavark"\nnetwork_config_dir = "%s/networks"\n' \
    "$conf" >>"$conf/containers.conf"
  printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s/storage"\n' \
    "$storage" "$conf" >"$conf/storage.conf"
  printf 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n' >"$conf/registries.conf"
  export CONTAINERS_CONF=$conf/containers.conf
  export CONTAINERS_STORAGE_CONF=$conf/storage.conf
  export CONTAINERS_REGISTRIES_CONF=$conf/registries.conf
  # Whatever a killed run left in the storage's database is gone with its namespaces: forget it.
  podman pod rm --all --force >/dev/null 2>&1 || true
  podman rm --all --force >/dev/null 2>&1 || true
}
