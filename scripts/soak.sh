#!/usr/bin/env bash
# Soak test (not in CI): 50 targets every 2 s against the mock with ~20% injected faults, for
# SOAK_MINUTES (default 30). Samples the daemon's RSS, open file descriptors and threads, the
# client's own scheduling lag (highest `streamprobe_client_lag_seconds` over the targets), and
# accounts for every scheduled tick (fired + skipped vs expected). At the end: the schedule lag
# of every burst (how late it fired, from the daemon's `burst finished` log lines) as p50, p99
# and max, and the machine's load. Loopback only; stops itself.
#
#   cargo build --release && scripts/soak.sh            # SOAK_MINUTES=30
#   SOAK_MINUTES=5 scripts/soak.sh
#
# Knobs: SOAK_TARGETS (50), SOAK_EVERY (2s), SOAK_CPUS (a `taskset -c` list for the daemon;
# unset: not pinned; the mock then runs on the other cores), SOAK_FAULTS (1; 0: none),
# SOAK_SCRAPE_EVERY (seconds between /metrics scrapes, as a Prometheus would; unset: one per
# sampled minute only; the scrapes' durations are reported at the end).
# Scale variant (issue 13): 200 targets every 10 s, the daemon on one core, for 10 minutes:
#
#   SOAK_TARGETS=200 SOAK_EVERY=10s SOAK_CPUS=1 SOAK_MINUTES=10 scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${STREAMPROBE:-$PWD/target/release/streamprobe}"
MINUTES="${SOAK_MINUTES:-30}"
TARGETS="${SOAK_TARGETS:-50}"
EVERY="${SOAK_EVERY:-2s}"
CPUS="${SOAK_CPUS:-}"
FAULTS="${SOAK_FAULTS:-1}"
every_s=$(python3 -c "import re,sys; m=re.fullmatch(r'(\d+)(ms|s|m)', sys.argv[1]); print(int(m[1]) * {'ms': 0.001, 's': 1, 'm': 60}[m[2]])" "$EVERY")
daemon_cmd=("$BIN")
mock_cmd=("$BIN")
if [ -n "$CPUS" ]; then
  daemon_cmd=(taskset -c "$CPUS" "$BIN")
  # The mock keeps off the daemon's cores when there are others.
  others=$(python3 -c "import os,sys; pinned={int(c) for c in sys.argv[1].split(',')}; print(','.join(str(c) for c in sorted(os.sched_getaffinity(0) - pinned)))" "$CPUS")
  [ -n "$others" ] && mock_cmd=(taskset -c "$others" "$BIN")
fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mock_port=$(free_port)
port=$(free_port)

# 20% of requests fail in one of several ways: errors, stalls, resets, in-band errors.
faults=(--fault 500:0.05 --fault 429:0.05 --fault stall:0.04 --fault reset:0.03 --fault error-event:0.03)
[ "$FAULTS" = 0 ] && faults=()
"${mock_cmd[@]}" mock --listen "127.0.0.1:$mock_port" --ttft 80ms --itl 5ms --tokens 20 --jitter 0.3 \
  "${faults[@]}" >"$work/mock.log" 2>&1 &
pids+=($!)

{
  echo "server: {listen: \"127.0.0.1:$port\", max_in_flight: 200}"
  echo "results: {dir: $work/results, keep_per_target: 20}"
  echo "defaults:"
  echo "  schedule: {every: $EVERY}"
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

"${daemon_cmd[@]}" serve -c "$work/soak.yaml" --log-format json >"$work/daemon.log" 2>&1 &
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
  client_lag=$(echo "$metrics" | awk '/^streamprobe_client_lag_seconds/ {if ($2 > m) m = $2} END {printf "%.1f ms", m * 1000}')
  printf "%6s %10s %6s %8s %6s %12s %9s %10s %8s %11s\n" "$min" "$((rss / 1024)) MB" "$fds" "$threads" \
    "$tasks" "$fired" "$skipped" "$requests" "$failed" "$client_lag"
}

if [ -n "${SOAK_SCRAPE_EVERY:-}" ]; then
  ( while kill -0 "$daemon" 2>/dev/null; do
      curl -fsS -o /dev/null -w "%{time_total}\n" "http://127.0.0.1:$port/metrics" >>"$work/scrapes" || true
      sleep "$SOAK_SCRAPE_EVERY"
    done ) &
  pids+=($!)
fi

start=$(date +%s)
printf "%6s %10s %6s %8s %6s %12s %9s %10s %8s %11s\n" "minute" "RSS" "fds" "threads" "tasks" "bursts" "skipped" "requests" "failed" "client lag"
for m in $(seq 1 "$MINUTES"); do
  sleep $((start + m * 60 - $(date +%s)))
  if ! kill -0 "$daemon" 2>/dev/null; then echo "daemon died"; tail -20 "$work/daemon.log"; exit 1; fi
  case $m in 1|2|5|10|15|20|25|30|"$MINUTES") sample "$m" ;; esac
done
elapsed=$(( $(date +%s) - start ))
echo "expected ticks ≈ $(python3 -c "print(int($elapsed / $every_s * $TARGETS))") (every $EVERY x $TARGETS targets over ${elapsed}s; the first fire of each target is spread over its first period)"
# How late bursts fired (the daemon's own schedule lag) and how loaded its client was.
python3 - "$work/daemon.log" <<'PY'
import json, sys
lags, client = [], []
for line in open(sys.argv[1]):
    try:
        fields = json.loads(line).get("fields", {})
    except ValueError:
        continue
    if fields.get("message") == "burst finished":
        lags.append(float(fields["schedule_lag_seconds"]))
        if fields.get("client_lag_seconds") is not None:
            client.append(float(fields["client_lag_seconds"]))
def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")
print(f"schedule lag over {len(lags)} bursts: p50 {pct(lags, .5) * 1000:.1f} ms, "
      f"p99 {pct(lags, .99) * 1000:.1f} ms, max {max(lags, default=float('nan')) * 1000:.1f} ms")
if client:
    print(f"client lag (each burst's p99) over {len(client)} bursts: p50 {pct(client, .5) * 1000:.1f} ms, "
          f"p99 {pct(client, .99) * 1000:.1f} ms, max {max(client) * 1000:.1f} ms")
PY
if [ -s "$work/scrapes" ]; then
  sort -n "$work/scrapes" | awk '{t[NR] = $1} END {printf "/metrics scrapes: %d, duration p50 %.1f ms, max %.1f ms\n", NR, t[int((NR + 1) / 2)] * 1000, t[NR] * 1000}'
fi
echo "daemon CPU: $(awk '{printf "%.1f s", ($14 + $15) / 100}' "/proc/$daemon/stat") over ${elapsed}s; load: $(uptime)"
