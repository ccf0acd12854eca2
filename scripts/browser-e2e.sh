#!/usr/bin/env bash
# Real-browser test of the pictures (DESIGN §12): headless Chromium renders the `run --html` and
# `compare --html` reports and the daemon's status, target and burst pages, checks each rendered
# DOM for its plots (waterfall rows = requests run, one compare CDF per metric, a trend point),
# that no page makes a request outside itself, and saves a screenshot of each. First the checker
# proves it can fail (self-test against tests/data/browser/: external image, external font,
# miscounted waterfall, a leak blocked by CSP must all be reported).
#
#   cargo build --release && scripts/browser-e2e.sh
#   scripts/browser-e2e.sh --screenshots docs/img   # regenerate the README's screenshots
#   scripts/browser-e2e.sh --self-test              # only the checker against its fixtures
#   scripts/browser-e2e.sh --keep                   # keep the work dir (logs, reports, result files)
#
# Screenshots of a plain run go to target/browser-e2e/ (kept for a look after CI).
#
# Environment: STREAMPROBE (default target/release/streamprobe; target/debug/streamprobe works
# too), CHROMIUM (default /usr/lib/chromium/chromium, Debian's binary behind /usr/bin/chromium).
# Needs: python3 (3.8+, standard library only), chromium (Debian/Ubuntu: apt-get install -y
# chromium). Uses only 127.0.0.1 and free ports; every process it starts is stopped on exit.
# Last line: "browser-e2e: N passed, M failed ...".
set -euo pipefail

cd "$(dirname "$0")/.."
export STREAMPROBE="${STREAMPROBE:-target/release/streamprobe}"
case "$STREAMPROBE" in /*) ;; *) STREAMPROBE="$PWD/$STREAMPROBE" ;; esac

missing=()
command -v python3 >/dev/null || missing+=(python3)
if [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/lib/chromium/chromium ] && ! command -v chromium >/dev/null; then
  missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "browser-e2e: missing ${missing[*]} (apt-get install -y chromium python3)" >&2
  echo "browser-e2e: 0 passed, 1 failed (FAIL: missing tools)"
  exit 1
fi

self_test_only=0
args=()
for a in "$@"; do
  case "$a" in
    --self-test) self_test_only=1 ;;
    *) args+=("$a") ;;
  esac
done

echo "browser-e2e self-test: the checker must report each planted fault"
python3 scripts/browser_e2e.py self-test
[ "$self_test_only" = 1 ] && exit 0
exec python3 scripts/browser_e2e.py run "${args[@]+"${args[@]}"}"
