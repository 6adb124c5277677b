#!/usr/bin/env bash
# Times one sockdiag poll (kernel filter, no filter, /proc/net/tcp, LISTEN-only) at 1k, 10k and
# 18k connections and prints a Markdown table. Run as root: it makes a network namespace.
# Usage: bench/sockdiag_poll.sh [--runs N] [--smoke]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build >/dev/null
exec "${BUILD_DIR:-build}/bench/sockdiag_bench" "$@"
