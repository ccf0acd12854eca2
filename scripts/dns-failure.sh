#!/usr/bin/env bash
# A name that does not resolve is a `connect` failure with a clear reason, in bounded time.
# Runs `run` inside a fresh network namespace (root; CI runs it) that has only a loopback
# interface, so the lookup fails locally and no query leaves the machine.
# Last line: "dns-failure: PASS|FAIL".
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${STREAMPROBE:-$PWD/target/release/streamprobe}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
timeout 60 unshare -n sh -c "ip link set lo up 2>/dev/null || true; \
  '$BIN' run -u http://api.streamprobe-test.invalid/v1/chat/completions -n 2 -p 1 \
    --no-progress -o '$out/r.json'" >"$out/report.txt" 2>&1 || status=$?
python3 - "$out/r.json" "$status" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
status = int(sys.argv[2])
outcomes = {m["outcome"] for m in doc["metrics"]}
errors = " ".join(m["error"] or "" for m in doc["metrics"])
ok = status == 1 and outcomes == {"connect"} and "dns" in errors.lower() and doc["summary"]["ttft"]["count"] == 0
print(f"dns-failure: exit {status}, outcomes {sorted(outcomes)}, error: {doc['metrics'][0]['error']}")
print("dns-failure: PASS" if ok else "dns-failure: FAIL")
sys.exit(0 if ok else 1)
PY
