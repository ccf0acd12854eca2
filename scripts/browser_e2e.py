#!/usr/bin/env python3
"""Real-browser test of the pictures (DESIGN §12): headless Chromium renders the `run --html`
report, the `compare --html` report and the daemon's status, target and burst pages; each page's
rendered DOM must hold the expected plots (with consistent row and point counts), the page must
make no request outside itself, and a screenshot of each is saved.

Run it through scripts/browser-e2e.sh. Python 3.8+ standard library only.

    browser_e2e.py run [--screenshots DIR] [--keep]   the test; screenshots into DIR
                                                       (default target/browser-e2e/)
    browser_e2e.py self-test                           the checker against tests/data/browser/
    browser_e2e.py render URL|FILE...                  print what the checker sees (debugging)

How Chromium is driven: the DevTools protocol over `--remote-debugging-pipe` (fd 3 in, fd 4 out,
JSON messages ending in NUL), one browser for all pages, a fresh browser context and tab per
page, 1024 px wide.

How "no request outside itself" is checked, three ways, any one failing the page:
  * every request the tab reports (Network.requestWillBeSent, including ones blocked by CSP or
    failed) must be the page's own URL, or data:/blob:/about:;
  * each page's browser context has a trap on 127.0.0.1 as its proxy, which answers 403 and
    records every request it gets: loopback goes direct (Chromium's implicit bypass), so
    anything reaching the trap was bound elsewhere (even to an IP literal); the browser's own
    background traffic (update checks, sign-in) goes to another refusing proxy, not counted;
    `--host-resolver-rules` maps every host name but 127.0.0.1/localhost to NOTFOUND, so a leak
    can never succeed silently;
  * console errors and CSP violations (Log.entryAdded) count as failures: on a page served
    with a strict Content-Security-Policy an external reference is blocked before it becomes a
    request, and shows up here instead.
The self-test proves each of these fires (tests/data/browser/*.html with an external image by
name and by IP literal, an external style sheet font, a page served under CSP with an external
image, a page without the CSP header or with a lax one), as do the DOM checks (a miscounted waterfall, a missing
compare CDF, a trend without points, a plot that takes no space), and that good fixtures pass.

Does not: listen on anything but 127.0.0.1, write outside its temporary directory (except the
screenshots directory), or leave a process running.
"""

import argparse
import base64
import json
import os
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
FIXTURES = os.path.join(ROOT, "tests", "data", "browser")
WIDTH, HEIGHT = 1024, 768
# Screenshots are cut at this size (CSS px): README pictures, not posters.
MAX_SHOT_HEIGHT, MAX_SHOT_WIDTH = 2400, 1600
TARGET = "mock"  # the daemon's one target
BURST_REQUESTS = 12  # requests per daemon burst
RUN_REQUESTS = 20  # requests per `run`
MIN_BURSTS = 8  # bursts the daemon has made before its pages are shown (one a second): enough
# for a baseline under the short verdict windows below, so the target page shows its band
# The mock answers 10% of requests with 429 (the daemon's waterfall shows failures); `run`
# switches that off per request (`fault=none`) so that both compared runs differ only in TTFT.
MOCK_FAULT = "429:0.1"
# What a page of the daemon must send (the pictures' policy, src/output/html/mod.rs): nothing
# may be fetched from anywhere.
CSP_MUST_CONTAIN = "default-src 'none'"


def log(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5.0):
    """Returns (status, headers, text); status 0 when the connection failed."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, {}, str(e)


def wait_until(what, fn, timeout, interval=0.3):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def die_with_parent():
    """In the child: SIGTERM when this process dies, even by SIGKILL; own process group."""
    os.setsid()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop_group(p, grace=5.0):
    """Stops p and its process group (it leads one: die_with_parent calls setsid)."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(p.pid, signal.SIGKILL)  # stragglers of the group (Chromium's helpers)
    except ProcessLookupError:
        pass
    p.wait()


# ----------------------------------------------------------------------------------------------
# The trap proxy


class Trap:
    """An HTTP proxy on 127.0.0.1 that refuses everything (403) and records what was asked."""

    def __init__(self):
        self.hits = []
        self.lock = threading.Lock()
        trap = self

        class Handler(BaseHTTPRequestHandler):
            def _refuse(self):
                with trap.lock:
                    trap.hits.append(f"{self.command} {self.path}")
                self.send_response(403, "streamprobe browser test: no request may leave the page")
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_OPTIONS = do_CONNECT = _refuse

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self):
        with self.lock:
            hits, self.hits = self.hits, []
        return hits

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ----------------------------------------------------------------------------------------------
# Chromium over the DevTools pipe


def find_chromium():
    # Debian's /usr/bin/chromium is a shell wrapper that exports Google API keys (which switch
    # on sign-in and update traffic); its binary is /usr/lib/chromium/chromium.
    for name in (os.environ.get("CHROMIUM"), "/usr/lib/chromium/chromium", "chromium", "chromium-browser",
                 "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Chromium:
    """One headless Chromium, driven over --remote-debugging-pipe."""

    def __init__(self, binary, workdir):
        # Where the browser's own traffic goes: refused, not counted (see render()).
        self.sink = Trap()
        sink_port = self.sink.port
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
        self.log_path = os.path.join(workdir, "chromium.log")
        cmd_r, self.cmd_w = os.pipe()
        self.resp_r, resp_w = os.pipe()
        argv = [
            binary, "--headless=new", f"--user-data-dir={self.profile}", "--remote-debugging-pipe",
            "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--disable-default-apps", "--disable-breakpad", "--mute-audio",
            "--hide-scrollbars", "--force-device-scale-factor=1", f"--window-size={WIDTH},{HEIGHT}",
            # Chromium's own background traffic (it would hit the trap): Puppeteer's set.
            "--disable-client-side-phishing-detection", "--disable-component-extensions-with-background-pages",
            "--disable-domain-reliability", "--metrics-recording-only", "--no-pings", "--password-store=basic",
            "--use-mock-keychain", "--enable-automation", "--disable-search-engine-choice-screen",
            "--disable-features=Translate,MediaRouter,OptimizationHints,OptimizationHintsFetching,"
            "OptimizationGuideModelDownloading,NetworkTimeServiceQuerying,AutofillServerCommunication,"
            "CertificateTransparencyComponentUpdater",
            f"--proxy-server=http://127.0.0.1:{sink_port}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
            "about:blank",
        ]
        if os.geteuid() == 0:
            argv.insert(2, "--no-sandbox")  # Chromium refuses to run as root with its sandbox

        def child():
            os.dup2(cmd_r, 3)
            os.dup2(resp_w, 4)
            die_with_parent()

        logfile = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_")}
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logfile, stderr=logfile,
                                     pass_fds=(3, 4), preexec_fn=child, env=env)
        logfile.close()
        os.close(cmd_r)
        os.close(resp_w)
        self.next_id = 0
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.responses = {}
        self.events = []
        self.closed = False
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.resp_r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self.cond:
                    if "id" in msg:
                        self.responses[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self.cond.notify_all()

    def send(self, method, params=None, session=None, timeout=30.0):
        with self.lock:
            self.next_id += 1
            mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.cmd_w, data):]
        deadline = time.monotonic() + timeout
        with self.cond:
            while mid not in self.responses:
                if self.closed:
                    raise RuntimeError(f"Chromium exited (status {self.proc.poll()}); log {self.log_path}:\n"
                                       + tail(self.log_path))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"Chromium did not answer {method} within {timeout:.0f}s")
                self.cond.wait(left)
            resp = self.responses.pop(mid)
        if "error" in resp:
            raise RuntimeError(f"{method}: {resp['error'].get('message')} {resp['error'].get('data', '')}")
        return resp.get("result", {})

    def take_events(self, session):
        with self.cond:
            mine = [e for e in self.events if e.get("sessionId") == session]
            self.events = [e for e in self.events if e.get("sessionId") != session]
        return mine

    def wait_event(self, session, method, timeout):
        """Waits for `method` on `session`; returns the events seen so far (kept in the queue)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                seen = [e for e in self.events if e.get("sessionId") == session]
                if any(e["method"] == method for e in seen):
                    return seen
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise TimeoutError(f"no {method} within {timeout:.0f}s")
                self.cond.wait(left)

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        stop_group(self.proc)
        for fd in (self.cmd_w, self.resp_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.sink.close()
        shutil.rmtree(self.profile, ignore_errors=True)


# What the page shows, collected in the page after it loaded.
PROBE_JS = r"""
(() => {
  const num = v => (v === undefined || v === null || v === '') ? null : Number(v);
  const plots = [...document.querySelectorAll('svg.plot')].map(s => {
    const r = s.getBoundingClientRect();
    return {
      kind: s.getAttribute('data-plot'), metric: s.getAttribute('data-metric'),
      requests: num(s.getAttribute('data-requests')), rows: num(s.getAttribute('data-rows')),
      points: num(s.getAttribute('data-points')),
      wf_rows: s.querySelectorAll('g.wf-row').length,
      shapes: s.querySelectorAll('path,rect,line,circle,polyline,polygon').length,
      width: r.width, height: r.height,
    };
  });
  // References the page would fetch (links to navigate to are not fetches).
  const refs = [];
  for (const el of document.querySelectorAll('[src],link[href],use,image,object[data]')) {
    for (const a of ['src', 'href', 'xlink:href', 'data']) {
      const v = el.getAttribute(a);
      if (v && !(el.tagName === 'A')) refs.push(el.tagName.toLowerCase() + ' ' + a + '=' + v);
    }
  }
  return JSON.stringify({
    title: document.title, url: location.href, plots,
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    text: document.body ? document.body.innerText : '',
    refs, scripts: document.scripts.length,
    height: Math.ceil(document.body ? document.body.getBoundingClientRect().bottom + 16 : 0),
    width: Math.ceil(document.documentElement.scrollWidth),
  });
})()
"""


def favicon_of(page_url):
    """The icon Chromium asks a web page's origin for by itself (None for file:// pages)."""
    parts = urllib.parse.urlsplit(page_url)
    return f"{parts.scheme}://{parts.netloc}/favicon.ico" if parts.scheme in ("http", "https") else None


def allowed_request(url, page_url):
    """The page itself, data:/blob:/about:, and the browser's own same-origin /favicon.ico
    request (the page does not ask for it; pages can stop it with <link rel=icon href=data:,>)."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme in ("data", "blob", "about") or url == favicon_of(page_url):
        return True
    return urllib.parse.urldefrag(url)[0] == urllib.parse.urldefrag(page_url)[0]


def render(browser, trap, url, shot_path=None):
    """Loads url in a fresh tab; returns what the page shows and what it asked for."""
    trap.take()
    # A fresh browser context per page (no cache, no cookies) whose proxy is the trap; the
    # browser's own background traffic (update checks, sign-in) goes to the default context's
    # proxy, the sink, and is not the page's doing.
    context = browser.send("Target.createBrowserContext",
                           {"proxyServer": f"http://127.0.0.1:{trap.port}"})["browserContextId"]
    target = browser.send("Target.createTarget", {"url": "about:blank", "browserContextId": context})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    try:
        for domain in ("Page", "Network", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}, session=session)
        browser.take_events(session)
        nav = browser.send("Page.navigate", {"url": url}, session=session)
        if nav.get("errorText"):
            status = f" (HTTP {http_get(url)[0]})" if url.startswith("http") else ""
            raise RuntimeError(f"navigating to {url}: {nav['errorText']}{status}")
        browser.wait_event(session, "Page.loadEventFired", 20)
        # Settle: no request in flight for 300 ms (a leak may start after the load event).
        pending, quiet_since, events = set(), time.monotonic(), []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            new = browser.take_events(session)
            for e in new:
                p = e.get("params", {})
                if e["method"] == "Network.requestWillBeSent":
                    pending.add(p["requestId"])
                elif e["method"] in ("Network.loadingFinished", "Network.loadingFailed"):
                    pending.discard(p["requestId"])
            if new:
                quiet_since = time.monotonic()
            events += new
            if not pending and time.monotonic() - quiet_since > 0.3:
                break
            time.sleep(0.05)
        seen = json.loads(browser.send("Runtime.evaluate", {"expression": PROBE_JS, "returnByValue": True},
                                       session=session)["result"]["value"])
        if shot_path:
            h = min(max(seen["height"], 200), MAX_SHOT_HEIGHT)
            w = min(max(seen["width"], WIDTH), MAX_SHOT_WIDTH)  # a wide table widens the page
            shot = browser.send("Page.captureScreenshot",
                                {"format": "png", "captureBeyondViewport": True,
                                 "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}},
                                session=session)
            with open(shot_path, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        events += browser.take_events(session)
    finally:
        browser.send("Target.closeTarget", {"targetId": target})
        browser.send("Target.disposeBrowserContext", {"browserContextId": context})

    requests, errors, main_response = [], [], None
    for e in events:
        p = e.get("params", {})
        if e["method"] == "Network.requestWillBeSent":
            requests.append(p["request"]["url"])
        elif e["method"] == "Network.responseReceived" and p.get("type") == "Document" and main_response is None:
            main_response = p["response"]
        elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
            entry, icon = p["entry"], favicon_of(url)
            if not icon or icon not in (entry.get("url", "") + entry["text"]):  # see allowed_request
                errors.append(f"{entry['source']}: {entry['text']} {entry.get('url', '')}".strip())
        elif e["method"] == "Runtime.exceptionThrown":
            errors.append(f"exception: {p['exceptionDetails'].get('text')}")
    time.sleep(0.1)  # a proxy request racing the tab's close still lands in this page's hits
    seen.update(requests=requests, errors=errors, trap=trap.take(),
                headers={k.lower(): v for k, v in (main_response or {}).get("headers", {}).items()},
                status=(main_response or {}).get("status"))
    return seen


# ----------------------------------------------------------------------------------------------
# Checks: each returns a list of problems (empty: the page passed)


def check_self_contained(seen, page_url):
    """No request outside the page, nothing refused by the trap, no console error or CSP report."""
    problems = [f"request outside the page: {u}" for u in seen["requests"] if not allowed_request(u, page_url)]
    problems += [f"the trap proxy got: {h}" for h in seen["trap"]]
    problems += [f"console error: {e}" for e in seen["errors"]]
    problems += [f"external reference in the DOM: {r}" for r in seen["refs"]
                 if not r.split("=", 1)[1].startswith(("data:", "#"))]
    return problems


def check_csp_header(seen):
    csp = seen["headers"].get("content-security-policy")
    if not csp:
        return ["no Content-Security-Policy header"]
    if CSP_MUST_CONTAIN not in csp:
        return [f"Content-Security-Policy lacks {CSP_MUST_CONTAIN!r}: {csp}"]
    lax = [t for t in csp.replace(";", " ").split() if "://" in t or t in ("*", "http:", "https:")]
    return [f"Content-Security-Policy allows other sources {lax}: {csp}"] if lax else []


def plots_of(seen, kind):
    return [p for p in seen["plots"] if p["kind"] == kind]


def check_drawn(seen):
    """Every plot has a size on screen and something drawn in it."""
    return [f"plot {p['kind']}{'/' + p['metric'] if p['metric'] else ''} is not drawn "
            f"({p['width']:.0f}x{p['height']:.0f} px, {p['shapes']} shapes)"
            for p in seen["plots"] if p["width"] < 50 or p["height"] < 50 or p["shapes"] < 3]


def check_burst_plots(seen, requests):
    """A burst's plots (run --html and the burst page): one each of ttft-cdf, itl-hist,
    waterfall, tokens-per-second; the waterfall has `requests` requests and draws one wf-row per
    row, one row per request (small bursts never aggregate)."""
    problems = []
    for kind in ("ttft-cdf", "itl-hist", "waterfall", "tokens-per-second"):
        n = len(plots_of(seen, kind))
        if n != 1:
            problems.append(f"{n} plots {kind} (want 1)")
    for wf in plots_of(seen, "waterfall"):
        if wf["requests"] != requests:
            problems.append(f"waterfall data-requests={wf['requests']} (want {requests}, the requests run)")
        if wf["rows"] != requests:
            problems.append(f"waterfall data-rows={wf['rows']} (want {requests}: one row per request)")
        if wf["wf_rows"] != wf["rows"]:
            problems.append(f"waterfall draws {wf['wf_rows']} g.wf-row but says data-rows={wf['rows']}")
    return problems + check_drawn(seen)


def check_compare_plots(seen, metrics):
    """compare --html: one compare-cdf per compared metric, nothing else missing."""
    got = sorted(p["metric"] or "" for p in plots_of(seen, "compare-cdf"))
    problems = [] if got == sorted(metrics) else [f"compare-cdf plots for {got} (want {sorted(metrics)})"]
    return problems + check_drawn(seen)


def check_trend(seen, min_points=1):
    """The target page: one trend plot with at least min_points points."""
    trends = plots_of(seen, "trend")
    if len(trends) != 1:
        return [f"{len(trends)} trend plots (want 1)"]
    if not trends[0]["points"] or trends[0]["points"] < min_points:
        return [f"trend data-points={trends[0]['points']} (want >= {min_points})"]
    return check_drawn(seen)


def check_status(seen, target):
    """The status page names the target and links to its result file."""
    problems = [] if target in seen["text"] else [f"the status page does not name target {target!r}"]
    if not any(link.startswith(f"/api/v1/results/{target}/") for link in seen["links"]):
        problems.append(f"no link to a result file /api/v1/results/{target}/…")
    return problems


def check_status_links(seen, target):
    """The status page links to the target's page and to a burst page (DESIGN §7, v2)."""
    problems, links = [], seen["links"]
    if f"/targets/{target}" not in links:
        problems.append(f"no link to /targets/{target} (links: {links})")
    if not any(link.startswith(f"/targets/{target}/bursts/") for link in links):
        problems.append(f"no link to a burst page /targets/{target}/bursts/ID")
    return problems


def check_links_resolve(seen, base):
    """Every site-relative link of a daemon page answers 200 (DESIGN §7: every link resolves)."""
    problems = []
    for link in sorted(set(seen["links"])):
        if link.startswith("/") and not link.startswith("//"):
            status = http_get(base + link)[0]
            if status != 200:
                problems.append(f"link {link} answers {status or 'nothing'}")
    return problems


# ----------------------------------------------------------------------------------------------
# The test


class Report:
    def __init__(self):
        self.passed, self.failed = 0, []

    def page(self, name, problems, extra=""):
        if problems:
            log(f"  FAIL  {name}{extra}")
            for p in problems:
                log(f"          {p}")
            self.failed.append(name)
        else:
            log(f"  ok    {name}{extra}")
            self.passed += 1


class Procs:
    def __init__(self, logdir):
        self.logdir, self.procs = logdir, []

    def start(self, name, argv):
        path = os.path.join(self.logdir, f"{name}.log")
        with open(path, "wb") as f:
            p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 cwd=self.logdir, preexec_fn=die_with_parent)
        self.procs.append((name, p, path))
        return p

    def check_alive(self):
        for name, p, path in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with status {p.returncode}:\n{tail(path)}")

    def stop_all(self):
        for _, p, _ in reversed(self.procs):
            stop_group(p)


def tail(path, lines=25):
    try:
        with open(path, "rb") as f:
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def daemon_config(listen, results, mock_port):
    return f"""# written by scripts/browser_e2e.py
server:
  listen: "{listen}"
results:
  dir: "{results}"
targets:
  - name: {TARGET}
    url: "http://127.0.0.1:{mock_port}/v1/chat/completions?ttft=60ms&itl=5ms&tokens=20&jitter=0.3"
    protocol: openai
    schedule: {{every: 1s}}
    run_on_start: true
    concurrency: 4
    total_requests: {BURST_REQUESTS}
    verdict: {{baseline: 1m, recent: 3s, min_samples: 10}}
"""


def run_cli(argv, what, cwd, ok_codes=(0,)):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=cwd)
    if r.returncode not in ok_codes:
        raise RuntimeError(f"{what} exited {r.returncode}: {' '.join(argv)}\n{(r.stdout + r.stderr)[-2000:]}")
    return r


class Context:
    """What the page functions share: the binary, the work dir, the mock, the daemon, Chromium."""

    def __init__(self, binary, tmp, shots, procs, browser, trap, mock_port, base):
        self.binary, self.tmp, self.shots, self.procs = binary, tmp, shots, procs
        self.browser, self.trap, self.mock_port, self.base = browser, trap, mock_port, base
        self.results = {}  # side -> result file of `run`

    def run_result(self, side, ttft):
        """`run` against the mock (RUN_REQUESTS requests at the given TTFT), once per side."""
        if side not in self.results:
            # Relative names in the work dir: the reports show them (and so do the screenshots).
            out, html = f"{side}.json", f"{side}.html"
            run_cli([self.binary, "run", "-u", f"http://127.0.0.1:{self.mock_port}/v1/chat/completions"
                     f"?ttft={ttft}&itl=5ms&tokens=20&jitter=0.3&fault=none", "-n", str(RUN_REQUESTS), "-p", "5",
                     "--no-progress", "-o", out, "--html", html], f"run ({side})", self.tmp)
            self.results[side] = (out, os.path.join(self.tmp, html))
        return self.results[side]

    def some_burst(self):
        """The id of one of the daemon's bursts, once it has made MIN_BURSTS (a trend of several)."""
        def poll():
            self.procs.check_alive()
            status, _, text = http_get(f"{self.base}/api/v1/targets/{TARGET}/bursts")
            bursts = json.loads(text) if status == 200 else []
            if isinstance(bursts, dict):
                bursts = bursts.get("bursts", [])
            if len(bursts) < MIN_BURSTS:
                return None
            # The newest with a failure (the waterfall then shows one), else the newest.
            newest = sorted(bursts, key=lambda b: b["started_at"])[::-1]
            return next((b for b in newest if b.get("failed_count")), newest[0])["burst_id"]
        return wait_until(f"the daemon's first {MIN_BURSTS} bursts", poll, 30 + 2 * MIN_BURSTS)

    def show(self, url, shot):
        """Renders url (screenshot `shot`.png); returns (what the page shows, its problems so far)."""
        path = os.path.join(self.shots, f"{shot}.png")
        seen = render(self.browser, self.trap, url, path)
        problems = [] if seen["status"] in (None, 200) else [f"HTTP {seen['status']}"]  # None: file://
        problems += check_self_contained(seen, url)
        kinds = ", ".join(sorted({p["kind"] for p in seen["plots"]})) or "no plots"
        seen["summary"] = f"  ({kinds}; {len(seen['requests'])} request(s); {path})"
        return seen, problems


def file_url(path):
    return "file://" + urllib.parse.quote(path)


# One function per page: each makes its input, renders it, returns (name, problems, summary).


def page_run_report(ctx):
    """`run --html`: a burst's four plots, one waterfall row per request."""
    _, html = ctx.run_result("candidate", "60ms")
    seen, problems = ctx.show(file_url(html), "run-report")
    return "run --html", problems + check_burst_plots(seen, RUN_REQUESTS), seen["summary"]


COMPARE_METRICS = ["ttft", "itl", "duration"]


def page_compare_report(ctx):
    """`compare --html` of two runs with different TTFT: one compare-cdf per metric."""
    baseline, _ = ctx.run_result("baseline", "120ms")
    candidate, _ = ctx.run_result("candidate", "60ms")
    html = os.path.join(ctx.tmp, "compare.html")
    # The candidate is faster: exit 0; 1 (a gated regression) would be a surprise but no failure here.
    run_cli([ctx.binary, "compare", baseline, candidate, "--metric", ",".join(COMPARE_METRICS),
             "--min-samples", "10", "--html", html], "compare", ctx.tmp, ok_codes=(0, 1))
    seen, problems = ctx.show(file_url(html), "compare-report")
    return "compare --html", problems + check_compare_plots(seen, COMPARE_METRICS), seen["summary"]


def page_status(ctx):
    """The daemon's status page `/`: strict CSP, names the target, links to its pages, every
    link resolves."""
    ctx.some_burst()
    seen, problems = ctx.show(f"{ctx.base}/", "status-page")
    problems += check_csp_header(seen) + check_status(seen, TARGET) + check_status_links(seen, TARGET)
    return "status page /", problems + check_links_resolve(seen, ctx.base), seen["summary"]


def page_target(ctx):
    """`/targets/{name}`: strict CSP, a trend with a point per burst made, every link resolves."""
    ctx.some_burst()
    seen, problems = ctx.show(f"{ctx.base}/targets/{TARGET}", "target-page")
    problems += check_csp_header(seen) + check_trend(seen, MIN_BURSTS) + check_links_resolve(seen, ctx.base)
    return f"target page /targets/{TARGET}", problems, seen["summary"]


def page_burst(ctx):
    """`/targets/{name}/bursts/{id}`: strict CSP, the burst's plots, one row per request."""
    burst_id = ctx.some_burst()
    seen, problems = ctx.show(f"{ctx.base}/targets/{TARGET}/bursts/{burst_id}", "burst-page")
    return (f"burst page /targets/{TARGET}/bursts/{burst_id}",
            problems + check_csp_header(seen) + check_burst_plots(seen, BURST_REQUESTS)
            + check_links_resolve(seen, ctx.base), seen["summary"])


PAGES = [page_run_report, page_compare_report, page_status, page_target, page_burst]


def cmd_run(args):
    binary = os.path.abspath(os.environ.get("STREAMPROBE", os.path.join(ROOT, "target/release/streamprobe")))
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"browser-e2e: {binary} is not an executable (cargo build --release, or STREAMPROBE=path)")
    chromium = find_chromium()
    if not chromium:
        raise SystemExit("browser-e2e: no Chromium (apt-get install -y chromium, or CHROMIUM=path)")
    tmp = tempfile.mkdtemp(prefix="streamprobe-browser-")
    started = time.monotonic()
    log(f"browser-e2e: {binary}; {chromium}; work dir {tmp}")
    shots = os.path.abspath(args.screenshots or os.path.join(ROOT, "target", "browser-e2e"))
    os.makedirs(shots, exist_ok=True)
    procs, trap, browser, report = Procs(tmp), Trap(), None, Report()
    try:
        mock_port, daemon_port = free_port(), free_port()
        base = f"http://127.0.0.1:{daemon_port}"
        procs.start("mock", [binary, "mock", "--listen", f"127.0.0.1:{mock_port}", "--fault", MOCK_FAULT])
        cfg = os.path.join(tmp, "streamprobe.yaml")
        with open(cfg, "w") as f:
            f.write(daemon_config(f"127.0.0.1:{daemon_port}", os.path.join(tmp, "results"), mock_port))
        wait_until("the mock", lambda: procs.check_alive() or port_open(mock_port), 15)
        procs.start("daemon", [binary, "serve", "-c", cfg])
        wait_until("the daemon's /-/ready", lambda: procs.check_alive() or http_get(f"{base}/-/ready")[0] == 200, 30)
        browser = Chromium(chromium, tmp)
        ctx = Context(binary, tmp, shots, procs, browser, trap, mock_port, base)
        log("pages:")
        for page in PAGES:
            try:
                name, problems, summary = page(ctx)
            except (RuntimeError, TimeoutError, OSError, ValueError, KeyError) as e:
                name, problems, summary = page.__name__, [f"{type(e).__name__}: {e}"], ""
            report.page(name, problems, summary)
    except (RuntimeError, TimeoutError, OSError, ValueError) as e:
        report.page("setup", [str(e)])
        log(procs_tails(procs))
    finally:
        if browser:
            browser.close()
        trap.close()
        procs.stop_all()
        if args.keep:
            log(f"browser-e2e: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    summary = f"browser-e2e: {report.passed} passed, {len(report.failed)} failed"
    if report.failed:
        summary += f" (FAIL: {', '.join(report.failed)})"
    log(f"{summary}; {time.monotonic() - started:.0f}s")
    return 1 if report.failed else 0


def procs_tails(procs):
    return "\n".join(f"--- {name} ---\n{tail(path)}" for name, _, path in procs.procs)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# ----------------------------------------------------------------------------------------------
# Self-test: the checker must catch each kind of fault


class FixtureServer:
    """Serves tests/data/browser/ on 127.0.0.1 with a strict CSP header (a lax one under /lax/)."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                name = os.path.basename(urllib.parse.urlsplit(self.path).path)
                path = os.path.join(FIXTURES, name)
                if not name.endswith(".html") or not os.path.isfile(path):
                    self.send_error(404)
                    return
                with open(path, "rb") as f:
                    body = f.read()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                # Under /lax/ a policy that lets images come from another host.
                lax = " https://cdn.example.com" if self.path.startswith("/lax/") else ""
                self.send_header("Content-Security-Policy",
                                 f"default-src 'none'; style-src 'unsafe-inline'; img-src data:{lax}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def cmd_self_test(_args):
    chromium = find_chromium()
    if not chromium:
        raise SystemExit("browser-e2e: no Chromium (apt-get install -y chromium, or CHROMIUM=path)")
    tmp = tempfile.mkdtemp(prefix="streamprobe-browser-selftest-")
    trap, server, browser = Trap(), FixtureServer(), None
    failures = []
    fixture = lambda name: "file://" + urllib.parse.quote(os.path.join(FIXTURES, name))
    # (name, url, check, what must be reported: a substring of one problem, or None for a pass)
    cases = [
        ("good page passes", fixture("good.html"),
         lambda s, u: check_burst_plots(s, 3) + check_self_contained(s, u), None),
        ("external <img> is a leak", fixture("leak-img.html"),
         lambda s, u: check_self_contained(s, u), "the trap proxy got: GET http://example.com/pixel.png"),
        ("external <img> by IP literal is a leak", fixture("leak-img.html"),
         lambda s, u: check_self_contained(s, u), "request outside the page: http://192.0.2.1/pixel.png"),
        ("external font in a style sheet is a leak", fixture("leak-font.html"),
         lambda s, u: check_self_contained(s, u), "request outside the page: http://fonts.example.com/"),
        ("waterfall rows miscounted", fixture("bad-count.html"),
         lambda s, u: check_burst_plots(s, 3), "draws 2 g.wf-row but says data-rows=3"),
        ("one compare CDF per metric passes", fixture("compare-trend.html"),
         lambda s, u: check_compare_plots(s, ["ttft", "itl"]), None),
        ("a metric without its compare CDF", fixture("compare-trend.html"),
         lambda s, u: check_compare_plots(s, ["ttft", "itl", "duration"]),
         "compare-cdf plots for ['itl', 'ttft'] (want ['duration', 'itl', 'ttft'])"),
        ("a trend without points", fixture("compare-trend.html"),
         lambda s, u: check_trend(s), "trend data-points=0"),
        ("a plot that is not drawn", fixture("undrawn.html"),
         lambda s, u: check_drawn(s), "plot ttft-cdf is not drawn (0x0 px"),
        ("external <img> under CSP is reported", f"{server.base}/leak-img.html",
         lambda s, u: check_self_contained(s, u), "Content Security Policy"),
        ("page without CSP header is reported", fixture("good.html"),
         lambda s, u: check_csp_header(s), "no Content-Security-Policy header"),
        ("CSP header allowing another host is reported", f"{server.base}/lax/good.html",
         lambda s, u: check_csp_header(s), "allows other sources ['https://cdn.example.com']"),
        ("good page under CSP passes", f"{server.base}/good.html",
         lambda s, u: check_csp_header(s) + check_self_contained(s, u), None),
    ]
    try:
        browser = Chromium(chromium, tmp)
        for name, url, check, want in cases:
            seen = render(browser, trap, url)
            problems = check(seen, url)
            if want is None:
                ok = not problems
            else:
                ok = any(want in p for p in problems)
            log(f"  {'ok  ' if ok else 'FAIL'}  {name}")
            if not ok:
                log(f"          want {'no problem' if want is None else repr(want)}; got {problems or 'none'}")
                failures.append(name)
    finally:
        if browser:
            browser.close()
        trap.close()
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"browser-e2e self-test: {len(cases) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def cmd_render(args):
    chromium = find_chromium()
    tmp = tempfile.mkdtemp(prefix="streamprobe-browser-render-")
    trap, browser = Trap(), None
    try:
        browser = Chromium(chromium, tmp)
        for target in args.urls:
            url = target if "://" in target else "file://" + urllib.parse.quote(os.path.abspath(target))
            seen = render(browser, trap, url)
            seen["text"] = seen["text"][:300]
            print(json.dumps(seen, indent=1))
            print("problems:", check_self_contained(seen, url) + check_drawn(seen))
    finally:
        if browser:
            browser.close()
        trap.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--screenshots", metavar="DIR",
                   help="save the screenshots here (default target/browser-e2e; docs/img for the README)")
    r.add_argument("--keep", action="store_true", help="keep the work dir")
    sub.add_parser("self-test")
    d = sub.add_parser("render")
    d.add_argument("urls", nargs="+")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.cmd == "run":
        return cmd_run(args)
    if args.cmd == "self-test":
        return cmd_self_test(args)
    return cmd_render(args)


if __name__ == "__main__":
    sys.exit(main())
