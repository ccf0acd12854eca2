#!/usr/bin/env bash
# End-to-end test of the ops kit (DESIGN §8): a real Prometheus scrapes a real streamprobe daemon
# probing the built-in mock, with config/prometheus/streamprobe.rules.yml loaded; every PromQL
# expression of grafana/dashboards/streamprobe.json and of the rules must return data.
#
#   cargo build --release && scripts/e2e-prometheus.sh
#   scripts/e2e-prometheus.sh --fake    # no Rust build: a Python fake exporter stands in for
#                                       # daemon + mock (debugs the expressions and the harness)
#   scripts/e2e-prometheus.sh --keep    # keep the work dir (logs, TSDB, result files)
#
# Environment: STREAMPROBE (default target/release/streamprobe), PROMETHEUS and PROMTOOL
# (default: from PATH), E2E_TIMEOUT (seconds, default 170), E2E_SKIP_UNIT=1 to skip
# `promtool test rules` (about 30 s).
# Needs: python3 (3.8+, standard library only), prometheus and promtool 2.x
# (Debian/Ubuntu: apt-get install -y prometheus); systemd-analyze optional (unit checks). Uses only 127.0.0.1 and free ports; stops
# everything it started on exit. Last line: "e2e-prometheus: N passed, M failed, ...".
set -euo pipefail

cd "$(dirname "$0")/.."
export STREAMPROBE="${STREAMPROBE:-target/release/streamprobe}"
case "$STREAMPROBE" in /*) ;; *) STREAMPROBE="$PWD/$STREAMPROBE" ;; esac
export PROMETHEUS="${PROMETHEUS:-$(command -v prometheus || true)}"
PROMTOOL="${PROMTOOL:-$(command -v promtool || true)}"

missing=()
command -v python3 >/dev/null || missing+=(python3)
[ -n "$PROMETHEUS" ] && [ -x "$PROMETHEUS" ] || missing+=(prometheus)
[ -n "$PROMTOOL" ] && [ -x "$PROMTOOL" ] || missing+=(promtool)
if [ ${#missing[@]} -gt 0 ]; then
  echo "e2e-prometheus: missing ${missing[*]} (apt-get install -y prometheus python3)" >&2
  echo "e2e-prometheus: 0 passed, 1 failed (FAIL: missing tools)"
  exit 1
fi
export PATH="$(dirname "$PROMTOOL"):$PATH"

static_passed=0
static_failed=0
step() {
  local what=$1; shift
  local out
  if out=$("$@" 2>&1); then
    echo "  ok    $what"
    static_passed=$((static_passed + 1))
  else
    echo "  FAIL  $what"; echo "$out" | sed 's/^/        /'
    static_failed=$((static_failed + 1))
  fi
}
echo "static checks:"
step "promtool check rules" "$PROMTOOL" check rules config/prometheus/streamprobe.rules.yml
step "promtool check config (example scrape config + rules)" "$PROMTOOL" check config config/prometheus/prometheus.yml
if [ "${E2E_SKIP_UNIT:-0}" != 1 ]; then
  step "promtool test rules" "$PROMTOOL" test rules config/prometheus/streamprobe.rules.test.yml
fi
step "dashboard is valid JSON" python3 -m json.tool grafana/dashboards/streamprobe.json

# The systemd unit (when systemd-analyze exists): verify, with ExecStart pointed at a binary that
# exists here, and the sandbox exposure score at most 2.0 (offline: no running systemd needed).
if command -v systemd-analyze >/dev/null; then
  unit_dir=$(mktemp -d)
  exe="$STREAMPROBE"; [ -x "$exe" ] || exe=/bin/true
  sed "s|^ExecStart=/usr/local/bin/streamprobe|ExecStart=$exe|" systemd/streamprobe.service > "$unit_dir/streamprobe.service"
  step "systemd-analyze verify systemd/streamprobe.service" systemd-analyze verify "$unit_dir/streamprobe.service"
  step "systemd-analyze security: exposure <= 2.0" \
    systemd-analyze security --offline=yes --threshold=20 systemd/streamprobe.service
  rm -rf "$unit_dir"
else
  echo "  skip  systemd-analyze not installed (apt-get install -y systemd)"
fi

# The Python part counts these in its summary line.
export E2E_STATIC_PASSED=$static_passed E2E_STATIC_FAILED=$static_failed
exec python3 scripts/e2e_prometheus.py run "$@"
