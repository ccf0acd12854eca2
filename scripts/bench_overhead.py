"""Driver for bench-overhead.sh: runs mock and client as separate pinned processes, joins the
client's per-request TTFT with the mock's ground truth by request id, and prints a table, with
the client's own lag p99 (and whether it warned) beside the overhead."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

# BENCH_BIN: another build to compare (A/B runs alternate two binaries).
BIN = os.path.abspath(os.environ.get("BENCH_BIN", "target/release/streamprobe"))
# BENCH_CLIENT_CORES=0,1 lets the client use both cores (one shared with the mock): the
# multi-threaded runtime a user on a multi-core machine gets.
CLIENT_CORE = os.environ.get("BENCH_CLIENT_CORES", "0")
MOCK_CORE = "1"
# BENCH_WARMUP=1: C warm-up requests first, so connection set-up is not in the recorded TTFTs.
WARMUP = os.environ.get("BENCH_WARMUP") == "1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mock did not listen on {port}")


def quantile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def one(concurrency):
    n = min(4 * concurrency, 5000)
    port = free_port()
    mock = subprocess.Popen(
        ["taskset", "-c", MOCK_CORE, BIN, "mock", "--listen", f"127.0.0.1:{port}",
         "--ttft", "200ms", "--itl", "10ms", "--tokens", "50"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "bench.yaml")
            with open(cfg, "w") as f:
                f.write(f"""targets:
  - name: bench
    url: http://127.0.0.1:{port}/v1/chat/completions
    protocol: openai
    request_id_header: X-Request-Id
    body: {{model: m, messages: [{{role: user, content: hi}}], stream: true,
           stream_options: {{include_usage: true}}}}
    concurrency: {concurrency}
    total_requests: {n}
    warmup_requests: {concurrency if WARMUP else 0}
    timeout: 120s
    first_token_timeout: 60s
""")
            out = os.path.join(tmp, "out.json")
            # taskset execs the client, so wait4 on its pid measures the client alone.
            client = subprocess.Popen(
                ["taskset", "-c", CLIENT_CORE, BIN, "run", "-c", cfg, "--no-progress", "-o", out],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(client.pid, 0)
            client.returncode = os.waitstatus_to_exitcode(status)
            if client.returncode not in (0, 1):
                raise RuntimeError(f"client exited {client.returncode}")
            doc = json.load(open(out))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/mock/truth") as r:
            truths = {t["id"]: t for t in json.load(r)}
    finally:
        mock.terminate()
        mock.wait()
    burst = doc["burst_id"]
    overhead = []
    failed = 0
    # The X-Request-Id is `<burst>-<sequence>`, and warm-up requests take the first sequence
    # numbers: recorded request k was sent as sequence k + warm-up count.
    skip = concurrency if WARMUP else 0
    for m in doc["metrics"]:
        truth = truths.get(f"{burst}-{m['request_id'] + skip}")
        if m["ttft"] is None or truth is None or truth["first_token_after_seconds"] is None:
            failed += 1
            continue
        overhead.append(m["ttft"] - truth["first_token_after_seconds"])
    cpu = usage.ru_utime + usage.ru_stime
    rss_mb = usage.ru_maxrss / 1024  # kB on Linux
    lateness = [t["ttft_lateness_seconds"] for t in truths.values()
                if t.get("ttft_lateness_seconds") is not None]
    return {
        "c": concurrency, "n": n, "failed": failed,
        "p50_ms": quantile(overhead, 0.5) * 1e3, "p99_ms": quantile(overhead, 0.99) * 1e3,
        # Warm-up requests cost CPU too: divide by every request sent.
        "cpu_per_1k": cpu / (n + (concurrency if WARMUP else 0)) * 1000, "rss_mb": rss_mb,
        # The kernel's share of that CPU (TCP receive, the ACK each small read sends and, on
        # loopback, the mock socket's processing of it; epoll).
        "sys_share": usage.ru_stime / cpu if cpu else float("nan"),
        "mock_late_p99_ms": quantile(lateness, 0.99) * 1e3,
        # What the client said about its own queueing (summary.client; README "The client's
        # own lag"), to set beside the overhead it is meant to bound.
        "lag_p99_ms": (doc["summary"].get("client", {}).get("lag_p99") or float("nan")) * 1e3,
        "warned": bool(doc["summary"].get("client", {}).get("warning")),
    }


def main():
    levels = [int(x) for x in " ".join(sys.argv[1:]).split()]
    print(f"{'C':>5} {'n':>5} {'fail':>4} {'overhead p50':>13} {'overhead p99':>13} "
          f"{'CPU s/1k req':>12} {'kernel':>6} {'peak RSS':>9} {'mock late p99':>14} {'client lag p99':>15}")
    for c in levels:
        r = one(c)
        print(f"{r['c']:>5} {r['n']:>5} {r['failed']:>4} {r['p50_ms']:>10.2f} ms "
              f"{r['p99_ms']:>10.2f} ms {r['cpu_per_1k']:>12.3f} {r['sys_share']:>6.0%} {r['rss_mb']:>6.1f} MB "
              f"{r['mock_late_p99_ms']:>11.2f} ms {r['lag_p99_ms']:>9.2f} ms {'(warned)' if r['warned'] else ''}",
              flush=True)


if __name__ == "__main__":
    main()
