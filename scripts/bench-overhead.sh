#!/usr/bin/env bash
# Client overhead of `streamprobe run` against `streamprobe mock`, each pinned to its own core.
#
# For each concurrency C (requests n = 4 x C, at most 5000) it prints: measured TTFT minus the
# mock's ground truth (p50, p99), client CPU seconds per 1,000 requests, peak RSS, and the
# client's own scheduling lag p99 (`summary.client.lag_p99`; "(warned)" when it warned), and
# the kernel's share of the client's CPU.
# Usage: scripts/bench-overhead.sh [C ...]     (default: 1 100 1000 5000)
#        BENCH_WARMUP=1 scripts/bench-overhead.sh  (C warm-up requests open the connections first)
#        BENCH_CLIENT_CORES=0,1 scripts/bench-overhead.sh  (client unpinned: multi-threaded runtime)
# Not a test: numbers, for the README and release notes. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release --quiet
exec python3 scripts/bench_overhead.py "${@:-1 100 1000 5000}"
