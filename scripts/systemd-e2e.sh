#!/usr/bin/env bash
# The shipped unit (systemd/streamprobe.service, config systemd/streamprobe.yaml) run by a real
# systemd, exactly as the README's "Running it as a service" section tells a user, against
# `streamprobe mock` on the booted system's loopback. Run by .ci/run (root; fresh machine).
#
#   cargo build --release && scripts/systemd-e2e.sh
#
# How: `debootstrap --variant=minbase` makes a minimal Debian root (the host's release, so the
# host-built binary runs in it) and `systemd-nspawn --boot` boots its systemd as PID 1. nspawn
# gives the booted system its own /tmp and /run (tmpfs), its own /var/tmp (the root's), a
# read-only /sys, no udev, and with --private-network only a loopback interface: its boot-time
# tmpfiles run against its own directories, never the host's. Without machined (the host has no
# systemd) nspawn runs with --register=no --keep-unit, inside a cgroup this script creates and
# removes, and inside a private mount namespace whose /run and /tmp are tmpfs, so nspawn's own
# bookkeeping (/run/systemd/nspawn/...) does not land on the host either. Commands run inside
# through `nsenter --all` into the container's namespaces. The unshare-without-nspawn route the
# issue describes is not needed here: nspawn boots on this machine kind (cgroup v1 + unified).
#
# What is checked (one output line per check, under headings [N] that name the issue's point;
# the order is the one the states need; the last line counts them):
#  1. the README's service steps, run literally inside; `systemctl start` stays `activating`
#     until READY (the config load is held on a FIFO read through ${file:...}); a config error
#     leaves the unit `failed` with the error in the journal, and no restart loop;
#  2. DynamicUser: result files in /var/lib/streamprobe/results owned by the dynamic uid; the
#     ${credential:...} key reaches the mock (its /mock/truth request log) and nowhere else;
#  3. `systemctl reload` goes through `reloading` (held on the FIFO again) back to `active` and
#     runs the new target; a broken config keeps the old one active, the reason in the journal;
#  4. the watchdog kills and restarts a SIGSTOPped daemon within WatchdogSec + RestartSec;
#  5. `systemctl stop` during a burst writes the interrupted burst's file and exits 0 within
#     shutdown_grace + a few seconds;
#  6. one journal line per burst (text, then JSON with --log-format json);
#  7. `systemd-analyze security` <= 2.0 inside, and every hardening option of the unit is in
#     force: the running daemon's /proc, plus a probe run by a twin unit with the same [Service]
#     lines, whose every denial is shown to be an allowance in an unhardened control unit;
#  8. the host's /tmp and /var/tmp canaries survive, /run/systemd is unchanged, and no process,
#     mount, namespace or cgroup of the run is left behind; the whole run takes < 300 s.
#
# Environment: SYSTEMD_E2E_BASE=DIR copies a root made earlier by the same debootstrap command
# instead of running it (for quick iterations; CI starts fresh and always runs debootstrap).
# Needs: root, systemd-nspawn (systemd-container), debootstrap, nsenter, python3.
# Skips (exit 0, says why) only when the kernel refuses new namespaces.
# Last line: "systemd-e2e: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
started=$(date +%s)
bin=target/release/streamprobe

passed=0
failed=0
ok() { echo "  ok    $*"; passed=$((passed + 1)); }
bad() { echo "  FAIL  $*"; failed=$((failed + 1)); }
indent() { sed 's/^/        /'; }
summarized=
summary() { summarized=1; echo "systemd-e2e: $passed passed, $failed failed"; }
# check WHAT CMD...: ok when CMD succeeds; its output is shown when it fails.
check() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$what"; else bad "$what"; printf '%s\n' "$out" | tail -n 25 | indent; fi
}
die() { bad "$*"; summary; exit 1; }

if [ "$(id -u)" != 0 ]; then
  echo "systemd-e2e: must run as root (it boots a container); CI does" >&2
  exit 1
fi
if ! unshare --mount --pid --net --uts --ipc --fork true 2>/dev/null; then
  if [ "${SYSTEMD_E2E_REQUIRED:-0}" = 1 ]; then
    echo "systemd-e2e: FAILED: the kernel refuses new namespaces here (unshare failed), and SYSTEMD_E2E_REQUIRED=1 (CI's machine kind supports them)" >&2
    exit 1
  fi
  echo "systemd-e2e: skipped: the kernel refuses new namespaces here (unshare failed)"
  exit 0
fi
missing=()
for tool in systemd-nspawn debootstrap nsenter python3; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "systemd-e2e: missing ${missing[*]} (apt-get install -y systemd-container debootstrap util-linux python3)" >&2
  exit 1
fi
[ -x "$bin" ] || { echo "systemd-e2e: $bin is missing; run cargo build --release first" >&2; exit 1; }

machine=streamprobe-e2e
work=$(mktemp -d "$repo/target/systemd-e2e.XXXXXX")
root=$work/root
state=$root/var/lib/private/streamprobe # the DynamicUser state directory, seen from the host
nspawn_pid=
leader=
cgroups=()
canaries=()

# ---------------------------------------------------------------------------------------------
# Teardown: power the container off, remove our cgroups and the work directory. Also runs on
# failure; the final checks of leftovers are in the main flow below.
stop_container() {
  [ -n "$nspawn_pid" ] || return 0
  if kill -0 "$nspawn_pid" 2>/dev/null; then
    kill -TERM "$nspawn_pid" 2>/dev/null || true # nspawn turns SIGTERM into a clean poweroff
    for _ in $(seq 60); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$nspawn_pid" 2>/dev/null || true
  fi
  wait "$nspawn_pid" 2>/dev/null || true
  nspawn_pid=
}
remove_cgroups() {
  local cg
  for cg in "${cgroups[@]}"; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  return 0
}
teardown() {
  local status=$?
  set +e
  if [ -z "$summarized" ]; then
    bad "aborted (exit status $status); the streamprobe journal:"
    [ -n "$leader" ] && show_journal 40
    summary
  fi
  stop_container
  remove_cgroups
  rm -rf --one-file-system "$work" "${canaries[@]}"
  exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Helpers for the booted system.
inside_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# ctr CMD...: run CMD inside the booted system (all its namespaces, a clean environment).
ctr() {
  nsenter --target "$leader" --all -- env -i PATH="$inside_path" HOME=/root LANG=C.UTF-8 \
    SYSTEMD_COLORS=0 SYSTEMD_PAGER= SYSTEMD_LESS= "$@"
}
# http_get URL: GET from the booted system's network namespace (its loopback), host tools.
http_get() {
  nsenter --target "$leader" --net -- python3 -c '
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1"
}
prop() { ctr systemctl show -p "$1" --value "${2:-streamprobe.service}"; }
# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds; false on timeout.
wait_for() {
  local deadline=$(($(date +%s%N) + $1 * 1000000000))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s%N)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
state_is() { [ "$(prop ActiveState)" = "$1" ]; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# journal_since CURSOR [ARGS...]: the journal after CURSOR (every unit unless ARGS narrow it).
cursor() { ctr journalctl -q -n 1 -o export --no-pager | sed -n 's/^__CURSOR=//p'; }
journal_since() {
  local c=$1
  shift
  ctr journalctl -q --no-pager --after-cursor="$c" "$@"
}
# The FIFO gate: a header ${file:/etc/streamprobe/gate} makes every config load block until
# open_gate writes to it, so the states systemd shows while the daemon loads are observable.
gate=/etc/streamprobe/gate
open_gate() { timeout 15 sh -c "echo open > '$root$gate'"; }
# result_files [TARGET]: result files (host paths), oldest first.
result_files() {
  { find "$state/results/${1:-}" -name '*.json' -type f -printf '%T@ %p\n' 2>/dev/null || true; } | sort -n | cut -d' ' -f2
}
count_results() { result_files "${1:-}" | wc -l; }
more_results_than() { [ "$(count_results "$1")" -gt "$2" ]; }
# edit FILE OLD NEW [OLD NEW...]: literal replacements, each of which must match exactly once.
edit() {
  python3 - "$@" <<'PY'
import sys
path, pairs = sys.argv[1], sys.argv[2:]
text = open(path).read()
for old, new in zip(pairs[::2], pairs[1::2]):
    if text.count(old) != 1:
        sys.exit(f"edit {path}: expected {old!r} exactly once, found it {text.count(old)} times")
    text = text.replace(old, new)
open(path, "w").write(text)
PY
}
show_journal() { { ctr journalctl -u streamprobe.service -n "${1:-25}" --no-pager -o short-monotonic 2>&1 || true; } | indent; }

# The README's service section, followed literally: readme_step PREFIX finds the command of the
# one line of that block starting with PREFIX (its comment removed) and marks it as followed. A
# step the README drops or rewords fails here; a step it adds fails the coverage check at the end.
mapfile -t readme_block < <(awk '/^## Running it as a service/{s=1; next}
  s && /^```/ {if (b) exit; b=1; next} b' README.md)
declare -A readme_followed=()
# readme_line PREFIX sets $line; readme_step PREFIX sets $cmd (the line without its comment).
readme_line() {
  local l hits=()
  for l in "${readme_block[@]}"; do
    [[ "$l" == "$1"* ]] && hits+=("$l")
  done
  [ ${#hits[@]} -eq 1 ] || die "the README's service section has ${#hits[@]} lines starting with: $1"
  readme_followed["${hits[0]}"]=1
  line=${hits[0]}
}
readme_step() { readme_line "$1"; cmd=$(sed -E 's/[[:space:]]{2,}#.*$//' <<<"$line"); }
readme_unfollowed() {
  local l
  for l in "${readme_block[@]}"; do
    [ -z "$l" ] || [ -n "${readme_followed["$l"]:-}" ] || echo "not followed: $l"
  done
}
# readme_run CMD: run a README command inside, from the source tree (bound read-only at /src).
readme_run() { ctr bash -c "cd /src && $1"; }

# ---------------------------------------------------------------------------------------------
echo "== the booted system (debootstrap + systemd-nspawn --boot)"
canaries+=("$(mktemp /tmp/streamprobe-e2e-canary.XXXXXX)" "$(mktemp /var/tmp/streamprobe-e2e-canary.XXXXXX)")
for c in "${canaries[@]}"; do echo "$machine canary" >"$c"; done
run_before=$(ls -A /run/systemd 2>/dev/null | sort || true)

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || die "cannot tell the host's Debian release (VERSION_CODENAME in /etc/os-release)"
t0=$(date +%s)
if [ -n "${SYSTEMD_E2E_BASE:-}" ]; then
  cp -a "$SYSTEMD_E2E_BASE" "$root"
  ok "root copied from SYSTEMD_E2E_BASE ($SYSTEMD_E2E_BASE)"
elif debootstrap --variant=minbase --include=systemd,dbus "$codename" "$root" >"$work/debootstrap.log" 2>&1; then
  ok "debootstrap --variant=minbase $codename ($(($(date +%s) - t0)) s, $(du -sm "$root" | cut -f1) MB)"
else
  tail -n 20 "$work/debootstrap.log" | indent
  die "debootstrap $codename failed"
fi
# Something for ProtectKernelModules= to hide (a minimal root has no kernel modules).
mkdir -p "$root/usr/lib/modules/streamprobe-e2e"

# nspawn runs in a cgroup of its own (it creates payload/ and supervisor/ below it), removed at
# the end. Hybrid hosts have a named systemd hierarchy and a unified one; pure v2 hosts one.
while IFS=: read -r _ ctrls path; do
  case "$ctrls" in
    name=systemd) base=/sys/fs/cgroup/systemd ;;
    '') base=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo) ;;
    *) continue ;;
  esac
  [ -n "$base" ] && [ -d "$base$path" ] || continue
  cgroups+=("${base}${path%/}/$machine-$$")
done </proc/self/cgroup
[ ${#cgroups[@]} -gt 0 ] || die "no systemd or unified cgroup hierarchy found under /sys/fs/cgroup"
mkdir -p "${cgroups[@]}"

join_cgroups=""
for cg in "${cgroups[@]}"; do join_cgroups+="echo \$\$ > '$cg/cgroup.procs' && "; done
unshare --mount --propagation private -- bash -c "$join_cgroups
  mount -t tmpfs -o mode=0755 tmpfs /run && mount -t tmpfs -o mode=1777 tmpfs /tmp &&
  exec systemd-nspawn --quiet --directory='$root' --machine=$machine --boot \
    --register=no --keep-unit --private-network --console=read-only --link-journal=no \
    --resolv-conf=off --timezone=off --bind-ro='$repo:/src'" </dev/null >"$work/boot.log" 2>&1 &
nspawn_pid=$!
booted() {
  leader=$(pgrep -P "$nspawn_pid" -x systemd) && ctr test -S /run/systemd/private
}
wait_for 30 booted || { tail -n 30 "$work/boot.log" | indent; die "the container's systemd did not start"; }
leader=$(pgrep -P "$nspawn_pid" -x systemd)
boot_state=$(timeout 90 nsenter --target "$leader" --all -- systemctl is-system-running --wait 2>&1 || true)
case "$boot_state" in
  running) ok "booted: systemd is PID 1 inside, system state running ($(($(date +%s) - t0)) s)" ;;
  *) bad "booted: system state '$boot_state'"; { ctr systemctl --failed --no-pager 2>&1 || true; } | indent ;;
esac
declare -A ns_inode=()
for ns in mnt net pid ipc uts cgroup; do ns_inode[$ns]=$(readlink "/proc/$leader/ns/$ns"); done
ns_inode[launcher_mnt]=$(readlink "/proc/$nspawn_pid/ns/mnt")

isolation() {
  local mi
  mi=$(ctr cat /proc/1/mountinfo)
  for m in /tmp /run; do
    awk -v m="$m" '$5 == m && $0 ~ / - tmpfs / {f=1} END {exit !f}' <<<"$mi" || { echo "$m is not a tmpfs of its own"; return 1; }
  done
  awk '$5 == "/sys" && $6 ~ /^ro/ {f=1} END {exit !f}' <<<"$mi" || { echo "/sys is not read-only"; return 1; }
  if ctr touch /sys/kernel/streamprobe-e2e 2>/dev/null; then echo "root could write /sys"; return 1; fi
  [ "$(ctr stat -c %i /var/tmp)" = "$(stat -c %i "$root/var/tmp")" ] || { echo "/var/tmp is not the root's own"; return 1; }
  if ctr systemctl is-active --quiet systemd-udevd.service; then echo "udev runs"; return 1; fi
  if ctr test -e "${canaries[0]}"; then echo "the host's /tmp is visible inside"; return 1; fi
  [ "$(ctr ls /sys/class/net | tr '\n' ' ')" = "lo " ] || { echo "interfaces besides lo: $(ctr ls /sys/class/net)"; return 1; }
}
check "isolated: own /tmp, /run (tmpfs) and /var/tmp, read-only /sys, no udev, loopback only" isolation

# ---------------------------------------------------------------------------------------------
echo "== [1] the README's steps, literally; start is active only after READY"
key="sk-e2e-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"

readme_line "cargo install --path . --root /usr/local"
# No cargo inside: the README's own alternative, with the binary .ci/run built on the host.
[[ "$line" == *"# or: cargo build --release && "* ]] || die "the README's install line lost its 'or: cargo build --release && install ...' alternative"
check "README: ${line##*&& }" readme_run "${line##*&& }"
for step in "install -m 0644 systemd/streamprobe.service" "install -d -m 0755 /etc/streamprobe" \
  "install -m 0644 systemd/streamprobe.yaml"; do
  readme_step "$step"
  check "README: $cmd" readme_run "$cmd"
done
readme_step "install -m 0600 /dev/stdin /etc/streamprobe/credentials/openai_api_key"
[[ "$cmd" == *'"sk-..."'* ]] || die "the README's credential line no longer ends in \"sk-...\": $cmd"
check "README: ${cmd/sk-.../sk-e2e-…} (a random test key)" readme_run "${cmd/sk-.../$key}"

# "edit the targets": the mock on loopback, bursts every 3 s, a short shutdown grace.
config=$root/etc/streamprobe/streamprobe.yaml
auth_line='      Authorization: "Bearer ${credential:openai_api_key}"'
check "edit the targets: the mock on 127.0.0.1:18080, every 3s, shutdown_grace 3s" edit "$config" \
  "url: https://api.openai.com/v1/chat/completions" "url: http://127.0.0.1:18080/v1/chat/completions" \
  "total_requests: 20" "total_requests: 4" \
  "schedule: {every: 5m, jitter: 20s}" "schedule: {every: 3s, jitter: 0s}" \
  "shutdown_grace: 30s" "shutdown_grace: 3s" \
  "$auth_line" "$auth_line"
cp "$config" "$work/v1.yaml"
check "the mock runs inside (systemd-run, loopback only)" ctr systemd-run --quiet --unit=e2e-mock \
  -p StandardOutput=append:/var/log/e2e-mock.log -p StandardError=append:/var/log/e2e-mock.log \
  /usr/local/bin/streamprobe mock --listen 127.0.0.1:18080 --ttft 20ms --itl 5ms --tokens 10
wait_for 10 http_get http://127.0.0.1:18080/mock/stats || die "the mock does not answer on 127.0.0.1:18080 inside"

readme_step "CREDENTIALS_DIRECTORY=/etc/streamprobe/credentials streamprobe check"
if out=$(readme_run "$cmd" 2>&1) && [[ "$out" == *": ok, 1 target"* ]] && [[ "$out" != *"$key"* ]]; then
  ok "README: $cmd (ok, the key shown redacted)"
else
  bad "README: $cmd"; printf '%s\n' "$out" | indent
fi

# Hold the first config load on the gate: systemd must keep the unit `activating` meanwhile.
mkfifo -m 0644 "$root$gate"
edit "$config" "$auth_line" "$auth_line
      X-E2E-Gate: \"\${file:$gate}\""
readme_step "systemctl daemon-reload && systemctl enable --now streamprobe"
readme_run "$cmd" >"$work/start.out" 2>&1 &
start_pid=$!
held_start() {
  wait_for 15 state_is activating || { echo "never activating: $(prop ActiveState)/$(prop SubState)"; return 1; }
  sleep 2
  [ "$(prop ActiveState)/$(prop SubState)" = activating/start ] || { echo "after 2 s: $(prop ActiveState)/$(prop SubState)"; return 1; }
  [ "$(prop MainPID)" -gt 0 ] || return 1
  ! ctr journalctl -u streamprobe.service -q --no-pager -o cat | grep -q "streamprobe serving"
}
check "README: $cmd — activating (start) for 2 s while the config load waits, nothing served" held_start
check "the config load completes when the gate opens" open_gate
if wait "$start_pid" && state_is active; then
  ok "systemctl enable --now returned once READY=1 came: active ($(prop Type), $(prop NotifyAccess))"
else
  bad "systemctl enable --now: $(prop ActiveState)"; indent <"$work/start.out"; show_journal
  die "the service did not start"
fi
serving_logged() { ctr journalctl -u streamprobe.service -q --no-pager -o cat | grep -q "streamprobe serving"; }
check "journal: 'streamprobe serving' logged" serving_logged
cp "$work/v1.yaml" "$config" # later loads (watchdog restart) must not wait on the gate
check "systemctl is-enabled: enabled (WantedBy=multi-user.target)" ctr systemctl is-enabled --quiet streamprobe

# ---------------------------------------------------------------------------------------------
echo "== [2] DynamicUser, result files, the credential"
wait_for 20 more_results_than openai-gpt-4o-mini 1 || { show_journal; die "no result files after 20 s"; }
pid=$(prop MainPID)
uid=$(ctr awk '/^Uid:/ {print $2}' "/proc/$pid/status")
dynamic_owner() {
  [ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ] || { echo "uid $uid is outside the DynamicUser range 61184-65519"; return 1; }
  local f
  [ "$(ctr stat -c '%u %a' /var/lib/private/streamprobe)" = "$uid 700" ] || { echo "state dir: $(ctr stat -c '%u %a' /var/lib/private/streamprobe)"; return 1; }
  [ "$(ctr readlink /var/lib/streamprobe)" = private/streamprobe ] || return 1
  for f in $(result_files); do
    [ "$(stat -c '%u %a' "$f")" = "$uid 600" ] || { echo "$f: $(stat -c '%u %a' "$f")"; return 1; }
  done
}
check "bursts run as dynamic uid $uid; /var/lib/streamprobe/results/* owned by it (0600, dir 0700)" dynamic_owner
key_at_mock() {
  http_get "http://127.0.0.1:18080/mock/truth" | python3 -c '
import json, sys
truths = [t for t in json.load(sys.stdin) if t["target"].startswith("/v1/chat/completions")]
auth = {t["headers"].get("authorization") for t in truths}
print(f"{len(truths)} requests, authorization values: {len(auth)}")
sys.exit(0 if truths and auth == {"Bearer " + sys.argv[1]} else 1)' "$key"
}
check "the key from \${credential:openai_api_key} reached the mock (its request log) on every request" key_at_mock
key_nowhere() {
  local where=()
  ctr journalctl -q --no-pager -o export | grep -qaF "$key" && where+=("the journal")
  grep -rqaF "$key" "$state" && where+=("the state directory")
  ctr grep -qaF "$key" "/proc/$pid/environ" && where+=("the daemon's environment")
  ctr systemctl show streamprobe.service | grep -qaF "$key" && where+=("systemctl show")
  http_get http://127.0.0.1:10061/metrics | grep -qaF "$key" && where+=("/metrics")
  http_get http://127.0.0.1:10061/ | grep -qaF "$key" && where+=("the status page")
  [ ${#where[@]} -eq 0 ] || { echo "found in: ${where[*]}"; return 1; }
}
check "the key appears nowhere: journal (all units), result files, environment, unit properties, /metrics, status page" key_nowhere

# The running daemon's own sandbox, from /proc (the probe in section 7 tests behaviour).
daemon_sandbox() {
  local status
  status=$(ctr cat "/proc/$pid/status")
  grep -q '^NoNewPrivs:[[:space:]]*1$' <<<"$status" || { echo "NoNewPrivs is not 1"; return 1; }
  grep -q '^Seccomp:[[:space:]]*2$' <<<"$status" || { echo "no seccomp filter"; return 1; }
  for c in CapInh CapPrm CapEff CapBnd CapAmb; do
    grep -q "^$c:[[:space:]]*0000000000000000$" <<<"$status" || { echo "$c is not empty"; return 1; }
  done
  for ns in mnt ipc uts user; do
    [ "$(ctr readlink "/proc/$pid/ns/$ns")" != "$(ctr readlink /proc/1/ns/$ns)" ] || { echo "$ns namespace shared with PID 1"; return 1; }
  done
  [ "$(ctr readlink "/proc/$pid/ns/net")" = "$(ctr readlink /proc/1/ns/net)" ] || { echo "net namespace: the daemon must reach targets"; return 1; }
  python3 - "$(ctr cat "/proc/$pid/mountinfo")" "$(ctr cat /proc/1/mountinfo)" <<'PY'
import sys
def mounts(text):
    table = {}
    for line in text.splitlines():
        f = line.split()
        sep = f.index("-")
        table[f[4]] = (f[5].split(","), f[sep + 3].split(","))  # the last mount on a path wins
    return table
daemon, init = mounts(sys.argv[1]), mounts(sys.argv[2])
def effective(table, path):
    """The options of the mount that `path` lies on: the longest mount point above it."""
    best = max((m for m in table if path == m or path.startswith(m.rstrip("/") + "/")), key=len)
    return table[best][0]
need = {
    "/": "ro", "/usr": "ro", "/etc": "ro",  # ProtectSystem=strict
    "/var/lib/private/streamprobe": "rw",   # StateDirectory=
    "/root": "ro", "/home": "ro", "/run/user": "ro",  # ProtectHome=yes (inaccessible)
    "/dev": "ro",                           # PrivateDevices=yes (its own /dev)
}
# ProtectKernelTunables=, ProtectKernelLogs= (/proc/kmsg), ProtectControlGroups=: whatever PID 1
# has writable under /proc and /sys (/proc/sys/net, /proc/kmsg, the cgroup hierarchies) is
# read-only for the daemon.
for path, (opts, _) in init.items():
    if path.startswith(("/proc/", "/sys")) and "rw" in opts:
        need[path] = "ro"
bad = [f"{m}: {effective(daemon, m)[0]}, want {opt}" for m, opt in need.items()
       if opt not in effective(daemon, m)]
if "hidepid=invisible" not in daemon.get("/proc", ([], []))[1]:
    bad.append("/proc without hidepid=invisible (ProtectProc=invisible)")
for m in ("/tmp", "/var/tmp"):
    if m not in daemon:
        bad.append(f"{m} is not a mount of its own (PrivateTmp=yes)")
if "/run/credentials/streamprobe.service" not in daemon:
    bad.append("no /run/credentials/streamprobe.service (LoadCredential=)")
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
}
check "the daemon: NoNewPrivs, seccomp, no capabilities, own mnt/ipc/uts/user namespaces, read-only /, masked kernel interfaces" daemon_sandbox

# ---------------------------------------------------------------------------------------------
echo "== [3] systemctl reload: reloading → active on the new target; a broken config keeps the old"
readme_step "systemctl reload streamprobe"; reload_cmd=$cmd
edit "$config" "name: openai-gpt-4o-mini " "name: mock-reloaded " "$auth_line" "$auth_line
      X-E2E-Gate: \"\${file:$gate}\""
mark=$(cursor)
readme_run "$reload_cmd" >"$work/reload.out" 2>&1 &
reload_pid=$!
held_reload() {
  wait_for 10 state_is reloading || { echo "never reloading: $(prop ActiveState)/$(prop SubState)"; return 1; }
  sleep 1.5
  [ "$(prop ActiveState)/$(prop SubState)" = reloading/reload ] || { echo "after 1.5 s: $(prop ActiveState)/$(prop SubState)"; return 1; }
  kill -0 "$reload_pid" 2>/dev/null || { echo "systemctl reload returned before READY=1"; return 1; }
}
check "README: $reload_cmd — reloading (reload) while the daemon loads; systemctl waits" held_reload
check "the reload completes when the gate opens" open_gate
if wait "$reload_pid" && state_is active; then ok "systemctl reload returned after READY=1: active"; else bad "systemctl reload: $(prop ActiveState)"; indent <"$work/reload.out"; fi
sed -E '/X-E2E-Gate/d' "$config" >"$work/v2.yaml" && cp "$work/v2.yaml" "$config"
check "systemctl status: active (running)" sh -c "nsenter --target $leader --all -- systemctl status streamprobe --no-pager | grep -q 'Active: active (running)'"
reload_logged() {
  local j
  j=$(journal_since "$mark" -u streamprobe.service -o cat)
  grep -q '^Reloading streamprobe.service' <<<"$j" && grep -q 'configuration reloaded' <<<"$j" &&
    grep -q '^Reloaded streamprobe.service' <<<"$j"
}
check "journal: Reloading…, 'configuration reloaded', Reloaded" reload_logged
check "the new target runs: results/mock-reloaded/ gets result files" wait_for 15 more_results_than mock-reloaded 0

n_before=$(count_results mock-reloaded)
edit "$config" "total_requests: 4" "total_requests: four"
mark=$(cursor)
check "README: $reload_cmd with a broken config: exit 0" readme_run "$reload_cmd"
check "still active" state_is active
check "journal: 'reload failed; keeping the running configuration' naming defaults.total_requests" sh -c "
  nsenter --target $leader --all -- journalctl -q --no-pager --after-cursor='$mark' -u streamprobe.service -o cat |
    grep 'reload failed; keeping the running configuration' | grep -q 'defaults.total_requests: expected a whole number, got \"four\"'"
check "the old config keeps running: a new mock-reloaded burst after the failed reload" wait_for 10 more_results_than mock-reloaded "$n_before"
check "/metrics: streamprobe_config_last_reload_successful 0" sh -c "
  nsenter --target $leader --net -- python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:10061/metrics\").read().decode())' |
    grep -qx 'streamprobe_config_last_reload_successful 0'"
cp "$work/v2.yaml" "$config"

# ---------------------------------------------------------------------------------------------
echo "== [6] one journal line per burst (text; JSON with --log-format json)"
# bursts_logged FORMAT JOURNAL_JSON FILES_BEFORE FILES_AFTER: every burst whose result file
# existed before the journal was read has exactly one "burst finished" line with its burst_id,
# and every such line has a result file (the file is written before the line is logged).
bursts_logged() {
  python3 - "$@" <<'PY'
import json, os, sys
fmt, journal, before, after = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
ids = lambda paths: [json.load(open(p))["burst_id"] for p in paths]
lines, not_json = [], 0
for entry in map(json.loads, filter(None, open(journal).read().splitlines())):
    msg = entry.get("MESSAGE")
    if not isinstance(msg, str):
        continue
    if fmt == "json":
        try:
            doc = json.loads(msg)
        except ValueError:
            not_json += 1
            continue
        fields = doc.get("fields", {})
        if fields.get("message") == "burst finished":
            lines.append(fields.get("burst_id"))
    elif "burst finished" in msg:
        lines.append(next((w[len("burst_id="):] for w in msg.split() if w.startswith("burst_id=")), None))
problems = []
if not_json:
    problems.append(f"{not_json} lines of the daemon are not JSON")
for burst in ids(before):
    if lines.count(burst) != 1:
        problems.append(f"burst {burst}: {lines.count(burst)} journal lines")
known = set(ids(after))
problems += [f"journal line for burst {b} without a result file" for b in lines if b not in known]
print(f"{len(before)} result files, {len(lines)} burst lines", *problems, sep="\n")
sys.exit(1 if problems or not before else 0)
PY
}
files_before=$(result_files | tr '\n' ' ')
ctr journalctl -q --no-pager -u streamprobe.service -o json _COMM=streamprobe >"$work/journal-text.json"
files_after=$(result_files | tr '\n' ' ')
check "text: exactly one 'burst finished' line per result file ($(wc -w <<<"$files_before") so far)" \
  bursts_logged text "$work/journal-text.json" "$files_before" "$files_after"
readme_step "journalctl -u streamprobe -f"
check "README: $cmd shows the burst lines" sh -c "
  timeout 4 nsenter --target $leader --all -- env SYSTEMD_COLORS=0 bash -c '$cmd' | grep -q 'burst finished target_name=mock-reloaded'"

# JSON: what a user does with `systemctl edit streamprobe`, as a drop-in.
exec_start=$(grep '^ExecStart=' "$repo/systemd/streamprobe.service")
mkdir -p "$root/etc/systemd/system/streamprobe.service.d"
printf '[Service]\nExecStart=\n%s --log-format json\n' "$exec_start" >"$root/etc/systemd/system/streamprobe.service.d/log-format.conf"
check "drop-in ExecStart=... --log-format json; daemon-reload; restart" ctr sh -c "systemctl daemon-reload && systemctl restart streamprobe"
invocation=$(prop InvocationID)
n_before=$(count_results mock-reloaded)
check "a burst after the restart" wait_for 15 more_results_than mock-reloaded $((n_before + 1))
json_files_before=$(result_files mock-reloaded | tail -n +$((n_before + 1)) | tr '\n' ' ')
ctr journalctl -q --no-pager -o json _SYSTEMD_INVOCATION_ID="$invocation" _COMM=streamprobe >"$work/journal-json.json"
check "json: every daemon line is a JSON object; one 'burst finished' object per burst" \
  bursts_logged json "$work/journal-json.json" "$json_files_before" "$(result_files | tr '\n' ' ')"

# ---------------------------------------------------------------------------------------------
echo "== [4] the watchdog: a stopped daemon is killed and restarted"
seconds() { # "30s" → 30 (systemd's rendering of a whole number of seconds)
  local v
  v=$(prop "$1")
  [[ "$v" =~ ^[0-9]+s$ ]] || { echo "$1 is '$v', not whole seconds" >&2; return 1; }
  echo "${v%s}"
}
watchdog_s=$(seconds WatchdogUSec)
restart_s=$(seconds RestartUSec)
restarts0=$(prop NRestarts)
pid0=$(prop MainPID)
# A core dump would go wherever the host's core_pattern says (the kernel's setting is global):
# keep it inside the booted system unless it is a file name.
case "$(cat /proc/sys/kernel/core_pattern)" in
  '|'*) printf '[Service]\nLimitCORE=0\n' >"$root/etc/systemd/system/streamprobe.service.d/no-core.conf"
        ctr systemctl daemon-reload ;;
esac
mark=$(cursor)
t_stop=$(now_ms)
ctr sh -c 'kill -STOP "$1"' sh "$pid0" # the shell's kill: a minimal root has no procps
restarted() { [ "$(prop NRestarts)" -gt "$restarts0" ] && state_is active && [ "$(prop MainPID)" != "$pid0" ]; }
limit=$((watchdog_s + restart_s + 10))
if wait_for "$limit" restarted; then
  took=$(( ($(now_ms) - t_stop) / 1000 ))
  ok "SIGSTOP pid $pid0: restarted as pid $(prop MainPID) after ${took} s (WatchdogSec=${watchdog_s}s + RestartSec=${restart_s}s), NRestarts $restarts0 → $(prop NRestarts)"
else
  bad "no watchdog restart within ${limit} s: $(prop ActiveState), NRestarts $(prop NRestarts)"; show_journal
fi
check "journal: 'Watchdog timeout'" sh -c "nsenter --target $leader --all -- journalctl -q --no-pager --after-cursor='$mark' -u streamprobe.service -o cat | grep -q 'Watchdog timeout'"

# ---------------------------------------------------------------------------------------------
echo "== [5] systemctl stop during a burst: the interrupted burst is written, exit 0"
grace_s=2
edit "$config" "name: mock-reloaded " "name: mock-slow " \
  "url: http://127.0.0.1:18080/v1/chat/completions" "url: http://127.0.0.1:18080/v1/chat/completions?itl=500ms&tokens=200" \
  "shutdown_grace: 3s" "shutdown_grace: ${grace_s}s"
check "reload to a slow target (100 s per request) with shutdown_grace ${grace_s}s" readme_run "$reload_cmd"
in_flight() {
  http_get http://127.0.0.1:10061/metrics | grep -Eq '^streamprobe_in_flight_requests\{target="mock-slow"\} [1-9]'
}
check "a mock-slow burst is in flight" wait_for 10 in_flight
t_stop=$(now_ms)
mark=$(cursor)
check "systemctl stop streamprobe" ctr systemctl stop streamprobe
took_ms=$(($(now_ms) - t_stop))
if [ "$took_ms" -le $(((grace_s + 5) * 1000)) ]; then
  ok "stopped in $((took_ms / 1000)).$(printf %03d $((took_ms % 1000))) s (shutdown_grace ${grace_s}s + 5 s allowed)"
else
  bad "stop took ${took_ms} ms (shutdown_grace ${grace_s}s + 5 s allowed)"
fi
check "exit status 0 (ExecMainCode/ExecMainStatus $(prop ExecMainCode)/$(prop ExecMainStatus), result $(prop Result)), $(prop ActiveState)" sh -c "
  [ '$(prop ExecMainCode)/$(prop ExecMainStatus)/$(prop Result)/$(prop ActiveState)' = 1/0/success/inactive ]"
interrupted_written() {
  local f
  f=$(result_files mock-slow | tail -n 1)
  [ -n "$f" ] || { echo "no mock-slow result file"; return 1; }
  python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
print(sys.argv[1].rsplit("/", 1)[1], "interrupted:", doc["interrupted"])
sys.exit(0 if doc["interrupted"] else 1)' "$f" || return 1
  journal_since "$mark" -u streamprobe.service -o cat | grep -q '"interrupted":true'
}
check "the interrupted burst's result file is written (interrupted: true, and so logged)" interrupted_written

# ---------------------------------------------------------------------------------------------
echo "== [1] a config that fails to load: failed, the error in the journal, no restart loop"
cp "$work/v2.yaml" "$config"
edit "$config" "total_requests: 4" "total_requests: four"
mark=$(cursor)
if ctr systemctl start streamprobe >/dev/null 2>&1; then bad "systemctl start succeeded with a broken config"; else ok "systemctl start fails"; fi
restarts0=$(prop NRestarts) # a manual start resets the counter
check "journal: the config error, as the daemon printed it" sh -c "
  nsenter --target $leader --all -- journalctl -q --no-pager --after-cursor='$mark' -u streamprobe.service -o cat |
    grep -q 'defaults.total_requests: expected a whole number, got \"four\"'"
sleep $((restart_s + 2))
check "still failed after RestartSec + 2 s (status 2 is not restarted): $(prop ActiveState)/$(prop SubState), NRestarts $(prop NRestarts)" sh -c "
  [ '$(prop ActiveState)/$(prop ExecMainStatus)/$(prop NRestarts)' = 'failed/2/$restarts0' ]"
cp "$work/v2.yaml" "$config"

# ---------------------------------------------------------------------------------------------
echo "== [7] hardening: systemd-analyze security inside, and every option in force"
exposure=$(ctr systemd-analyze security --no-pager streamprobe.service 2>&1 | sed -n 's/.*Overall exposure level for streamprobe.service: \([0-9.]*\).*/\1/p')
check "systemd-analyze security streamprobe.service (inside): ${exposure:-?} <= 2.0" \
  python3 -c 'import sys; sys.exit(0 if sys.argv[1] and float(sys.argv[1]) <= 2.0 else 1)' "${exposure:-}"

# The probe: one line per attempt, "NAME allowed" or "NAME denied: REASON". It runs twice: in a
# twin of streamprobe.service (its [Service] lines verbatim, the daemon's own dynamic user, a
# oneshot probe instead of the daemon) and in a control unit with none of them (root). Every
# attempt the twin refuses must succeed in the control, so no check passes by accident.
mkdir -p "$root/usr/local/lib/streamprobe-e2e"
cat >"$root/usr/local/lib/streamprobe-e2e/probe" <<'PROBE'
#!/bin/bash
try() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then echo "$name allowed"; else echo "$name denied: $(tr '\n' ' ' <<<"$out")"; fi
}
# mounted_rw PATH: whether the mount that PATH lies on is writable.
mounted_rw() {
  awk -v p="$1" '($5 == "/" || p == $5 || index(p, $5 "/") == 1) && length($5) >= best {best = length($5); opts = $6}
    END {if (opts !~ /^rw/) {print p " is on a read-only mount"; exit 1}}' /proc/self/mountinfo
}
touch_rm() { touch "$1" && rm -f "$1"; }
# System call numbers for perl's syscall(): mmap, adjtimex, setuid.
case "$(uname -m)" in
  aarch64) nr_mmap=222 nr_adjtimex=171 nr_setuid=146 ;;
  *) nr_mmap=9 nr_adjtimex=159 nr_setuid=105 ;; # x86_64
esac
cgroup=/sys/fs/cgroup
[ -d /sys/fs/cgroup/systemd ] && cgroup=/sys/fs/cgroup/systemd
try write-usr touch_rm /usr/lib/streamprobe-e2e-probe
try write-etc touch_rm /etc/streamprobe-e2e-probe
try write-var-lib touch_rm /var/lib/streamprobe-e2e-probe
try write-state touch_rm /var/lib/streamprobe/e2e-probe
try read-root ls /root
try read-home ls /home
try see-system-tmp ls -d /tmp/streamprobe-e2e-marker
try dev-console ls -d /dev/console
try kmsg-writable mounted_rw /proc/kmsg
try proc-sys-net-writable mounted_rw /proc/sys/net
try cgroup-writable mounted_rw "$cgroup"
try kernel-modules ls /usr/lib/modules/streamprobe-e2e
try pid1-visible ls -d /proc/1
try user-namespace unshare --user true
# socket(family, type, 0) with Linux's numbers: AF_UNIX 1, AF_INET 2, AF_INET6 10, AF_NETLINK 16;
# SOCK_STREAM 1, SOCK_RAW 3.
sock() { perl -e 'socket(my $s, $ARGV[0], $ARGV[1], 0) or die "$!\n"' "$@"; }
try socket-netlink sock 16 3
try socket-inet sock 2 1
try socket-inet6 sock 10 1
try socket-unix sock 1 1
# mmap(NULL, 4096, PROT_READ|PROT_WRITE|PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
try write-execute-memory perl -e 'syscall($ARGV[0], 0, 4096, 7, 0x22, -1, 0) == -1 and die "$!\n"' $nr_mmap
try realtime chrt -f 1 true
try setuid-bit sh -c 'f=/var/lib/streamprobe/e2e-suid; : >"$f" && chmod u+s "$f"; s=$?; rm -f "$f"; exit $s'
try personality setarch "$(uname -m)" -R true
try setpriority renice -n 5 -p $$
# setuid(getuid()): allowed to anyone, but in @privileged.
try setuid-self perl -e 'syscall($ARGV[0], $<) == -1 and die "$!\n"' $nr_setuid
# adjtimex(&timex) with modes 0 only reads the clock state: allowed to anyone, but @clock.
try clock-syscall perl -e 'my $t = "\0" x 208; syscall($ARGV[0], $t) == -1 and die "$!\n"' $nr_adjtimex
for ns in mnt ipc uts user net; do echo "ns-$ns $(readlink /proc/self/ns/$ns)"; done
echo "uid $(id -u)"
echo "uid_map $(tr -s ' \n' ' ' </proc/self/uid_map)"
grep -E '^(NoNewPrivs|Seccomp|CapBnd|CapAmb|CapEff):' /proc/self/status | tr -d '\t ' | sed 's/^/status /'
PROBE
chmod 0755 "$root/usr/local/lib/streamprobe-e2e/probe"
unit=$repo/systemd/streamprobe.service
{
  printf '[Unit]\nDescription=the [Service] lines of streamprobe.service around a probe\n[Service]\n'
  printf 'Type=oneshot\nExecStart=/usr/local/lib/streamprobe-e2e/probe\n'
  printf 'User=streamprobe\n'   # DynamicUser=yes: the same dynamic user as streamprobe.service
  printf 'LimitRTPRIO=99\n'     # so that only the sandbox can refuse SCHED_FIFO
  printf 'StandardOutput=truncate:/var/log/e2e-probe-twin.out\nStandardError=inherit\n'
  sed -n '/^\[Service\]/,/^\[/p' "$unit" | grep -vE '^(\[|#|$)' |
    grep -vE '^(Type|NotifyAccess|WatchdogSec|ExecStart|ExecReload|Restart|RestartSec|RestartPreventExitStatus|TimeoutStopSec|KillMode)='
} >"$root/etc/systemd/system/e2e-probe-twin.service"
printf '[Service]\nType=oneshot\nExecStart=/usr/local/lib/streamprobe-e2e/probe\nLimitRTPRIO=99\nStandardOutput=truncate:/var/log/e2e-probe-control.out\nStandardError=inherit\n' \
  >"$root/etc/systemd/system/e2e-probe-control.service"
ctr touch /tmp/streamprobe-e2e-marker
check "the twin unit and the control unit run" ctr sh -c "systemctl daemon-reload &&
  systemctl start e2e-probe-twin.service && systemctl start e2e-probe-control.service"
ctr systemctl show streamprobe.service >"$work/show.txt"
hardening_report() {
  python3 - "$root/var/log/e2e-probe-twin.out" "$root/var/log/e2e-probe-control.out" "$unit" "$work/show.txt" \
    "$(ctr readlink /proc/1/ns/mnt) $(ctr readlink /proc/1/ns/ipc) $(ctr readlink /proc/1/ns/uts) $(ctr readlink /proc/1/ns/user)" \
    "$uid" <<'PY'
import re, sys
def probe(path):
    out = {}
    for line in open(path):
        name, _, rest = line.rstrip("\n").partition(" ")
        out.setdefault(name, []).append(rest)
    return {k: " ".join(v) for k, v in out.items()}
twin, control = probe(sys.argv[1]), probe(sys.argv[2])
unit_text = open(sys.argv[3]).read()
shown = dict(l.split("=", 1) for l in open(sys.argv[4]).read().splitlines() if "=" in l)
init_ns = dict(n.split(":", 1) for n in sys.argv[5].split())
uid = sys.argv[6]
hardening = unit_text[unit_text.index("# Hardening."):unit_text.index("[Install]")]
options = {}
for line in hardening.splitlines():
    if line and not line.startswith("#"):
        k, v = line.split("=", 1)
        options.setdefault(k, []).append(v)

def refused(name, reason=""):
    """Refused by the twin (with `reason` in the error, if given), allowed in the control."""
    t, c = twin.get(name, "missing"), control.get(name, "missing")
    good = t.startswith("denied") and reason in t and c == "allowed"
    return good, f"{name}: {t} | control: {c}"
def allowed(name):
    t = twin.get(name, "missing")
    return t == "allowed", f"{name}: {t}"
def status(field, want):
    got = dict(w.split(":", 1) for w in twin.get("status", "").split())
    return got.get(field) == want, f"{field}: {got.get(field)}"
def own_ns(ns):
    mine = twin.get(f"ns-{ns}", ":").split(":", 1)[1]
    return mine not in ("", init_ns.get(ns)), f"own {ns} namespace {mine} (PID 1's: {init_ns.get(ns)})"
def prop(name, want):
    return shown.get(name) == want, f"systemctl show {name}={shown.get(name)}"

evidence = {
    "NoNewPrivileges": [status("NoNewPrivs", "1")],
    "CapabilityBoundingSet": [status("CapBnd", "0000000000000000")],
    "AmbientCapabilities": [status("CapAmb", "0000000000000000"), status("CapEff", "0000000000000000")],
    "ProtectSystem": [refused("write-usr", "Read-only file system"), refused("write-etc", "Read-only file system"),
                      refused("write-var-lib", "Read-only file system"), allowed("write-state")],
    "ProtectHome": [refused("read-root"), refused("read-home")],
    "PrivateTmp": [refused("see-system-tmp")],
    "PrivateDevices": [refused("dev-console")],
    # Only root and the service's own uid exist in its user namespace.
    "PrivateUsers": [own_ns("user"), (twin.get("uid_map", "").split() == ["0", "0", "1", uid, uid, "1"],
                     f"uid_map: {twin.get('uid_map', '').strip()}")],
    "PrivateIPC": [own_ns("ipc")],
    "PrivateMounts": [own_ns("mnt")],
    "ProtectHostname": [own_ns("uts")],
    # nspawn's own seccomp filter refuses @clock in the control too: the twin's refusal plus
    # systemd's effective value.
    "ProtectClock": [(twin.get("clock-syscall", "").startswith("denied"), f"clock-syscall: {twin.get('clock-syscall')} | control: {control.get('clock-syscall')} (nspawn's filter)"),
                     prop("ProtectClock", "yes")],
    "ProtectKernelTunables": [refused("proc-sys-net-writable")],
    "ProtectKernelModules": [refused("kernel-modules")],
    "ProtectKernelLogs": [refused("kmsg-writable")],
    "ProtectControlGroups": [refused("cgroup-writable")],
    "ProtectProc": [refused("pid1-visible")],
    "RestrictAddressFamilies": [refused("socket-netlink", "Address family not supported"),
                                allowed("socket-inet"), allowed("socket-inet6"), allowed("socket-unix")],
    "RestrictNamespaces": [refused("user-namespace")],
    "RestrictRealtime": [refused("realtime")],
    "RestrictSUIDSGID": [refused("setuid-bit")],
    "LockPersonality": [refused("personality")],
    "MemoryDenyWriteExecute": [refused("write-execute-memory", "Operation not permitted")],
    "SystemCallFilter": [status("Seccomp", "2"), refused("setpriority", "Operation not permitted"),
                         refused("setuid-self", "Operation not permitted")],
    "SystemCallErrorNumber": [refused("setpriority", "Operation not permitted")],
    # Not observable from a probe without a 32-bit binary, a device node outside PrivateDevices'
    # /dev, or a SysV IPC object outside PrivateIPC's namespace: systemd's effective value.
    "SystemCallArchitectures": [prop("SystemCallArchitectures", "native")],
    "RemoveIPC": [prop("RemoveIPC", "yes")],
    "DevicePolicy": [prop("DevicePolicy", "closed")],
    "KeyringMode": [prop("KeyringMode", "private")],
}
for option in options:
    checks = evidence.get(option)
    if not checks:
        print(f"FAIL {option}=: no check for this hardening option in scripts/systemd-e2e.sh")
        continue
    verdict = "ok" if all(good for good, _ in checks) else "FAIL"
    print(f"{verdict} {option}={', '.join(options[option])}: " + "; ".join(text for _, text in checks))
PY
}
while IFS= read -r line; do
  case "$line" in
    ok\ *) ok "${line#ok }" ;;
    FAIL\ *) bad "${line#FAIL }" ;;
    *) echo "$line" ;;
  esac
done < <(hardening_report)

# ---------------------------------------------------------------------------------------------
echo "== [8] cleanup: poweroff, nothing left behind"
unfollowed=$(readme_unfollowed)
if [ -z "$unfollowed" ]; then ok "every line of the README's service section was followed (${#readme_followed[@]} lines)"; else bad "README lines not followed"; indent <<<"$unfollowed"; fi
check "the mock stops" ctr systemctl stop e2e-mock.service
launcher=$nspawn_pid
stop_container
check "poweroff: systemd-nspawn (pid $launcher) exited" sh -c "! kill -0 $launcher 2>/dev/null"
left_behind() {
  local p n found=0 inodes=" ${ns_inode[*]} "
  for p in /proc/[0-9]*; do
    for n in "$p"/ns/*; do
      if [[ "$inodes" == *" $(readlink "$n" 2>/dev/null) "* ]]; then
        echo "pid ${p#/proc/} ($(cat "$p/comm" 2>/dev/null)) is in $(readlink "$n")"; found=1; break
      fi
    done
  done
  if grep -F "$work" /proc/self/mountinfo /proc/1/mountinfo; then found=1; fi
  for i in "${ns_inode[@]}"; do
    if grep -h "nsfs" /proc/self/mountinfo | grep -F "${i#*:}"; then found=1; fi
  done
  return $found
}
check "no process in the container's namespaces (${ns_inode[net]}, ${ns_inode[pid]}, …), no mount of it" left_behind
remove_cgroups
check "its cgroups are removed" sh -c "for cg in ${cgroups[*]}; do [ ! -e \"\$cg\" ] || { echo \"\$cg remains\"; exit 1; }; done"
check "the host's /tmp and /var/tmp canaries survived" sh -c "for c in ${canaries[*]}; do grep -qx '$machine canary' \"\$c\" || { echo \"\$c is gone\"; exit 1; }; done"
check "the host's /run/systemd is unchanged" sh -c "[ \"\$(ls -A /run/systemd 2>/dev/null | sort)\" = '$run_before' ]"
elapsed=$(($(date +%s) - started))
check "runtime ${elapsed} s < 300 s" test "$elapsed" -lt 300
summary
[ "$failed" -eq 0 ]
