#!/usr/bin/env bash
# User-space instructions per request of `streamprobe run` (callgrind), deterministic enough to
# compare builds on a busy machine where latency percentiles are noise.
#
# Runs the client under callgrind twice against one `streamprobe mock` (TTFT 200 ms, ITL 10 ms,
# 50 tokens, OpenAI SSE), with N_SMALL and N requests at concurrency C, pinned to one core (the
# current-thread runtime, as scripts/bench-overhead.sh), and prints
# (Ir(N) - Ir(N_SMALL)) / (N - N_SMALL): start-up and the result file cancel out.
# Usage: scripts/instructions-per-request.sh [N] [C]       (default 400 4; N_SMALL = N / 10)
#        PIN=0 ... runs unpinned (the multi-thread runtime on a multi-core machine).
#        PROTOCOL=raw ... decodes nothing (each chunk is a token): the decoder's share is the
#          difference with the default `openai`.
#        CLIENT=floor ... a bare reqwest client reading the same streams instead of streamprobe
#          (`examples/bench_floor.rs`): what the HTTP stack itself costs.
# Profiles are kept in target/callgrind/ for callgrind_annotate. Not a test. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-400}; C=${2:-4}; SMALL=$((N / 10))
cargo build --release --quiet
BIN=target/release/streamprobe
PROTOCOL=${PROTOCOL:-openai}
CLIENT=${CLIENT:-streamprobe}
[[ "$CLIENT" == floor ]] && cargo build --release --quiet --example bench_floor
OUT=target/callgrind; mkdir -p "$OUT"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" mock --listen "127.0.0.1:$PORT" --ttft 200ms --itl 10ms --tokens 50 >/dev/null 2>&1 &
MOCK=$!
TMP=$(mktemp -d)
trap 'kill $MOCK; rm -rf "$TMP"' EXIT
sleep 0.5
PIN_CMD=(taskset -c 0)
[[ "${PIN:-1}" == 0 ]] && PIN_CMD=()
ir() {  # ir REQUESTS -> total instructions of one run
    cat > "$TMP/b.yaml" <<YAML
targets:
  - name: bench
    url: http://127.0.0.1:$PORT/v1/chat/completions
    protocol: $PROTOCOL
    request_id_header: X-Request-Id
    body: {model: m, messages: [{role: user, content: hi}], stream: true, stream_options: {include_usage: true}}
    concurrency: $C
    total_requests: $1
    timeout: 120s
YAML
    local client=("$BIN" run -c "$TMP/b.yaml" --no-progress -o "$TMP/out.json")
    [[ "$CLIENT" == floor ]] &&
        client=(target/release/examples/bench_floor reqwest "http://127.0.0.1:$PORT" "$C" "$1")
    "${PIN_CMD[@]}" valgrind --tool=callgrind --callgrind-out-file="$OUT/$CLIENT-$PROTOCOL-$1.out" \
        "${client[@]}" >/dev/null 2>"$TMP/log" || true
    grep -o 'Collected : [0-9]*' "$TMP/log" | grep -o '[0-9]*$'
}
small=$(ir "$SMALL"); big=$(ir "$N")
[[ "$CLIENT" == floor ]] && PROTOCOL=-
echo "client=$CLIENT protocol=$PROTOCOL requests=$N concurrency=$C Ir($SMALL)=$small Ir($N)=$big per_request=$(( (big - small) / (N - SMALL) ))"
