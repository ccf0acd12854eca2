#!/usr/bin/env python3
"""End-to-end test of the ops kit: a real Prometheus scrapes a real streamprobe daemon (probing
the built-in mock) with config/prometheus/streamprobe.rules.yml loaded, and every PromQL
expression of the Grafana dashboard and of the rules file is evaluated through Prometheus's
HTTP API and must return data.

Run it through scripts/e2e-prometheus.sh. Python 3.8+ standard library only.

    e2e_prometheus.py run [--fake] [--keep]       the test
    e2e_prometheus.py fake-exporter ...           the --fake stand-in for daemon + mock

What it checks, in order: the dashboard's structure (schemaVersion, __inputs, datasource and
target variables, $target and $__rate_interval everywhere); `streamprobe check` of the systemd
example config; every metric family of DESIGN §5 and the bucket boundaries; a reload with a
broken config (reload gauge 0, StreamprobeConfigReloadFailed and the dashboard's failed-reload
annotation have data) and with the good one again (reload annotation has data), which also slows
the faulty target's TTFT by 50% once both targets have a verdict baseline, so that the daemon's
verdict on it becomes regressed (StreamprobeTTFTRegressed must see faulty only); every dashboard
query as a range query; every rule healthy in Prometheus; every recording rule's expression and
recorded series; every alert: it fires for exactly the expected targets, or it is empty and its
condition-free parts (ALERT_EXPECTATIONS) have data, and every series it reads exists; the
alerts Prometheus itself holds active; TTFT p50 from the histogram against the newest result
file's exact p50 (within one bucket); SIGTERM makes the daemon exit 0 and StreamprobeDown fire.

`--fake` replaces the daemon and the mock with a small exporter in this file that simulates
bursts and serves every streamprobe metric (and writes result files), to debug the evaluation
machinery and the expressions without a Rust build. Does not: touch anything outside its
temporary directory, listen on anything but 127.0.0.1, or run longer than E2E_TIMEOUT.
"""

import argparse
import glob
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = os.path.join(ROOT, "config", "prometheus", "streamprobe.rules.yml")
RUNBOOK = os.path.join(ROOT, "docs", "runbook.md")
DASHBOARD = os.path.join(ROOT, "grafana", "dashboards", "streamprobe.json")

LATENCY_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
# Phases: the latency boundaries with three below them (DNS, TCP and TLS take milliseconds).
PHASE_BUCKETS = [0.001, 0.0025, 0.005] + LATENCY_BUCKETS
TOKEN_BUCKETS = [0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1,
                 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5]
TARGETS = ("healthy", "faulty")

# Every family of DESIGN §5 (histograms by base name): each must be exported.
CONTRACT_METRICS = [
    "streamprobe_time_to_first_token_seconds_bucket",
    "streamprobe_time_to_headers_seconds_bucket",
    "streamprobe_inter_token_latency_seconds_bucket",
    "streamprobe_time_per_output_token_seconds_bucket",
    "streamprobe_request_duration_seconds_bucket",
    "streamprobe_requests_total",
    "streamprobe_output_tokens_total",
    "streamprobe_slo_requests_total",
    "streamprobe_bursts_total",
    "streamprobe_bursts_skipped_total",
    "streamprobe_last_burst_timestamp_seconds",
    "streamprobe_last_burst_success_ratio",
    "streamprobe_last_burst_ttft_seconds",
    "streamprobe_burst_duration_seconds",
    "streamprobe_in_flight_requests",
    "streamprobe_target_info",
    "streamprobe_schedule_period_seconds",
    "streamprobe_schedule_lag_seconds",
    "streamprobe_result_write_failures_total",
    "streamprobe_config_last_reload_successful",
    "streamprobe_config_last_reload_success_timestamp_seconds",
    "streamprobe_build_info",
    "process_start_time_seconds",
    # v2 (DESIGN §11): time to first visible token, token details, response identity.
    "streamprobe_time_to_first_visible_token_seconds_bucket",
    "streamprobe_input_tokens_total",
    "streamprobe_cached_input_tokens_total",
    "streamprobe_reasoning_tokens_total",
    "streamprobe_response_model_info",
    "streamprobe_response_model_changes_total",
    # v2 (DESIGN §11): phases, connections, the keep-alive retry, provider rate limits.
    "streamprobe_phase_seconds_bucket",
    "streamprobe_connections_total",
    "streamprobe_connection_retries_total",
    "streamprobe_ratelimit_remaining",
    "streamprobe_ratelimit_limit",
    "streamprobe_retry_after_seconds",
    # v2 (DESIGN §10): the daemon's verdicts.
    "streamprobe_baseline_seconds",
    "streamprobe_change_ratio",
    "streamprobe_verdict",
]

# The daemon's verdict windows, short enough to form a baseline within seconds (bursts every
# 2s); after the good reload the faulty target's mock TTFT rises by 50% (SHIFTED_TTFT instead
# of the mocks' 150ms), so StreamprobeTTFTRegressed must see faulty regressed, and only faulty.
# The verdict must still be regressed at the run's last check, while bursts after the shift age
# out of the 6 s recent window into the baseline: judged on the median (p90 would follow the
# first shifted bursts in the baseline), with BASELINE_HEAD of unshifted bursts in the baseline
# before the shift; min_samples 5 because faulty's 30% failures leave ~6 successes per burst.
VERDICT = "{baseline: 10m, recent: 6s, min_change: 20%, min_samples: 5, statistic: p50}"
BASELINE_HEAD = 10  # seconds of baseline bursts gathered before the shift
SHIFTED_TTFT = "225ms"

# The provider headers each target's mock sends (`?provider_headers=`): OpenAI's family for
# healthy, Anthropic's and retry-after (on its 503 answers) for faulty, so that every rate-limit
# gauge and the dashboard's rate-limit panels have data.
PROVIDER_HEADERS = {"healthy": "openai", "faulty": "anthropic,retry-after"}

# The faulty target's mock swaps its model after this many requests (`model_switch_after`), a
# few bursts in: the daemon must have seen the old model first, or there is no change to count.
MODEL_SWITCH_AFTER = 40

# What each alert's expression should return in this setup, and why. "data:<targets>" means it
# must return exactly those targets; "empty" means it must return nothing (the system is
# healthy in that respect), in which case the `probes` (the condition-free inner expressions)
# must return data instead, so the alert is still proven to see real series.
ALERT_EXPECTATIONS = {
    "StreamprobeTTFTRegression": {
        "expect": "empty",
        "why": "exception: needs a week of history (offset 1w); the current side is probed",
        "probes": ["target:streamprobe_ttft_seconds:p95_1h", "target:streamprobe_ttft_requests:increase1h"],
    },
    "StreamprobeTTFTRegressed": {
        "expect": "data:faulty",
        "why": f"faulty's TTFT rose from 150ms to {SHIFTED_TTFT} at the good reload: its verdict is "
               "regressed against the baseline of the bursts before; healthy's is not",
        "probes": ['streamprobe_verdict{metric="ttft"}', "streamprobe_baseline_seconds",
                   "streamprobe_change_ratio"],
    },
    "StreamprobeTTFTSLOBurn": {
        "expect": "data:faulty",
        "why": "failed requests count as SLO-bad: faulty's 30% HTTP 503 burn 30x the 1% budget; "
               "healthy's 150ms TTFT is far inside its 1s SLO",
        "probes": [
            "target_slo:streamprobe_slo_requests_bad:ratio_rate1h{slo=\"ttft\"}",
            "target_slo:streamprobe_slo_requests_bad:ratio_rate5m{slo=\"ttft\"}",
            "target_slo:streamprobe_slo_requests_bad:ratio_rate6h{slo=\"ttft\"}",
            "target_slo:streamprobe_slo_requests_bad:ratio_rate30m{slo=\"ttft\"}",
            "14.4 * (1 - slo:streamprobe_slo_objective:ratio)",
        ],
    },
    "StreamprobeErrorRatioHigh": {
        "expect": "data:faulty",
        "why": "the faulty target's mock answers 30% of requests with HTTP 503",
        "probes": ["target:streamprobe_requests_failed:ratio_rate1h"],
    },
    "StreamprobeModelChanged": {
        "expect": "data:faulty",
        "why": f"faulty's mock names another model after its first {MODEL_SWITCH_AFTER} requests "
               "(model_switch_after); healthy's never changes",
        "probes": ["streamprobe_response_model_changes_total", "streamprobe_response_model_info"],
    },
    "StreamprobeProbeStale": {
        "expect": "empty",
        "why": "bursts run every 2s: nothing is stale",
        "probes": [
            "time() - streamprobe_last_burst_timestamp_seconds",
            "3 * streamprobe_schedule_period_seconds",
            "time() - (process_start_time_seconds > 0)",
        ],
    },
    "StreamprobeClientOverloaded": {
        # Whether it fires here depends on the machine (the threshold is 1 ms of the daemon's
        # own lag): what is checked is that it evaluates over the real series and names only
        # real targets. Firing and not firing are tested in streamprobe.rules.test.yml.
        "expect": "evaluates",
        "why": "the daemon's own lag on this machine decides; logic tested by promtool",
        "probes": ["streamprobe_client_lag_seconds",
                   "streamprobe_last_burst_ttft_seconds{quantile=\"0.5\"}"],
    },
    "StreamprobeConfigReloadFailed": {
        "expect": "empty",
        "why": "the config is valid again (the failed state is tested in the reload step)",
        "probes": ["streamprobe_config_last_reload_successful"],
    },
    "StreamprobeResultWritesFailing": {
        "expect": "data:faulty",
        "why": "a plain file stands where faulty's results directory would be",
        "probes": ["increase(streamprobe_result_write_failures_total[15m])"],
    },
    "StreamprobeDown": {
        "expect": "empty",
        "why": "the daemon is up",
        "probes": ["up{job=\"streamprobe\"}"],
    },
}

# Dashboard expressions that are conditions on rare events, evaluated where the event happens.
DASHBOARD_CONDITIONAL = {
    "Failed reloads": "evaluated while the broken config is loaded (reload step)",
    "Config reloads": "evaluated after the config reload (reload step)",
    "Response model changes": "evaluated over the whole run: faulty's mock swaps its model once",
}

# Grafana's built-in variables and the dashboard's own, as a query for the whole time range.
SUBSTITUTIONS = [
    ("${__rate_interval}", "1m"), ("$__rate_interval", "1m"),
    ("${__interval_ms}", "60000"), ("$__interval_ms", "60000"),
    ("${__interval}", "1m"), ("$__interval", "1m"),
    ("${__range_s}", "300"), ("$__range_s", "300"),
    ("${__range_ms}", "300000"), ("$__range_ms", "300000"),
    ("${__range}", "5m"), ("$__range", "5m"),
    ("${target:regex}", ".*"), ("${target}", ".*"), ("$target", ".*"),
]


# ----------------------------------------------------------------------------------------------
# Small helpers


def log(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=5.0):
    """Returns (status, text); status 0 when the connection failed."""
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def wait_until(what, fn, timeout, interval=0.5):
    """Polls fn() until it returns a truthy value or the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def substitute(expr):
    for old, new in SUBSTITUTIONS:
        expr = expr.replace(old, new)
    return expr


def bucket_index(value, bounds):
    for i, b in enumerate(bounds):
        if value <= b:
            return i
    return len(bounds)


def numpy_linear_percentile(sorted_values, q):
    """numpy's default (linear) percentile, as in DESIGN §4."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


# ----------------------------------------------------------------------------------------------
# Processes


class Processes:
    """Children started by the test; all are stopped on exit, whatever the exit path."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.procs = []

    def start(self, name, argv, env=None):
        logpath = os.path.join(self.logdir, f"{name}.log")
        logfile = open(logpath, "wb")
        log(f"  start {name}: {' '.join(argv)}")
        p = subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, cwd=self.logdir, preexec_fn=die_with_parent)
        self.procs.append((name, p, logpath))
        return p

    def check_alive(self):
        for name, p, logpath in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with status {p.returncode}; log {logpath}:\n"
                                   + tail(logpath))

    def stop_all(self):
        for _, p, _ in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 10
        for _, p, _ in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def tails(self):
        return "\n".join(f"--- {name} ({logpath}) ---\n{tail(logpath)}" for name, _, logpath in self.procs)


def die_with_parent():
    """In the child: get SIGTERM when the test process dies, even by SIGKILL (Linux only)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def tail(path, lines=25):
    try:
        with open(path, "rb") as f:
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_for_port(port, timeout, procs):
    def up():
        procs.check_alive()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False
    wait_until(f"127.0.0.1:{port} to accept connections", up, timeout, 0.2)


# ----------------------------------------------------------------------------------------------
# Prometheus API


class Prom:
    def __init__(self, base):
        self.base = base

    def query(self, expr):
        """Returns (result list, error string or None)."""
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, text = http("GET", url)
        return self._parse(status, text)

    def query_range(self, expr, seconds=30, step=5):
        end = time.time()
        url = f"{self.base}/api/v1/query_range?" + urllib.parse.urlencode(
            {"query": expr, "start": f"{end - seconds:.3f}", "end": f"{end:.3f}", "step": str(step)})
        status, text = http("GET", url)
        return self._parse(status, text)

    @staticmethod
    def _parse(status, text):
        try:
            doc = json.loads(text)
        except ValueError:
            return [], f"HTTP {status}: {text[:200]}"
        if doc.get("status") != "success":
            return [], f"{doc.get('errorType', 'error')}: {doc.get('error', text[:200])}"
        data = doc["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}], None
        return data["result"], None

    def get(self, path):
        status, text = http("GET", self.base + path)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}: {text[:200]}")
        return json.loads(text)["data"]


def values_of(result):
    out = []
    for s in result:
        if "value" in s:
            out.append(float(s["value"][1]))
        for _, v in s.get("values", []):
            out.append(float(v))
    return out


def describe(result, limit=4):
    parts = []
    for s in result[:limit]:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s["metric"].items()) if k != "__name__")
        vals = values_of([s])
        parts.append(f"{{{labels}}}={vals[-1]:.4g}" if vals else f"{{{labels}}}")
    more = f" (+{len(result) - limit} more)" if len(result) > limit else ""
    return " ".join(parts) + more


# ----------------------------------------------------------------------------------------------
# The test


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []
        self.exceptions = []

    def ok(self, what, detail=""):
        self.passed += 1
        log(f"  ok    {what}" + (f"  [{detail}]" if detail else ""))

    def fail(self, what, detail):
        self.failed += 1
        self.failures.append(f"{what}: {detail}")
        log(f"  FAIL  {what}: {detail}")

    def check(self, cond, what, detail=""):
        (self.ok if cond else self.fail)(what, detail)
        return cond


def expect_data(prom, report, what, expr, *, range_query=False, retry=10.0, allow_nan=False,
                range_seconds=30):
    """The expression must evaluate without error and return at least one non-NaN sample."""
    deadline = time.monotonic() + retry
    while True:
        if range_query:
            result, err = prom.query_range(expr, seconds=range_seconds)
        else:
            result, err = prom.query(expr)
        if err:
            report.fail(what, f"{err}\n        expr: {expr}")
            return None
        vals = values_of(result)
        good = result and (allow_nan or any(not math.isnan(v) for v in vals))
        if good:
            report.ok(what, describe(result))
            return result
        if time.monotonic() >= deadline:
            why = "no data" if not result else "only NaN"
            report.fail(what, f"{why}\n        expr: {expr}")
            return None
        time.sleep(1.0)


def expect_empty(prom, report, what, expr, retry=0.0):
    deadline = time.monotonic() + retry
    while True:
        result, err = prom.query(expr)
        if err:
            report.fail(what, f"{err}\n        expr: {expr}")
            return False
        if not result:
            report.ok(what, "empty, as expected")
            return True
        if time.monotonic() >= deadline:
            report.fail(what, f"expected no data, got {describe(result)}\n        expr: {expr}")
            return False
        time.sleep(1.0)


def dashboard_queries(dash):
    """(label, expr, is_instant) for every query of the dashboard: panels (also inside rows),
    annotations, and query variables (label_values(m, l) as `group by (l) (m)`)."""
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f"panel '{p.get('title')}' [{t.get('refId')}]", t["expr"], bool(t.get("instant"))))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append((f"annotation '{a['name']}'", a["expr"], False))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", q or "")
        if m:
            out.append((f"variable '{v['name']}'", f"group by ({m.group(2)}) ({m.group(1)})", True))
        elif q:
            out.append((f"variable '{v['name']}'", q, True))
    return out


def check_dashboard_structure(dash, report):
    what = "dashboard structure"
    problems = []
    if dash.get("schemaVersion", 0) < 39:
        problems.append(f"schemaVersion {dash.get('schemaVersion')} < 39")
    if not any(i.get("name") == "DS_PROMETHEUS" and i.get("pluginId") == "prometheus" for i in dash.get("__inputs", [])):
        problems.append("__inputs lacks DS_PROMETHEUS")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("no `datasource` variable of type datasource (prometheus)")
    tv = variables.get("target")
    if not tv or not tv.get("multi") or not tv.get("includeAll"):
        problems.append("`target` variable is not multi-value with include-all")
    elif "label_values(streamprobe_target_info, target)" not in json.dumps(tv.get("query")):
        problems.append("`target` variable does not use label_values(streamprobe_target_info, target)")
    ids = []

    def walk(panels):
        for p in panels:
            ids.append(p.get("id"))
            if p.get("type") != "row":
                if p.get("datasource", {}).get("uid") != "${datasource}":
                    problems.append(f"panel '{p.get('title')}' does not use ${{datasource}}")
                if not p.get("targets"):
                    problems.append(f"panel '{p.get('title')}' has no queries")
                for t in p.get("targets", []):
                    e = t.get("expr", "")
                    if "streamprobe_" in e and "target" not in e and "build_info" not in e \
                            and "config_last_reload" not in e and "slo_objective" not in e:
                        problems.append(f"panel '{p.get('title')}' [{t.get('refId')}] ignores $target")
                    if re.search(r"\[\d+[smh]\]", e):
                        problems.append(f"panel '{p.get('title')}' [{t.get('refId')}] has a fixed range; use $__rate_interval")
            if "gridPos" not in p:
                problems.append(f"panel '{p.get('title')}' has no gridPos")
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    if len(ids) != len(set(ids)):
        problems.append("duplicate panel ids")
    report.check(not problems, what, "; ".join(problems) or f"{len(ids)} panels, schemaVersion {dash.get('schemaVersion')}")


def series_names(expr):
    """Metric and recorded-series names an expression reads (streamprobe's, `up`, `process_*`).
    Not a PromQL parser: strings are dropped, then identifiers of those shapes are collected."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    names = set()
    for m in re.finditer(r"(?<![A-Za-z0-9_:])([A-Za-z_:][A-Za-z0-9_:]*)", expr):
        name = m.group(1)
        if "streamprobe" in name or name.startswith("process_") or name == "up":
            names.add(name)
    return sorted(names)


def expect_series_exist(prom, report, what, expr):
    """Every series the expression reads exists: an alert that is empty because of a misspelt
    metric name is not the same as an alert that is empty because all is well."""
    missing = []
    for name in series_names(expr):
        result, err = prom.query(f'count({{__name__="{name}"}})')
        if err or not result:
            missing.append(name)
    report.check(not missing and series_names(expr), f"{what}: every series it reads exists",
                 ("missing: " + ", ".join(missing)) if missing else ", ".join(series_names(expr)))


def check_alert_annotations(rules, report):
    """summary, description and a runbook_url whose anchor is a heading of docs/runbook.md."""
    with open(RUNBOOK) as f:
        headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                    for h in re.findall(r"^#+ (.+)$", f.read(), re.M)}
    problems = []
    for r in rules:
        if r["type"] != "alerting":
            continue
        ann = r.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not ann.get(key):
                problems.append(f"{r['name']} lacks {key}")
        anchor = ann.get("runbook_url", "").partition("#")[2]
        if "docs/runbook.md#" not in ann.get("runbook_url", "") or anchor not in headings:
            problems.append(f"{r['name']}: runbook_url {ann.get('runbook_url')!r} has no heading in docs/runbook.md")
    report.check(not problems, "alerts have summary, description and a runbook_url into docs/runbook.md",
                 "; ".join(problems))


def daemon_config(listen, results_dir, mock_ports, broken=False, shifted=False):
    targets = []
    for name, port in zip(TARGETS, mock_ports):
        query = f"?provider_headers={PROVIDER_HEADERS[name]}"
        if name == "faulty":
            query += f"&model_switch_after={MODEL_SWITCH_AFTER}"
            if shifted:
                query += f"&ttft={SHIFTED_TTFT}"
        # healthy by name, so that its new connections have a DNS (resolve) phase.
        host = "localhost" if name == "healthy" else "127.0.0.1"
        targets.append(f"""  - name: {name}
    url: "http://{host}:{port}/v1/chat/completions{query}"
    body:
      model: mock
      messages: [{{role: user, content: hi}}]
      stream: true
      stream_options: {{include_usage: true}}
    protocol: openai
    schedule: {{every: 2s}}
    run_on_start: true
    concurrency: 4
    total_requests: 8
    slo: {{ttft: 1s}}
""")
    text = f"""# written by scripts/e2e_prometheus.py
server:
  listen: "{listen}"
  enable_admin_api: true
  shutdown_grace: 2s
results:
  dir: "{results_dir}"
  keep_per_target: 50
defaults:
  verdict: {VERDICT}
targets:
{''.join(targets)}"""
    if broken:
        text += "bogus_key_for_the_reload_test: 1\n"
    return text


def prometheus_config(daemon_addr):
    return f"""# written by scripts/e2e_prometheus.py
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - "{RULES}"
scrape_configs:
  - job_name: streamprobe
    static_configs:
      - targets: ["{daemon_addr}"]
"""


def reload_daemon(daemon_base, daemon_proc):
    status, text = http("POST", f"{daemon_base}/-/reload", body=b"")
    if status in (404, 405, 403) and daemon_proc is not None:
        daemon_proc.send_signal(signal.SIGHUP)  # admin API off or missing: use the signal
        return f"SIGHUP (admin API answered {status})"
    return f"POST /-/reload -> {status}"


def newest_result(results_dir, target):
    files = [f for f in glob.glob(os.path.join(results_dir, target, "*.json"))
             if not os.path.basename(f).startswith(".")]
    for path in sorted(files, reverse=True):
        try:
            with open(path) as f:
                return path, json.load(f)
        except (OSError, ValueError):
            continue
    return None, None


def run(args):
    started = time.monotonic()
    budget = float(os.environ.get("E2E_TIMEOUT", "170"))
    binary = os.environ.get("STREAMPROBE", os.path.join(ROOT, "target", "release", "streamprobe"))
    prometheus = os.environ.get("PROMETHEUS", shutil.which("prometheus") or "prometheus")
    tmp = tempfile.mkdtemp(prefix="streamprobe-e2e-")
    results_dir = os.path.join(tmp, "results")
    os.makedirs(results_dir)
    # faulty's result files cannot be written (a file where its directory would be; chmod would
    # not stop root): StreamprobeResultWritesFailing must fire for it, and only for it.
    with open(os.path.join(results_dir, "faulty"), "w") as f:
        f.write("not a directory\n")
    procs = Processes(tmp)
    report = Report()
    report.passed = int(os.environ.get("E2E_STATIC_PASSED", "0"))
    report.failed = int(os.environ.get("E2E_STATIC_FAILED", "0"))

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(int(budget) + 5)  # hard stop, in case a wait below misbehaves

    mode = "fake exporter" if args.fake else binary
    log(f"e2e-prometheus: {mode}; Prometheus {prometheus}; work dir {tmp}")
    ok_exit = False
    try:
        with open(DASHBOARD) as f:
            dash = json.load(f)
        check_dashboard_structure(dash, report)

        mock_ports = [free_port(), free_port()]
        daemon_port, prom_port = free_port(), free_port()
        daemon_addr = f"127.0.0.1:{daemon_port}"
        daemon_base = f"http://{daemon_addr}"
        cfg_path = os.path.join(tmp, "streamprobe.yaml")
        with open(cfg_path, "w") as f:
            f.write(daemon_config(daemon_addr, results_dir, mock_ports))

        daemon = None
        if args.fake:
            daemon = procs.start("fake-exporter", [sys.executable, os.path.abspath(__file__), "fake-exporter",
                                                   "--listen", daemon_addr, "--results", results_dir,
                                                   "--config", cfg_path])
        else:
            if not os.access(binary, os.X_OK):
                raise RuntimeError(f"{binary} is not an executable; build it (cargo build --release) "
                                   "or set STREAMPROBE=path, or use --fake")
            # The example config shipped for the systemd unit validates (with a dummy credential).
            creds = os.path.join(tmp, "credentials")
            os.makedirs(creds)
            with open(os.path.join(creds, "openai_api_key"), "w") as f:
                f.write("sk-e2e-dummy\n")
            check = subprocess.run([binary, "check", "-c", os.path.join(ROOT, "systemd", "streamprobe.yaml")],
                                   capture_output=True, text=True, env=dict(os.environ, CREDENTIALS_DIRECTORY=creds))
            report.check(check.returncode == 0, "streamprobe check -c systemd/streamprobe.yaml",
                         (check.stdout + check.stderr).strip().splitlines()[0] if (check.stdout + check.stderr).strip() else "")
            # One mock per target: `healthy` must see no failure at all (so that alerts can be
            # asserted to fire for `faulty` only); `faulty` gets HTTP 503 (with retry-after) on
            # 30% of requests.
            common = ["--ttft", "150ms", "--itl", "10ms", "--tokens", "30"]
            procs.start("mock-healthy", [binary, "mock", "--listen", f"127.0.0.1:{mock_ports[0]}"] + common)
            procs.start("mock-faulty", [binary, "mock", "--listen", f"127.0.0.1:{mock_ports[1]}"] + common
                        + ["--fault", "503:0.3"])
            for port in mock_ports:
                wait_for_port(port, 15, procs)
            daemon = procs.start("daemon", [binary, "serve", "-c", cfg_path],
                                 env=dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info")))
        wait_until("the daemon's /-/ready",
                   lambda: procs.check_alive() or http("GET", f"{daemon_base}/-/ready")[0] == 200, 30, 0.3)
        report.ok("daemon ready", daemon_base)

        prom_cfg = os.path.join(tmp, "prometheus.yml")
        with open(prom_cfg, "w") as f:
            f.write(prometheus_config(daemon_addr))
        check = subprocess.run([shutil.which("promtool") or "promtool", "check", "config", prom_cfg],
                               capture_output=True, text=True)
        report.check(check.returncode == 0, "promtool check config (e2e config with the rules file)",
                     (check.stdout + check.stderr).strip().splitlines()[-1] if check.returncode else "")
        prom_base = f"http://127.0.0.1:{prom_port}"
        procs.start("prometheus", [prometheus, f"--config.file={prom_cfg}",
                                   f"--storage.tsdb.path={os.path.join(tmp, 'data')}",
                                   f"--web.listen-address=127.0.0.1:{prom_port}",
                                   "--log.level=warn"])
        wait_until("Prometheus /-/ready",
                   lambda: procs.check_alive() or http("GET", f"{prom_base}/-/ready")[0] == 200, 30, 0.3)
        prom = Prom(prom_base)

        # Data for both targets, and long enough for rate() windows and recording rules.
        def both_targets(expr):
            result, _ = prom.query(expr)
            return {s["metric"].get("target") for s in result} >= set(TARGETS)
        wait_until("TTFT samples of both targets in Prometheus",
                   lambda: procs.check_alive() or both_targets(
                       "sum by (target) (increase(streamprobe_time_to_first_token_seconds_count[1m])) > 0"), 60, 1)
        first_data = time.monotonic()
        wait_until("the up series", lambda: prom.query('up{job="streamprobe"} == 1')[0], 10, 0.5)
        wait_until("recording rules", lambda: both_targets("target:streamprobe_ttft_seconds:p50_5m"), 30, 1)
        time.sleep(max(0.0, 8 - (time.monotonic() - first_data)))  # a few more bursts and scrapes
        report.ok("data in Prometheus", f"after {time.monotonic() - started:.0f}s")

        # Scrape health and contract.
        targets = prom.get("/api/v1/targets")["activeTargets"]
        report.check(all(t["health"] == "up" for t in targets) and targets, "scrape target up",
                     "; ".join(f"{t['scrapeUrl']} {t['health']} {t.get('lastError', '')}" for t in targets))
        for name in CONTRACT_METRICS:
            expect_data(prom, report, f"metric {name}", f'{{__name__="{name}"}}', retry=5, allow_nan=True)
        for metric, bounds in [("streamprobe_time_to_first_token_seconds", LATENCY_BUCKETS),
                               ("streamprobe_inter_token_latency_seconds", TOKEN_BUCKETS),
                               ("streamprobe_phase_seconds", PHASE_BUCKETS)]:
            result, err = prom.query(f"count by (le) ({metric}_bucket)")
            got = sorted(float(s["metric"]["le"]) for s in result)
            report.check(not err and got == sorted(bounds + [math.inf]), f"buckets of {metric}",
                         err or ("" if got == sorted(bounds + [math.inf]) else f"got {got}"))

        # Reload: a broken file keeps the old config and sets the gauge to 0; a good one restores it.
        with open(cfg_path, "w") as f:
            f.write(daemon_config(daemon_addr, results_dir, mock_ports, broken=True))
        how = reload_daemon(daemon_base, None if args.fake else daemon)
        log(f"  reload with a broken config: {how}")
        expect_data(prom, report, "alert StreamprobeConfigReloadFailed fires on a broken reload",
                    "streamprobe_config_last_reload_successful == 0", retry=15)
        for label, expr, _ in dashboard_queries(dash):
            if label == "annotation 'Failed reloads'":
                expect_data(prom, report, f"dashboard {label}", substitute(expr), retry=5)
        # The good config also slows faulty's TTFT by 50%: by now both targets have a baseline.
        expect_data(prom, report, "verdict baselines formed before the shift",
                    'count(streamprobe_baseline_seconds{metric="ttft", quantile="0.5"}) == 2', retry=20)
        if not args.fake:
            time.sleep(BASELINE_HEAD)  # a baseline of several bursts, so the shifted ones stay a minority
        with open(cfg_path, "w") as f:
            f.write(daemon_config(daemon_addr, results_dir, mock_ports, shifted=True))
        how = reload_daemon(daemon_base, None if args.fake else daemon)
        log(f"  reload with the good config (faulty's TTFT now {SHIFTED_TTFT}): {how}")
        expect_data(prom, report, "reload succeeds again", "streamprobe_config_last_reload_successful == 1", retry=15)
        for label, expr, _ in dashboard_queries(dash):
            if label == "annotation 'Config reloads'":
                expect_data(prom, report, f"dashboard {label}", substitute(expr), retry=10)

        # Every dashboard query.
        log("dashboard queries:")
        for label, expr, instant in dashboard_queries(dash):
            if label.startswith("annotation '") and label[12:-1] in DASHBOARD_CONDITIONAL:
                continue
            expect_data(prom, report, f"dashboard {label}", substitute(expr), range_query=not instant)
        # The model swap happened once, a few bursts in: look for it over the whole run.
        for label, expr, _ in dashboard_queries(dash):
            if label == "annotation 'Response model changes'":
                expect_data(prom, report, f"dashboard {label} (over the whole run)", substitute(expr),
                            range_query=True, range_seconds=time.monotonic() - started + 10, retry=20)

        # Every rule: recording rules' expressions and recorded series; alert expressions.
        log("rules:")
        groups = wait_until("rules loaded", lambda: prom.get("/api/v1/rules")["groups"], 10)
        rules = [r for g in groups for r in g["rules"]]
        time.sleep(1.5)  # one more evaluation round, so every rule has a health
        rules = [r for g in prom.get("/api/v1/rules")["groups"] for r in g["rules"]]
        bad = [f"{r['name']}: {r.get('lastError')}" for r in rules if r.get("health") != "ok"]
        report.check(not bad, f"Prometheus evaluates all {len(rules)} rules without error", "; ".join(bad))
        seen_alerts = set()
        for r in rules:
            if r["type"] == "recording":
                expect_data(prom, report, f"recording {r['name']} (expression)", r["query"])
                expect_data(prom, report, f"recording {r['name']} (recorded series)", r["name"])
                continue
            name = r["name"]
            expect_series_exist(prom, report, f"alert {name}", r["query"])
            label = f"alert {name}" + (f" {r['labels']}" if len(
                [x for x in rules if x['name'] == name]) > 1 else "")
            exp = ALERT_EXPECTATIONS.get(name)
            if exp is None:
                expect_data(prom, report, label, r["query"])
                continue
            if name not in seen_alerts:
                seen_alerts.add(name)
                if exp["why"].startswith("exception"):
                    report.exceptions.append(f"{name}: {exp['why'][len('exception: '):]}")
                for probe in exp["probes"]:
                    expect_data(prom, report, f"{name} probe", probe)
            if exp["expect"] == "empty":
                expect_empty(prom, report, f"{label}: empty ({exp['why']})", r["query"])
            elif exp["expect"] == "evaluates":
                result, err = prom.query(r["query"])
                got = {s["metric"].get("target") for s in result or []}
                report.check(not err and got <= {"healthy", "faulty"},
                             f"{label}: evaluates ({exp['why']})",
                             f"{err or ''} got {sorted(map(str, got))}")
            else:
                want = set(exp["expect"].split(":", 1)[1].split(","))
                result = expect_data(prom, report, f"{label}: fires for {sorted(want)}", r["query"], retry=20)
                if result is not None:
                    got = {s["metric"].get("target") for s in result}
                    report.check(got == want, f"{label}: exactly {sorted(want)}", f"got {sorted(got)}")
        check_alert_annotations(rules, report)
        missing = set(ALERT_EXPECTATIONS) - {r["name"] for r in rules if r["type"] == "alerting"}
        report.check(not missing, "every expected alert is in the rules file", ", ".join(sorted(missing)))
        # Prometheus's own rule engine agrees: exactly the expected alerts are pending or firing.
        # It evaluates on its own clock (every 1s), so an expression that has just become true
        # in a query (a verdict that turned regressed a moment ago) is active one round later:
        # wait up to a few rounds for the set to settle.
        want = {(name, t) for name, e in ALERT_EXPECTATIONS.items() if e["expect"].startswith("data:")
                for t in e["expect"].split(":", 1)[1].split(",")}
        for _ in range(10):
            alerts = prom.get("/api/v1/alerts")["alerts"]
            active = {(a["labels"]["alertname"], a["labels"].get("target")) for a in alerts}
            if active == want:
                break
            time.sleep(0.5)
        report.check(active == want, "Prometheus's active (pending/firing) alerts are exactly the expected ones",
                     ", ".join(f"{a}/{t}" for a, t in sorted(active, key=str))
                     + ("" if active == want else f"; expected {sorted(want)}"))

        # Histogram quantile against the exact one of the newest result file.
        path, doc = newest_result(results_dir, "healthy")
        if doc is None:
            report.fail("result file of healthy", f"no JSON under {results_dir}/healthy")
        else:
            exact = ((doc.get("summary") or {}).get("ttft") or {}).get("p50")
            result, err = prom.query('histogram_quantile(0.5, sum by (le) (rate('
                                     'streamprobe_time_to_first_token_seconds_bucket{target="healthy"}[1m])))')
            est = float(result[0]["value"][1]) if result else float("nan")
            if exact is None or err or math.isnan(est):
                report.fail("TTFT p50: histogram vs result file", f"exact={exact} histogram={est} {err or ''}")
            else:
                di = abs(bucket_index(est, LATENCY_BUCKETS) - bucket_index(exact, LATENCY_BUCKETS))
                report.check(di <= 1, "TTFT p50: histogram within one bucket of the result file",
                             f"histogram {est:.4f}s, exact {exact:.4f}s ({os.path.basename(path)})")
        # The daemon writes its verdict into each result file; healthy's is not regressed.
        if doc is not None:
            ttft_verdict = ((doc.get("verdict") or {}).get("ttft") or {}).get("verdict")
            report.check(ttft_verdict in ("no_change", "inconclusive", "improved"),
                         "result file of healthy: verdict.ttft is not regressed", f"verdict.ttft.verdict = {ttft_verdict}")
        procs.check_alive()

        # Shutdown: SIGTERM makes the daemon exit 0 (DESIGN §7), and then StreamprobeDown sees it.
        daemon.terminate()
        try:
            rc = daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            rc = "still running after 15s"
        report.check(rc == 0, "daemon exits 0 on SIGTERM", f"exit status {rc}")
        down = next(r["query"] for r in rules if r["name"] == "StreamprobeDown")
        expect_data(prom, report, "alert StreamprobeDown: fires once the daemon is gone", down, retry=15)
        ok_exit = True
    except KeyboardInterrupt as e:
        report.fail("run", f"interrupted ({e})")
    except (TimeoutError, RuntimeError, OSError, ValueError, KeyError) as e:
        report.fail("run", str(e))
    finally:
        signal.alarm(0)
        procs.stop_all()
        if report.failed:
            log("logs:\n" + procs.tails())
        if args.keep or report.failed:
            log(f"work dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    for e in report.exceptions:
        log(f"  exception: {e}")
    elapsed = time.monotonic() - started
    verdict = "PASS" if report.failed == 0 and ok_exit else "FAIL"
    log(f"e2e-prometheus: {report.passed} passed, {report.failed} failed, "
        f"{len(report.exceptions)} exceptions ({verdict}, {elapsed:.0f}s{', fake exporter' if args.fake else ''})")
    return 0 if verdict == "PASS" else 1


# ----------------------------------------------------------------------------------------------
# Fake exporter: simulated bursts of two targets, every streamprobe metric, result files.


class Histogram:
    def __init__(self, bounds):
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.count = 0

    def observe(self, v):
        for i, b in enumerate(self.bounds):
            if v <= b:
                self.counts[i] += 1
        self.sum += v
        self.count += 1


class FakeDaemon:
    def __init__(self, results_dir, config_path):
        self.lock = threading.Lock()
        self.results_dir = results_dir
        self.config_path = config_path
        self.start_time = time.time()
        self.reload_ok = 1
        self.reload_ts = time.time()
        self.hist = {}     # (family, labels tuple) -> Histogram
        self.counters = {}  # (family, labels tuple) -> float
        self.gauges = {}   # (family, labels tuple) -> float
        self.burst_seq = 0
        self.requests = {t: 0 for t in TARGETS}
        self.identity = {}  # target -> (model, fingerprint), as the daemon keeps it
        self.shifted = False  # faulty's TTFT raised by the reload (see SHIFTED_TTFT)
        self.baseline = {t: [] for t in TARGETS}  # pre-shift TTFTs: a stand-in for the windows
        self.recent = {t: [] for t in TARGETS}  # the last three bursts' TTFTs
        for t in TARGETS:
            for fam in ("streamprobe_input_tokens_total", "streamprobe_cached_input_tokens_total",
                        "streamprobe_reasoning_tokens_total", "streamprobe_response_model_changes_total"):
                self.counters[(fam, (("target", t),))] = 0
            self.counters[("streamprobe_requests_total", (("target", t), ("outcome", "success")))] = 0
            for r in ("success", "partial", "failed"):
                self.counters[("streamprobe_bursts_total", (("target", t), ("result", r)))] = 0
            for r in ("overlap", "late"):
                self.counters[("streamprobe_bursts_skipped_total", (("target", t), ("reason", r)))] = 0
            self.counters[("streamprobe_result_write_failures_total", (("target", t),))] = 0
            for kind in ("new", "reused"):
                self.counters[("streamprobe_connections_total", (("target", t), ("kind", kind)))] = 0
            self.counters[("streamprobe_connection_retries_total", (("target", t),))] = 0
            for r in ("good", "bad"):
                self.counters[("streamprobe_slo_requests_total", (("target", t), ("slo", "ttft"), ("result", r)))] = 0
            self.gauges[("streamprobe_in_flight_requests", (("target", t),))] = 0
            self.gauges[("streamprobe_schedule_period_seconds", (("target", t),))] = 2
            self.gauges[("streamprobe_schedule_lag_seconds", (("target", t),))] = 0.001
            self.gauges[("streamprobe_target_info", (("target", t), ("protocol", "openai"), ("model", "mock"),
                                                     ("endpoint", "http://127.0.0.1/v1/chat/completions")))] = 1

    def _h(self, family, labels, bounds):
        key = (family, labels)
        if key not in self.hist:
            self.hist[key] = Histogram(bounds)
        return self.hist[key]

    def _inc(self, family, labels, by=1.0):
        key = (family, labels)
        self.counters[key] = self.counters.get(key, 0) + by

    def burst(self, target, fault_p):
        start = time.time()
        ttfts, records = [], []
        with self.lock:
            for i in range(8):
                T = (("target", target),)
                self.requests[target] += 1
                switched = target == "faulty" and self.requests[target] > MODEL_SWITCH_AFTER
                self._identity(target, ("mock-next", "fp_mock_next") if switched else ("mock", "fp_mock"))
                # As the mocks' provider headers: OpenAI's family for healthy, Anthropic's for faulty.
                limits = {"requests": (500, 499), "tokens": (30000, 29500)} if target == "healthy" else \
                    {"requests": (1000, 999), "tokens": (96000, 95000), "input_tokens": (80000, 79000),
                     "output_tokens": (16000, 15900)}
                for resource, (limit, remaining) in limits.items():
                    self.gauges[("streamprobe_ratelimit_limit", T + (("resource", resource),))] = limit
                    self.gauges[("streamprobe_ratelimit_remaining", T + (("resource", resource),))] = remaining
                # One new connection per burst slot at first, reused after (as the pooled daemon).
                new = self.requests[target] <= 4
                self._inc("streamprobe_connections_total", T + (("kind", "new" if new else "reused"),))
                if random.random() < fault_p:
                    d = random.uniform(0.002, 0.01)
                    self.gauges[("streamprobe_retry_after_seconds", T)] = 7
                    self._inc("streamprobe_requests_total", T + (("outcome", "http_5xx"),))
                    # As the daemon: a failed request is bad for every SLO configured on the target.
                    self._inc("streamprobe_slo_requests_total", T + (("slo", "ttft"), ("result", "bad")))
                    self._h("streamprobe_request_duration_seconds", T + (("outcome", "http_5xx"),), LATENCY_BUCKETS).observe(d)
                    records.append({"request_id": i + 1, "outcome": "http_5xx", "error": "HTTP 503", "total_time": d})
                    continue
                hdr = random.uniform(0.002, 0.02)
                base = 0.225 if (self.shifted and target == "faulty") else 0.15
                ttft = base + random.uniform(0.0, 0.008)
                itls = [0.01 + random.uniform(0, 0.002) for _ in range(29)]
                dur = ttft + sum(itls)
                tpot = sum(itls) / 29
                ttfts.append(ttft)
                self._inc("streamprobe_requests_total", T + (("outcome", "success"),))
                self._h("streamprobe_request_duration_seconds", T + (("outcome", "success"),), LATENCY_BUCKETS).observe(dur)
                self._h("streamprobe_time_to_first_token_seconds", T, LATENCY_BUCKETS).observe(ttft)
                self._h("streamprobe_time_to_first_visible_token_seconds", T, LATENCY_BUCKETS).observe(ttft)
                self._inc("streamprobe_input_tokens_total", T, 30)
                self._h("streamprobe_time_to_headers_seconds", T, LATENCY_BUCKETS).observe(hdr)
                phases = {"headers": hdr, "first_token": ttft - hdr, "generation": dur - ttft}
                if new:
                    phases["connect"] = 0.0004
                    phases["headers"] = hdr - 0.0004
                    if target == "healthy":
                        phases["resolve"] = 0.0006
                        phases["headers"] -= 0.0006
                for phase, took in phases.items():
                    self._h("streamprobe_phase_seconds", T + (("phase", phase),), PHASE_BUCKETS).observe(took)
                h = self._h("streamprobe_inter_token_latency_seconds", T, TOKEN_BUCKETS)
                for g in itls:
                    h.observe(g)
                self._h("streamprobe_time_per_output_token_seconds", T, TOKEN_BUCKETS).observe(tpot)
                self._inc("streamprobe_output_tokens_total", T + (("source", "usage"),), 30)
                self._inc("streamprobe_slo_requests_total", T + (("slo", "ttft"), ("result", "good" if ttft <= 1 else "bad")))
                records.append({"request_id": i + 1, "outcome": "success", "error": None, "ttft": ttft,
                                "total_time": dur, "output_tokens": 30, "time_to_headers": hdr, "tpot": tpot})
            ok = len(ttfts)
            result = "success" if ok == 8 else ("partial" if ok else "failed")
            self._inc("streamprobe_bursts_total", (("target", target), ("result", result)))
            now = time.time()
            self.gauges[("streamprobe_last_burst_timestamp_seconds", (("target", target),))] = now
            self.gauges[("streamprobe_last_burst_success_ratio", (("target", target),))] = ok / 8
            self.gauges[("streamprobe_burst_duration_seconds", (("target", target),))] = 0.9
            s = sorted(ttfts)
            for q in ("0.5", "0.9", "0.95", "0.99"):
                if s:
                    self.gauges[("streamprobe_last_burst_ttft_seconds", (("target", target), ("quantile", q)))] = \
                        numpy_linear_percentile(s, float(q))
            verdict = self._verdict(target, ttfts)
            self.burst_seq += 1
            seq = self.burst_seq
        s = sorted(ttfts)
        summary = {"success_count": ok, "failed_count": 8 - ok, "outcomes": {}}
        if s:
            summary["ttft"] = {"count": len(s), "min": s[0], "max": s[-1], "mean": sum(s) / len(s),
                               "median": numpy_linear_percentile(s, 0.5),
                               **{f"p{int(float(q) * 100)}": numpy_linear_percentile(s, float(q))
                                  for q in ("0.5", "0.9", "0.95", "0.99")}}
        doc = {"schema_version": 2, "tool": {"name": "streamprobe-fake", "version": "0"},
               "burst_id": f"fake{seq:06d}", "target": target, "summary": summary,
               "verdict": {"statistic": "p90", "ttft": {"verdict": verdict}}, "metrics": records}
        d = os.path.join(self.results_dir, target)
        name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(start)) + f"-fake{seq:06d}.json"
        tmp = os.path.join(d, "." + name + ".tmp")
        try:
            os.makedirs(d, exist_ok=True)
            with open(tmp, "w") as f:
                json.dump(doc, f)
            os.rename(tmp, os.path.join(d, name))
        except OSError:
            with self.lock:
                self._inc("streamprobe_result_write_failures_total", (("target", target),))

    def _verdict(self, target, ttfts):
        """A stand-in for the daemon's windows: baseline = every burst before the last three,
        recent = the last three; regressed when the recent p90 is 20% above the baseline's."""
        self.recent[target].append(ttfts)
        if len(self.recent[target]) > 3:
            self.baseline[target].extend(self.recent[target].pop(0))
        base = sorted(self.baseline[target])
        recent = sorted(x for b in self.recent[target] for x in b)
        T = (("target", target), ("metric", "ttft"))
        verdict = "insufficient_data"
        if len(base) >= 10 and len(recent) >= 10:
            ratios = {}
            for q in ("0.5", "0.9", "0.99"):
                b = numpy_linear_percentile(base, float(q))
                self.gauges[("streamprobe_baseline_seconds", T + (("quantile", q),))] = b
                ratios[q] = numpy_linear_percentile(recent, float(q)) / b
                self.gauges[("streamprobe_change_ratio", T + (("quantile", q),))] = ratios[q]
            verdict = "regressed" if ratios["0.9"] > 1.2 else "no_change"
        for v in ("regressed", "improved", "no_change", "inconclusive", "insufficient_data"):
            self.gauges[("streamprobe_verdict", T + (("verdict", v),))] = 1 if v == verdict else 0
        return verdict

    def _identity(self, target, new):
        """As the daemon: the latest model/fingerprint only, a change counted, not the first."""
        old = self.identity.get(target)
        if old == new:
            return
        if old is not None:
            del self.gauges[("streamprobe_response_model_info", (("target", target), ("model", old[0]), ("fingerprint", old[1])))]
            self._inc("streamprobe_response_model_changes_total", (("target", target),))
        self.identity[target] = new
        self.gauges[("streamprobe_response_model_info", (("target", target), ("model", new[0]), ("fingerprint", new[1])))] = 1

    def reload(self):
        with open(self.config_path) as f:
            text = f.read()
        with self.lock:
            # Stand-in for validation: unknown top-level keys are errors, as in the daemon.
            keys = {m.group(1) for m in re.finditer(r"^([A-Za-z_][A-Za-z0-9_]*):", text, re.M)}
            if keys - {"server", "results", "defaults", "targets"}:
                self.reload_ok = 0
                return False
            self.reload_ok = 1
            self.reload_ts = time.time()
            self.shifted = f"ttft={SHIFTED_TTFT}" in text
            return True

    def exposition(self):
        lines = []
        types = {}

        def fmt_labels(labels, extra=()):
            items = list(labels) + list(extra)
            if not items:
                return ""
            return "{" + ",".join(f'{k}="{v}"' for k, v in items) + "}"

        def fmt_le(b):
            return "+Inf" if b == math.inf else repr(float(b))

        with self.lock:
            for (fam, labels), v in sorted(self.counters.items()):
                types[fam] = "counter"
                lines.append((fam, f"{fam}{fmt_labels(labels)} {v}"))
            for (fam, labels), v in sorted(self.gauges.items()):
                types[fam] = "gauge"
                lines.append((fam, f"{fam}{fmt_labels(labels)} {v}"))
            for (fam, labels), h in sorted(self.hist.items(), key=lambda kv: kv[0]):
                types[fam] = "histogram"
                for b, c in zip(h.bounds, h.counts):
                    lines.append((fam, f"{fam}_bucket{fmt_labels(labels, [('le', fmt_le(b))])} {c}"))
                lines.append((fam, f"{fam}_bucket{fmt_labels(labels, [('le', '+Inf')])} {h.count}"))
                lines.append((fam, f"{fam}_sum{fmt_labels(labels)} {h.sum}"))
                lines.append((fam, f"{fam}_count{fmt_labels(labels)} {h.count}"))
            fixed = [
                ("streamprobe_config_last_reload_successful", "gauge", f"streamprobe_config_last_reload_successful {self.reload_ok}"),
                ("streamprobe_config_last_reload_success_timestamp_seconds", "gauge",
                 f"streamprobe_config_last_reload_success_timestamp_seconds {self.reload_ts}"),
                ("streamprobe_build_info", "gauge", 'streamprobe_build_info{version="0.0.0-fake",revision="fake"} 1'),
                ("process_start_time_seconds", "gauge", f"process_start_time_seconds {self.start_time}"),
                ("process_cpu_seconds_total", "counter", f"process_cpu_seconds_total {time.process_time()}"),
            ]
        out = []
        by_family = {}
        for fam, line in lines:
            by_family.setdefault(fam, []).append(line)
        for fam, fam_lines in by_family.items():
            out.append(f"# HELP {fam} streamprobe e2e fake")
            out.append(f"# TYPE {fam} {types[fam]}")
            out.extend(fam_lines)
        for fam, typ, line in fixed:
            out.append(f"# HELP {fam} streamprobe e2e fake")
            out.append(f"# TYPE {fam} {typ}")
            out.append(line)
        return "\n".join(out) + "\n"


def fake_exporter(args):
    fake = FakeDaemon(args.results, args.config)
    host, port = args.listen.rsplit(":", 1)

    def scheduler():
        while True:
            fake.burst("healthy", 0.0)
            fake.burst("faulty", 0.3)
            time.sleep(2)

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code, body, ctype="text/plain; charset=utf-8"):
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/metrics":
                self._send(200, fake.exposition(), "text/plain; version=0.0.4; charset=utf-8")
            elif self.path in ("/-/ready", "/-/healthy"):
                self._send(200, "ok\n")
            else:
                self._send(404, "not found\n")

        def do_POST(self):
            if self.path == "/-/reload":
                if fake.reload():
                    self._send(200, "configuration reloaded\n")
                else:
                    self._send(400, "reload failed: unknown key\n")
            else:
                self._send(404, "not found\n")

        def log_message(self, *_):
            pass

    threading.Thread(target=scheduler, daemon=True).start()
    server = ThreadingHTTPServer((host, int(port)), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the end-to-end test")
    r.add_argument("--fake", action="store_true", help="a fake exporter instead of daemon + mock")
    r.add_argument("--keep", action="store_true", help="keep the work dir (logs, TSDB, results)")
    f = sub.add_parser("fake-exporter", help="(internal) the --fake stand-in")
    f.add_argument("--listen", required=True)
    f.add_argument("--results", required=True)
    f.add_argument("--config", required=True)
    args = ap.parse_args()
    if args.cmd == "run":
        sys.exit(run(args))
    fake_exporter(args)


if __name__ == "__main__":
    main()
