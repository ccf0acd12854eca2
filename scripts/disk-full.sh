#!/usr/bin/env bash
# A full results disk (a 64 KiB tmpfs): failed writes are counted and logged, the daemon keeps
# probing and serving, and writing resumes when space returns (the tmpfs is grown). Needs root
# (mount); CI runs it. Loopback only; cleans up after itself. Last line: "disk-full: PASS|FAIL".
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${STREAMPROBE:-$PWD/target/release/streamprobe}"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  umount "$work/results" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "disk-full: $*"; tail -5 "$work/daemon.log" || true; echo "disk-full: FAIL"; exit 1; }

mkdir "$work/results"
mount -t tmpfs -o size=64k tmpfs "$work/results" || fail "cannot mount a tmpfs (needs root)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mock=$(free_port); port=$(free_port)
"$BIN" mock --listen "127.0.0.1:$mock" --ttft 10ms --itl 1ms --tokens 200 >/dev/null 2>&1 &
pids+=($!)
cat >"$work/c.yaml" <<YAML
server: {listen: "127.0.0.1:$port"}
results: {dir: $work/results, include_text: true, keep_per_target: 1000}
defaults: {schedule: {every: 300ms}, run_on_start: true, concurrency: 4, total_requests: 8,
           body: {model: m, messages: [{role: user, content: hi}], stream: true}}
targets:
  - {name: full, url: "http://127.0.0.1:$mock/v1/chat/completions"}
YAML
"$BIN" serve -c "$work/c.yaml" >"$work/daemon.log" 2>&1 &
daemon=$!
pids+=($daemon)

metric() { curl -fsS "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 ~ "^"m {s+=$2} END {print s+0}'; }
wait_for() { # wait_for SECONDS COMMAND...
  local end=$(( $(date +%s) + $1 )); shift
  until "$@"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.2; done
}
failures_above() { [ "$(metric 'streamprobe_result_write_failures_total')" -gt "$1" ]; }
wait_for 30 failures_above 2 || fail "no write failures counted on a full disk"
grep -q "cannot write result file" "$work/daemon.log" || fail "the failure was not logged"
curl -fsS "http://127.0.0.1:$port/-/healthy" >/dev/null || fail "daemon stopped answering"
kill -0 "$daemon" || fail "daemon died"
leftovers=$(find "$work/results" -name '*.tmp*' | wc -l)
[ "$leftovers" -eq 0 ] || fail "$leftovers temporary files left behind"
bursts_then=$(metric 'streamprobe_bursts_total')

# Space returns.
mount -o remount,size=16m "$work/results"
before=$(find "$work/results" -name '*.json' | wc -l)
more_files() { [ "$(find "$work/results" -name '*.json' | wc -l)" -gt $((before + 2)) ]; }
wait_for 20 more_files || fail "writing did not resume when space returned"
[ "$(metric 'streamprobe_bursts_total')" -gt "$bursts_then" ] || fail "bursts stopped"
for f in $(find "$work/results" -name '*.json' -newer "$work/c.yaml"); do
  python3 -m json.tool "$f" >/dev/null || fail "half-written file $f"
done
echo "disk-full: PASS ($(metric 'streamprobe_result_write_failures_total') failed writes counted, writing resumed)"
