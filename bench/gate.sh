#!/usr/bin/env bash
# corral's gate benchmark (issue 2, item 11). One run measures the same load
#   1. direct to a fast mock Ollama,
#   2. through corral,
#   3. through Debian's nginx as a bearer-checking proxy (bench/nginx.conf.in),
#   4. through the floor: a bare pass-through proxy on the gate's runtime (token check and
#      relay, nothing else; `corral-bench floor`), which shows what corral's own layers cost,
# then holds 1,000 concurrent long-lived NDJSON streams open through each and reads the
# proxy's peak RSS. Prints a markdown table and writes it to bench/out/gate-results.md.
#
#   bash bench/gate.sh          # knobs: see bench/README.md (BENCH_* variables)
#
# Loopback only; every run is bounded in time; every process started here is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
OUT_DIR=${BENCH_OUT:-$BENCH/out}
DURATION=${BENCH_DURATION:-10}         # measured seconds per wrk run
WARMUP=${BENCH_WARMUP:-2}              # discarded seconds before each measured run
CONNS=${BENCH_CONNS:-64}               # wrk connections, saturating runs
ROUNDS=${BENCH_ROUNDS:-3}              # interleaved rounds; the table shows medians
PACED_CONNS=${BENCH_PACED_CONNS:-8}    # paced run: connections ...
PACED_DELAY_MS=${BENCH_PACED_DELAY_MS:-4} # ... each pausing this long before a request
STREAMS=${BENCH_STREAMS:-1000}         # concurrent long-lived streams
STREAM_CHUNKS=${BENCH_STREAM_CHUNKS:-40}
STREAM_DELAY_MS=${BENCH_STREAM_DELAY_MS:-250}
TARGETS=${BENCH_TARGETS:-"direct corral nginx floor"}
PIN=${BENCH_PIN:-1}                    # 1: proxy on its own CPU(s), load + mock on the rest
SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release
# corral runs with its built-in policies and a data dir of its own, whatever the caller set.
unset CORRAL_CONFIG CORRAL_DATA_DIR

die() { echo "gate.sh: $*" >&2; exit 1; }
log() { echo "gate.sh: $*" >&2; }
int_in() { # NAME VALUE MIN MAX
  [[ $2 =~ ^[0-9]+$ ]] && (( $2 >= $3 && $2 <= $4 )) || die "$1 must be an integer in $3..$4 (got '$2')"
}
int_in BENCH_DURATION "$DURATION" 1 120
int_in BENCH_WARMUP "$WARMUP" 0 30
int_in BENCH_CONNS "$CONNS" 1 1000
int_in BENCH_ROUNDS "$ROUNDS" 1 10
int_in BENCH_PACED_CONNS "$PACED_CONNS" 1 256
int_in BENCH_PACED_DELAY_MS "$PACED_DELAY_MS" 1 1000
int_in BENCH_STREAMS "$STREAMS" 1 5000
int_in BENCH_STREAM_CHUNKS "$STREAM_CHUNKS" 10 10000
int_in BENCH_STREAM_DELAY_MS "$STREAM_DELAY_MS" 1 1000
for t in $TARGETS; do [[ $t =~ ^(direct|corral|nginx|floor)$ ]] || die "unknown target '$t' in BENCH_TARGETS"; done
# A stream lasts STREAM_CHUNKS * STREAM_DELAY_MS; keep it (and so the run) bounded.
(( STREAM_CHUNKS * STREAM_DELAY_MS <= 60000 )) || die "a stream would last over 60 s"

# ---------------------------------------------------------------- tools
install_tools() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v curl >/dev/null || missing+=(curl)
  command -v taskset >/dev/null || missing+=(util-linux)
  [[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || missing+=(nginx)
  (( ${#missing[@]} )) || return 0
  [[ $(id -u) == 0 ]] || die "missing ${missing[*]}; run as root (installs with apt-get) or: sudo apt-get install ${missing[*]}"
  log "installing ${missing[*]} with apt-get"
  apt-get update -qq
  # Debian's nginx package starts a system nginx on port 80 after installing unless a
  # policy-rc.d forbids it; the benchmark runs its own, so forbid it for this install only.
  local guard=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$guard"; chmod 755 "$guard"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || {
    [[ -n $guard ]] && rm -f "$guard"; die "apt-get install failed"; }
  [[ -n $guard ]] && rm -f "$guard"
  return 0
}
install_tools
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [[ $SKIP_BUILD != 1 ]]; then
  log "building release binaries (cargo build --release)"
  (cd "$ROOT" && cargo build --release -p corral -p corral-testsupport -p corral-bench --bins >&2)
fi
for b in mock-ollama corral-bench; do [[ -x $BIN/$b ]] || die "$BIN/$b is missing"; done
[[ " $TARGETS " != *" corral "* || -x $BIN/corral ]] || die "$BIN/corral is missing"

# ---------------------------------------------------------------- processes
WORK=$(mktemp -d /tmp/corral-bench.XXXXXX)
chmod 755 "$WORK"   # nginx workers run as an unprivileged user and read below it
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# 1,000 streams need about 2,000 descriptors in the proxy.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(( $(ulimit -n) >= 4 * STREAMS + 64 )) || die "open-file limit $(ulimit -n) is too low for $STREAMS streams"

NCPU=$(nproc)
if [[ $PIN == 1 ]] && (( NCPU >= 2 )); then
  cpu_range() { if (( $1 == $2 )); then echo "$1"; else echo "$1-$2"; fi; }
  PROXY_CPUS=$(cpu_range $((NCPU / 2)) $((NCPU - 1))); LOAD_CPUS=$(cpu_range 0 $((NCPU / 2 - 1)))
  PROXY_NCPU=$((NCPU - NCPU / 2)); LOAD_NCPU=$((NCPU / 2))
  ON_PROXY=(taskset -c "$PROXY_CPUS"); ON_LOAD=(taskset -c "$LOAD_CPUS")
  PINNING="proxy on CPU(s) $PROXY_CPUS, load generator and mocks on CPU(s) $LOAD_CPUS (taskset)"
else
  PROXY_NCPU=$NCPU; LOAD_NCPU=$NCPU
  ON_PROXY=(env); ON_LOAD=(env)
  PINNING="none (all processes share $NCPU CPUs)"
fi
THREADS=${BENCH_THREADS:-$LOAD_NCPU}

on_load() { "${ON_LOAD[@]}" "$@"; }
# start NAME proxy|load CMD...: runs CMD in the background on those CPUs, output in
# $WORK/NAME.*. A plain command (taskset and env exec theirs), so $! is the server's PID.
start() {
  local name=$1 where=$2; shift 2
  local -a prefix=("${ON_LOAD[@]}")
  [[ $where == proxy ]] && prefix=("${ON_PROXY[@]}")
  "${prefix[@]}" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
# await_listen NAME PID: prints host:port from the first "listening on" line.
await_listen() {
  local i addr
  for ((i = 0; i < 200; i++)); do
    addr=$(grep -m1 -oE 'listening on (http://)?127\.0\.0\.1:[0-9]+' "$WORK/$1.out" 2>/dev/null | grep -oE '127\.0\.0\.1:[0-9]+' || true)
    [[ -n $addr ]] && { echo "$addr"; return 0; }
    kill -0 "$2" 2>/dev/null || { cat "$WORK/$1.err" >&2; die "$1 exited before listening"; }
    sleep 0.05
  done
  die "$1 did not start listening within 10 s"
}
await_port() { # HOST:PORT PID NAME
  local i
  for ((i = 0; i < 200; i++)); do
    curl -s -o /dev/null --max-time 1 "http://$1/" && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  cat "$WORK/$3.err" "$WORK/$3/error.log" >&2 2>/dev/null || true
  die "nothing answers on $1"
}
stop() { # PID: TERM, then KILL after 5 s
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # Forget it, so the exit trap never signals a recycled PID.
  local keep=() p
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
children() { # PID -> its child PIDs
  local d st state ppid
  for d in /proc/[0-9]*; do
    st=$(cat "$d/stat" 2>/dev/null) || continue
    read -r state ppid _ <<<"${st##*) }"
    [[ $ppid == "$1" ]] && echo "${d#/proc/}"
  done
  return 0
}
proxy_pids() { # PID -> the PID and, for nginx, its workers
  echo "$1"; children "$1"
}
cpu_ticks() { # PIDS... -> "USER SYSTEM": summed CPU time of all their threads, in clock ticks
  local user=0 system=0 pid st
  local -a f
  for pid in "$@"; do
    st=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    read -r -a f <<<"${st##*) }"
    # Fields after "(comm)": state is f[0], so utime (field 14) is f[11], stime f[12].
    user=$((user + f[11])); system=$((system + f[12]))
  done
  echo "$user $system"
}
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
hwm_kb() { # PIDS... -> summed VmHWM
  local sum=0 pid v
  for pid in "$@"; do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# ---------------------------------------------------------------- the upstream and the proxies
start mock load "$BIN/mock-ollama" --listen 127.0.0.1:0 --fast
MOCK_PID=$LAST_PID; MOCK=$(await_listen mock "$MOCK_PID")
start slowmock load "$BIN/mock-ollama" --listen 127.0.0.1:0 \
  --chunks "$STREAM_CHUNKS" --slow-delay-ms "$STREAM_DELAY_MS"
SLOWMOCK=$(await_listen slowmock "$LAST_PID")

if [[ " $TARGETS " == *" corral "* ]]; then
  CORRAL_DATA=$WORK/corral
  KEY=$("$BIN/corral" --data-dir "$CORRAL_DATA" keys create bench --policy user)
  [[ $KEY == crl_* ]] || die "corral keys create printed no key"
else
  # nginx alone accepts any static token; use one of corral's shape.
  KEY=crl_benchbenchbe_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
fi
AUTH="Bearer $KEY"

# start_proxy TARGET UPSTREAM -> sets URL and PROXY_PID ("" and the upstream for direct)
start_proxy() {
  case $1 in
    direct) PROXY_PID=""; URL="http://$2" ;;
    corral)
      start corral proxy "$BIN/corral" --data-dir "$CORRAL_DATA" serve \
        --listen 127.0.0.1:0 --upstream "http://$2" --audit-log "$WORK/corral-audit.ndjson"
      PROXY_PID=$LAST_PID; URL="http://$(await_listen corral "$PROXY_PID")" ;;
    floor)
      start floor proxy "$BIN/corral-bench" floor --listen 127.0.0.1:0 --upstream "$2" --authorization "$AUTH"
      PROXY_PID=$LAST_PID; URL="http://$(await_listen floor "$PROXY_PID")" ;;
    nginx)
      local port; port=$("$BIN/corral-bench" free-port)
      mkdir -p "$WORK/nginx"
      sed -e "s|@WORK@|$WORK/nginx|g" -e "s|@WORKERS@|$PROXY_NCPU|g" -e "s|@LISTEN@|127.0.0.1:$port|g" \
          -e "s|@UPSTREAM@|$2|g" -e "s|@AUTH@|$AUTH|g" -e "s|@USER@|$( [[ $(id -u) == 0 ]] && echo 'user nobody nogroup;' )|g" \
          "$BENCH/nginx.conf.in" > "$WORK/nginx/nginx.conf"
      start nginx proxy "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
      PROXY_PID=$LAST_PID; URL="http://127.0.0.1:$port"
      await_port "127.0.0.1:$port" "$PROXY_PID" nginx ;;
  esac
}
stop_proxy() { [[ -n $PROXY_PID ]] && stop "$PROXY_PID"; PROXY_PID=""; }

# smoke TARGET: the key is needed (proxies) and the benchmark request answers 200.
smoke() {
  local code
  code=$(curl -s -o "$WORK/smoke.body" -w '%{http_code}' --max-time 5 -H "Authorization: $AUTH" \
    -H 'Content-Type: application/json' -d "$CHAT_BODY" "$URL/api/chat")
  [[ $code == 200 ]] || die "$1: POST /api/chat answered $code: $(head -c 300 "$WORK/smoke.body")"
  if [[ $1 != direct ]]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' \
      -d "$CHAT_BODY" "$URL/api/chat")
    [[ $code == 401 ]] || die "$1: a request without the key answered $code, not 401"
  fi
}

# ---------------------------------------------------------------- load
CHAT_BODY='{"model":"llama3.2","messages":[{"role":"user","content":"Why is the sky blue?"}],"stream":false,"options":{"temperature":0}}'
STREAM_BODY='{"model":"llama3.2","messages":[{"role":"user","content":"Why is the sky blue?"}],"stream":true}'
SLOW_BODY='{"model":"slow","messages":[{"role":"user","content":"Why is the sky blue?"}],"stream":true}'

# wrk_run SECONDS CONNS DELAY_MS BODY -> the BENCH line
wrk_run() {
  local threads=$THREADS
  (( threads > $2 )) && threads=$2
  BENCH_METHOD=POST BENCH_BODY=$4 BENCH_AUTH=$AUTH BENCH_DELAY_MS=$3 \
    on_load wrk -t "$threads" -c "$2" -d "${1}s" --timeout 5s -s "$BENCH/wrk/request.lua" \
    "$URL/api/chat" > "$WORK/wrk.out" 2>&1 || { cat "$WORK/wrk.out" >&2; die "wrk failed"; }
  grep -m1 '^BENCH ' "$WORK/wrk.out" || { cat "$WORK/wrk.out" >&2; die "wrk printed no result"; }
}
field() { sed -nE "s/.* $1=([^ ]*).*/\1/p" <<<" $2"; }

RESULTS=$WORK/results.tsv
: > "$RESULTS"
# measure PHASE TARGET CONNS DELAY_MS BODY
measure() {
  local phase=$1 target=$2 upstream=$MOCK line
  start_proxy "$target" "$upstream"
  smoke "$target"
  (( WARMUP > 0 )) && wrk_run "$WARMUP" "$3" "$4" "$5" >/dev/null
  # The proxy's CPU time per request: steadier than requests/s on a machine shared with others.
  # Split into user and kernel time: the kernel's part (loopback TCP, both sockets) is much the
  # same work for any proxy; the user part is the proxy's own.
  local ticks0="0 0" ticks1 cpu_us=- sys_us=-
  [[ -n $PROXY_PID ]] && ticks0=$(cpu_ticks $(proxy_pids "$PROXY_PID"))
  line=$(wrk_run "$DURATION" "$3" "$4" "$5")
  if [[ -n $PROXY_PID ]]; then
    ticks1=$(cpu_ticks $(proxy_pids "$PROXY_PID"))
    local requests; requests=$(field requests "$line")
    if (( ${requests:-0} > 0 )); then
      read -r cpu_us sys_us < <(awk -v a="$ticks0" -v b="$ticks1" -v hz="$CLK_TCK" -v n="$requests" \
        'BEGIN { split(a, x, " "); split(b, y, " "); f = 1e6 / hz / n
                 printf "%.1f %.1f\n", (y[1] + y[2] - x[1] - x[2]) * f, (y[2] - x[2]) * f }')
    fi
  fi
  local rss=0
  [[ -n $PROXY_PID ]] && rss=$(hwm_kb $(proxy_pids "$PROXY_PID"))
  stop_proxy
  local bad=$(( $(field status "$line") + $(field connect "$line") + $(field timeout "$line") ))
  (( bad == 0 )) || log "WARNING: $phase/$target: errors in wrk's result: $line"
  (( $(field status "$line") == 0 )) || die "$phase/$target: non-2xx answers under load; the figures would be meaningless"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$target" "$(field rps "$line")" \
    "$(field p50_us "$line")" "$(field p99_us "$line")" "$rss" "$bad" "$cpu_us" "$sys_us" >> "$RESULTS"
  log "$phase $target: $(field rps "$line") req/s p50 $(field p50_us "$line") us p99 $(field p99_us "$line") us rss ${rss} kB cpu ${cpu_us} us/request (${sys_us} in the kernel)"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for ((round = 1; round <= ROUNDS; round++)); do
  log "round $round/$ROUNDS"
  for target in $TARGETS; do measure chat "$target" "$CONNS" 0 "$CHAT_BODY"; done
  for target in $TARGETS; do measure paced "$target" "$PACED_CONNS" "$PACED_DELAY_MS" "$CHAT_BODY"; done
  for target in $TARGETS; do measure stream "$target" "$CONNS" 0 "$STREAM_BODY"; done
done

# ---------------------------------------------------------------- 1,000 concurrent streams
STREAM_SECS=$(( (STREAM_CHUNKS * STREAM_DELAY_MS + 999) / 1000 ))
STREAM_RESULTS=$WORK/streams.tsv
: > "$STREAM_RESULTS"
for target in $TARGETS; do
  start_proxy "$target" "$SLOWMOCK"
  watch=()
  [[ -n $PROXY_PID ]] && for p in $(proxy_pids "$PROXY_PID"); do watch+=(--watch-pid "$p"); done
  log "streams $target: $STREAMS concurrent, $STREAM_CHUNKS chunks ${STREAM_DELAY_MS} ms apart"
  line=$(on_load "$BIN/corral-bench" streams --kv --url "$URL/api/chat" --key "$KEY" --body "$SLOW_BODY" \
    --concurrency "$STREAMS" --ramp-ms 2000 --deadline-secs $((2 * STREAM_SECS + 30)) --expect-done \
    "${watch[@]}" 2>"$WORK/streams.err") || true
  [[ -n $line ]] || { cat "$WORK/streams.err" >&2; die "streams $target: no result"; }
  rss=0
  [[ -n $PROXY_PID ]] && rss=$(hwm_kb $(proxy_pids "$PROXY_PID"))
  stop_proxy
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$(field completed "$line")" "$(field peak_open "$line")" \
    "$(field first_byte_p50_ms "$line")" "$(field first_byte_p99_ms "$line")" "$rss" \
    "$(field rss_at_peak_open_kb "$line")" "$(field errors "$line")" >> "$STREAM_RESULTS"
  log "streams $target: $line"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
mkdir -p "$OUT_DIR"
REPORT=$OUT_DIR/gate-results.md
CPU_MODEL=$(sed -nE 's/^model name\s*:\s*//p' /proc/cpuinfo | head -1)
{
  echo "### corral gate benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), ${CPU_MODEL:-unknown CPU}, $NCPU CPUs, Linux $(uname -r);"
  echo "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), corral $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '(uncommitted)')."
  echo "Pinning: $PINNING; nginx worker_processes $PROXY_NCPU. Load average before/after: $LOAD_BEFORE / $LOAD_AFTER."
  echo "wrk: $THREADS thread(s), ${DURATION} s measured after ${WARMUP} s warm-up, fresh proxy process per run; median of $ROUNDS interleaved rounds."
  echo
  awk -F'\t' -v conns="$CONNS" -v pconns="$PACED_CONNS" -v pdelay="$PACED_DELAY_MS" \
    -v streams_total="$STREAMS" -v streams_shape="$STREAM_CHUNKS chunks ${STREAM_DELAY_MS} ms apart" \
    -v results="$RESULTS" -f "$BENCH/report.awk" "$RESULTS" "$STREAM_RESULTS"
} > "$REPORT"
cat "$REPORT"
log "written to $REPORT"
