#!/usr/bin/env bash
# Empties the image storage the container tests shared (a few hundred MB of images), once they
# are done, and checks that it is empty.
# Usage: cleanup_test.sh SOURCE_DIR WORK_DIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source_dir=$1 work=$2
isolate "$work/storage" host "$@"
out=$(podman system reset --force 2>&1) || { echo "FAIL: podman system reset: $out" >&2; exit 1; }
left=$(podman images --quiet)
[ -z "$left" ] || { echo "FAIL: images left after the reset: $left" >&2; exit 1; }
echo "storage emptied in $SECONDS s"
