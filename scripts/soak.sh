#!/usr/bin/env bash
# Soak test (not in CI): 50 targets every 2 s against the mock with ~20% injected faults, for
# SOAK_MINUTES (default 30). Samples the daemon's RSS, open file descriptors and threads, and
# accounts for every scheduled tick (fired + skipped vs expected). Loopback only; stops itself.
#
#   cargo build --release && scripts/soak.sh            # SOAK_MINUTES=30
#   SOAK_MINUTES=5 scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${STREAMPROBE:-$PWD/target/release/streamprobe}"
MINUTES="${SOAK_MINUTES:-30}"
TARGETS="${SOAK_TARGETS:-50}"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mock_port=$(free_port)
port=$(free_port)

# 20% of requests fail in one of several ways: errors, stalls, resets, in-band errors.
"$BIN" mock --listen "127.0.0.1:$mock_port" --ttft 80ms --itl 5ms --tokens 20 --jitter 0.3 \
  --fault 500:0.05 --fault 429:0.05 --fault stall:0.04 --fault reset:0.03 --fault error-event:0.03 \
  >"$work/mock.log" 2>&1 &
pids+=($!)

{
  echo "server: {listen: \"127.0.0.1:$port\", max_in_flight: 200}"
  echo "results: {dir: $work/results, keep_per_target: 20}"
  echo "defaults:"
  echo "  schedule: {every: 2s}"
  echo "  concurrency: 2"
  echo "  total_requests: 4"
  echo "  timeout: 10s"
  echo "  idle_timeout: 1s"
  echo "  body: {model: m, messages: [{role: user, content: hi}], stream: true, stream_options: {include_usage: true}}"
  echo "targets:"
  for i in $(seq 1 "$TARGETS"); do
    echo "  - {name: soak-$i, url: \"http://127.0.0.1:$mock_port/v1/chat/completions\"}"
  done
} >"$work/soak.yaml"

"$BIN" serve -c "$work/soak.yaml" >"$work/daemon.log" 2>&1 &
daemon=$!
pids+=($daemon)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && break
  sleep 0.1
done

sample() {
  local min=$1
  local rss fds threads fired skipped
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$daemon/status")
  threads=$(awk '/Threads/ {print $2}' "/proc/$daemon/status")
  fds=$(ls "/proc/$daemon/fd" | wc -l)
  metrics=$(curl -fsS "http://127.0.0.1:$port/metrics")
  fired=$(echo "$metrics" | awk '/^streamprobe_bursts_total/ {s+=$2} END {print s+0}')
  skipped=$(echo "$metrics" | awk '/^streamprobe_bursts_skipped_total/ {s+=$2} END {print s+0}')
  requests=$(echo "$metrics" | awk '/^streamprobe_requests_total/ {s+=$2} END {print s+0}')
  failed=$(echo "$metrics" | awk '/^streamprobe_requests_total/ && !/outcome="success"/ {s+=$2} END {print s+0}')
  tasks=$(echo "$metrics" | awk '/^streamprobe_runtime_alive_tasks/ {print $2}')
  printf "%6s %10s %6s %8s %6s %12s %9s %10s %8s\n" "$min" "$((rss / 1024)) MB" "$fds" "$threads" \
    "$tasks" "$fired" "$skipped" "$requests" "$failed"
}

start=$(date +%s)
printf "%6s %10s %6s %8s %6s %12s %9s %10s %8s\n" "minute" "RSS" "fds" "threads" "tasks" "bursts" "skipped" "requests" "failed"
for m in $(seq 1 "$MINUTES"); do
  sleep $((start + m * 60 - $(date +%s)))
  if ! kill -0 "$daemon" 2>/dev/null; then echo "daemon died"; tail -20 "$work/daemon.log"; exit 1; fi
  case $m in 1|2|5|10|15|20|25|30|"$MINUTES") sample "$m" ;; esac
done
elapsed=$(( $(date +%s) - start ))
echo "expected ticks ≈ $((elapsed / 2 * TARGETS)) (every 2 s x $TARGETS targets over ${elapsed}s; the first fire of each target is spread over its first period)"
