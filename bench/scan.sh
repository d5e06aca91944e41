#!/usr/bin/env bash
# corral scan benchmark: `bash bench/scan.sh` (see bench/README.md, "Scan benchmark").
#
# Builds the release binaries, serves a fleet of mock LLM servers on thousands of 127.10.x.y
# addresses (several Ollama versions and the other server kinds of the reference), and measures
#   1. fingerprint: every fleet address scanned and fully fingerprinted  -> hosts/s
#   2. closed:      a /16 on a port nothing listens on (127.20.0.0/16:1) -> targets/s
#   3. lazy /8:     127.0.0.0/8 on a closed port, stopped with SIGINT after a few seconds:
#                   resident memory while a /8-sized target set streams, and a clean exit
# with CPU time and peak RSS for each. Targets (2-core machine): >= 2,000 fingerprinted
# hosts/s, >= 20,000 closed targets/s, RSS <= 100 MB.
#
# Only loopback addresses are ever scanned; every process started here is bounded in time and
# stopped when the script exits. Environment knobs:
#   SCAN_BENCH_HOSTS (3000)  fleet size     SCAN_BENCH_LAZY_SECS (8)  /8 run length
#   SCAN_BENCH_ROUNDS (3)    runs per phase (the median is reported)
#   SCAN_BENCH_SKIP_BUILD=1  use the binaries already in target/release
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
HOSTS="${SCAN_BENCH_HOSTS:-3000}"
LAZY_SECS="${SCAN_BENCH_LAZY_SECS:-8}"
ROUNDS="${SCAN_BENCH_ROUNDS:-3}"
FLEET_PORT=11434
CLOSED_PORT=1
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/corral-scan-bench.XXXXXX")"

say() { printf 'scan.sh: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Every fleet address is one listening socket, and the scanner holds up to --concurrency
# connections, each an fd on both ends.
want_fds=$((HOSTS + 8192))
if (($(ulimit -n) < want_fds)); then
    ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" ||
        die "cannot raise the open-file limit to $want_fds (ulimit -Hn is $(ulimit -Hn))"
fi
(($(ulimit -n) >= want_fds)) || die "open-file limit $(ulimit -n) < $want_fds: lower SCAN_BENCH_HOSTS"
[[ -x /usr/bin/time ]] || {
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        say "installing GNU time"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q time </dev/null >/dev/null
    else
        die "/usr/bin/time (GNU time) is missing: apt-get install time"
    fi
}

if [[ "${SCAN_BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    say "building release binaries (corral, corral-bench)"
    nice -n 10 cargo build --release -q -p corral --bin corral -p corral-bench --bin corral-bench
fi
CORRAL="$ROOT/target/release/corral"
BENCH="$ROOT/target/release/corral-bench"
[[ -x "$CORRAL" && -x "$BENCH" ]] || die "release binaries missing"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "starting the fleet: $HOSTS mock servers on 127.10.x.y:$FLEET_PORT"
"$BENCH" fleet --second 10 --hosts "$HOSTS" --port "$FLEET_PORT" --list "$WORK/fleet.txt" \
    --max-secs 900 >"$WORK/fleet.out" 2>"$WORK/fleet.err" &
FLEET_PID=$!
PIDS+=("$FLEET_PID")
for _ in $(seq 1 200); do
    grep -q '^ready' "$WORK/fleet.out" 2>/dev/null && break
    kill -0 "$FLEET_PID" 2>/dev/null || die "fleet exited: $(cat "$WORK/fleet.err")"
    sleep 0.1
done
grep -q '^ready' "$WORK/fleet.out" || die "fleet not ready after 20 s"

# field NAME FILE: a value from GNU time -v output.
field() { grep -F "$1" "$2" | head -1 | awk -F': ' '{print $2}'; }
# seconds from GNU time's "h:mm:ss" or "m:ss.ss".
secs() { awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.3f", s }' <<<"$1"; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# run_scan NAME ARGS...: one timed scan; leaves $WORK/NAME.{ndjson,time,err}.
run_scan() {
    local name=$1
    shift
    timeout 300 /usr/bin/time -v -o "$WORK/$name.time" \
        "$CORRAL" scan "$@" --format ndjson -o "$WORK/$name.ndjson" 2>"$WORK/$name.err" ||
        die "scan $name failed: $(tail -3 "$WORK/$name.err")"
}

summary_field() { grep '"summary"' "$1" | sed -E "s/.*\"$2\":([0-9]+).*/\\1/"; }

fp_rates=()
fp_cpu=()
fp_rss=()
closed_rates=()
closed_cpu=()
closed_rss=()
for round in $(seq 1 "$ROUNDS"); do
    say "round $round/$ROUNDS: fingerprinting $HOSTS hosts"
    run_scan fp -iL "$WORK/fleet.txt" -p "$FLEET_PORT" --timeout 5s
    found=$(grep -c '"ip"' "$WORK/fp.ndjson" || true)
    wall=$(secs "$(field 'Elapsed (wall clock)' "$WORK/fp.time")")
    ((found == HOSTS)) || die "fingerprint run found $found of $HOSTS hosts"
    fp_rates+=("$(awk -v n="$found" -v t="$wall" 'BEGIN { printf "%.0f", n / t }')")
    fp_cpu+=("$(awk -v u="$(field 'User time' "$WORK/fp.time")" -v s="$(field 'System time' "$WORK/fp.time")" 'BEGIN { printf "%.2f", u + s }')")
    fp_rss+=("$(field 'Maximum resident' "$WORK/fp.time")")
    cp "$WORK/fp.ndjson" "$OUT/scan-fingerprint.ndjson"

    say "round $round/$ROUNDS: 65,536 closed targets (127.20.0.0/16:$CLOSED_PORT)"
    run_scan closed 127.20.0.0/16 -p "$CLOSED_PORT" --timeout 5s
    scanned=$(summary_field "$WORK/closed.ndjson" endpoints_scanned)
    ((scanned == 65536)) || die "closed run scanned $scanned of 65536"
    wall=$(secs "$(field 'Elapsed (wall clock)' "$WORK/closed.time")")
    closed_rates+=("$(awk -v n="$scanned" -v t="$wall" 'BEGIN { printf "%.0f", n / t }')")
    closed_cpu+=("$(awk -v u="$(field 'User time' "$WORK/closed.time")" -v s="$(field 'System time' "$WORK/closed.time")" 'BEGIN { printf "%.2f", u + s }')")
    closed_rss+=("$(field 'Maximum resident' "$WORK/closed.time")")
done

# What was fingerprinted, by server kind and severity (from the last round).
kinds=$(grep -o '"server":"[a-z_-]*"' "$OUT/scan-fingerprint.ndjson" | sort | uniq -c |
    awk '{ sub(/"server":/, "", $2); gsub(/"/, "", $2); printf "%s %s, ", $2, $1 }' | sed 's/, $//')

say "lazy /8: 127.0.0.0/8:$CLOSED_PORT for ${LAZY_SECS}s, then SIGINT"
"$CORRAL" scan 127.0.0.0/8 -p "$CLOSED_PORT" --yes --format ndjson \
    -o "$WORK/lazy.ndjson" 2>"$WORK/lazy.err" &
LAZY_PID=$!
PIDS+=("$LAZY_PID")
lazy_peak_kb=0
end=$((SECONDS + LAZY_SECS))
while ((SECONDS < end)) && kill -0 "$LAZY_PID" 2>/dev/null; do
    kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$LAZY_PID/status" 2>/dev/null || echo 0)
    ((kb > lazy_peak_kb)) && lazy_peak_kb=$kb
    sleep 0.2
done
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$LAZY_PID/status" 2>/dev/null || echo 0)
((hwm > lazy_peak_kb)) && lazy_peak_kb=$hwm
kill -INT "$LAZY_PID"
lazy_status=0
# A clean Ctrl-C stops within a second or two; 10 s is a hang.
for _ in $(seq 1 100); do
    kill -0 "$LAZY_PID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$LAZY_PID" 2>/dev/null; then
    kill -KILL "$LAZY_PID"
    lazy_status=hung
else
    wait "$LAZY_PID" || lazy_status=$?
fi
lazy_scanned=$(summary_field "$WORK/lazy.ndjson" endpoints_scanned || true)
lazy_clean=no
[[ "$lazy_status" == 130 && -n "$lazy_scanned" ]] && grep -q 'interrupted after' "$WORK/lazy.err" && lazy_clean=yes

fp_rate=$(printf '%s\n' "${fp_rates[@]}" | median)
closed_rate=$(printf '%s\n' "${closed_rates[@]}" | median)
fp_cpu_m=$(printf '%s\n' "${fp_cpu[@]}" | median)
closed_cpu_m=$(printf '%s\n' "${closed_cpu[@]}" | median)
fp_rss_mb=$(($(printf '%s\n' "${fp_rss[@]}" | sort -g | tail -1) / 1024))
closed_rss_mb=$(($(printf '%s\n' "${closed_rss[@]}" | sort -g | tail -1) / 1024))
lazy_rss_mb=$((lazy_peak_kb / 1024))
verdict() { if awk -v a="$1" -v b="$2" -v op="$3" 'BEGIN { exit !(op == ">=" ? a >= b : a <= b) }'; then echo met; else echo MISSED; fi; }

report="$OUT/scan-results.md"
{
    echo "## corral scan benchmark ($(date -u +%Y-%m-%d), $(nproc) CPUs, median of $ROUNDS rounds)"
    echo
    echo "| run | targets | rate | CPU (user+sys) | peak RSS | target | |"
    echo "|---|---|---|---|---|---|---|"
    echo "| fingerprint | $HOSTS mock hosts | $fp_rate hosts/s | ${fp_cpu_m} s | ${fp_rss_mb} MB | >= 2,000 hosts/s | $(verdict "$fp_rate" 2000 '>=') |"
    echo "| closed port | 65,536 | $closed_rate targets/s | ${closed_cpu_m} s | ${closed_rss_mb} MB | >= 20,000 targets/s | $(verdict "$closed_rate" 20000 '>=') |"
    echo "| lazy /8 (SIGINT after ${LAZY_SECS} s) | 16,777,216 | ${lazy_scanned:-?} scanned | | ${lazy_rss_mb} MB | <= 100 MB | $(verdict "$lazy_rss_mb" 100 '<=') |"
    echo
    echo "Fingerprinted: $kinds."
    echo "Load average before / after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine slows every figure)."
    echo "Lazy /8 exit: status $lazy_status, summary printed: $([[ -n "$lazy_scanned" ]] && echo yes || echo no), clean: $lazy_clean."
} | tee "$report"
say "written to $report"
[[ "$lazy_clean" == yes ]] || die "the /8 scan did not stop cleanly on SIGINT"
