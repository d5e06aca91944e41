#!/usr/bin/env bash
# corral hunt benchmark: ~1 GB of generated ECS NDJSON + Zeek conn.log, corral hunt (release)
# beside jq running the Elastic rule over the same ECS file. See bench/README.md.
#
#   bash bench/hunt.sh            # 1024 MB
#   HUNT_MB=256 bash bench/hunt.sh
set -euo pipefail

cd "$(dirname "$0")/.."
MB="${HUNT_MB:-1024}"
SMALL_MB=$((MB / 4))
SEED="${HUNT_SEED:-5}"
CORES="$(nproc)"

if ! command -v jq >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -q jq >/dev/null; else echo "jq missing" >&2; exit 2; fi
fi
[ -x /usr/bin/time ] || { [ "$(id -u)" = 0 ] && apt-get install -y -q time >/dev/null; }

echo "building (release)..." >&2
cargo build -q --release -p corral --bin corral
cargo build -q --release -p corral-hunt --example hunt_corpus
BIN="$PWD/target/release/corral"
GEN="$PWD/target/release/examples/hunt_corpus"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/corral-hunt-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT INT TERM
mkdir -p "$WORK/big" "$WORK/small"

echo "generating ${MB} MB and ${SMALL_MB} MB inputs (seed $SEED)..." >&2
read -r BIG_COUNTS < <("$GEN" "$WORK/big" "$MB" "$SEED")
read -r SMALL_COUNTS < <("$GEN" "$WORK/small" "$SMALL_MB" "$SEED")
eval "$BIG_COUNTS"   # ecs_events zeek_events elastic_positives zeek_positives
EVENTS=$((ecs_events + zeek_events))
BYTES=$(( $(stat -c %s "$WORK/big/ecs.ndjson") + $(stat -c %s "$WORK/big/conn.log") ))
ECS_BYTES=$(stat -c %s "$WORK/big/ecs.ndjson")

# Warm the page cache so both tools read from memory.
cat "$WORK"/big/* > /dev/null

# measure NAME CMD... : wall seconds, user+sys seconds, peak RSS (KB) into M_WALL M_CPU M_RSS
measure() {
  local log="$WORK/time.$1"; shift
  /usr/bin/time -v -o "$log" "$@"
  M_WALL=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$log")
  M_CPU=$(awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{print u+s}' "$log")
  M_RSS=$(awk -F': ' '/Maximum resident/{print $2}' "$log")
}

echo "corral hunt over ${MB} MB..." >&2
set +e
measure corral "$BIN" hunt --format ndjson -o "$WORK/alerts.ndjson" "$WORK/big/ecs.ndjson" "$WORK/big/conn.log"
rc=$?
set -e
[ "$rc" -le 1 ] || { echo "corral hunt failed ($rc)" >&2; cat "$WORK/time.corral" >&2; exit 2; }
C_WALL=$M_WALL C_CPU=$M_CPU C_RSS=$M_RSS
ELASTIC_ID=d8f2a1b3-c4e5-6789-abcd-ef0123456789
ZEEK_ID=3e9a7f42-6c15-4b08-b2d3-9f4e1a6c7d32
C_ELASTIC=$(grep -c "\"$ELASTIC_ID\"" "$WORK/alerts.ndjson" || true)
C_ZEEK=$(grep -c "\"$ZEEK_ID\"" "$WORK/alerts.ndjson" || true)

echo "corral hunt over ${SMALL_MB} MB (memory check)..." >&2
set +e
measure corral_small "$BIN" hunt --format ndjson -o /dev/null "$WORK/small/ecs.ndjson" "$WORK/small/conn.log"
set -e
S_RSS=$M_RSS

# The Elastic rule in jq: EQL's case-sensitive ==/in, cidrmatch over IPv4 and IPv6, null-safe,
# nested or dotted keys, IPv4-mapped IPv6 normalised as corral does.
cat > "$WORK/elastic.jq" <<'JQ'
def f(a; b): (getpath(a) // .[b]);
def v4: split(".") | map(tonumber? // -1) | select(length == 4 and all(. >= 0 and . <= 255));
def internal4: . as [$a,$b,$c,$d]
  | ($a == 10 or $a == 127 or ($a == 169 and $b == 254) or ($a == 172 and $b >= 16 and $b <= 31)
     or ($a == 192 and $b == 168) or ($a == 100 and $b >= 64 and $b <= 127));
def internal:
  ascii_downcase
  | (if startswith("::ffff:") and (.[7:] | test("^[0-9.]+$")) then .[7:] else . end)
  | if test("^[0-9.]+$") then ((v4 | internal4) // false)
    else (. == "::1" or test("^fe[89ab]") or test("^f[cd]") or startswith("ff")) end;
select(
  f(["event","action"]; "event.action") == "connection_accepted"
  and (f(["process","name"]; "process.name") as $n | $n == "ollama" or $n == "ollama.exe")
  and ((f(["destination","port"]; "destination.port") | tostring | tonumber? ) == 11434)
  and (f(["source","ip"]; "source.ip") as $ip
       | $ip != null and ($ip | type) == "string" and $ip != "0.0.0.0" and ($ip | internal | not)))
| 1
JQ

echo "jq over the ${MB} MB input's ECS file ($((ECS_BYTES >> 20)) MB)..." >&2
measure jq sh -c "jq -c -f '$WORK/elastic.jq' '$WORK/big/ecs.ndjson' | wc -l > '$WORK/jq.count'"
J_WALL=$M_WALL J_CPU=$M_CPU
J_ELASTIC=$(cat "$WORK/jq.count")

# corral over the ECS file alone, to compare like with like.
measure corral_ecs "$BIN" hunt --format ndjson -o /dev/null "$WORK/big/ecs.ndjson" || true
CE_WALL=$M_WALL CE_CPU=$M_CPU
LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"

awk -v ev="$EVENTS" -v bytes="$BYTES" -v ecsb="$ECS_BYTES" -v ecs="$ecs_events" -v cores="$CORES" \
    -v cw="$C_WALL" -v cc="$C_CPU" -v crss="$C_RSS" -v srss="$S_RSS" -v mb="$MB" -v smb="$SMALL_MB" \
    -v jw="$J_WALL" -v jc="$J_CPU" -v cew="$CE_WALL" -v cec="$CE_CPU" -v load="$LOAD" \
    -v ce="$C_ELASTIC" -v je="$J_ELASTIC" -v ge="$elastic_positives" -v cz="$C_ZEEK" -v gz="$zeek_positives" '
function ok(b) { return b ? "met" : "NOT met" }
BEGIN {
  eps = ev / cw; mbs = bytes / 1e6 / cw
  printf "\n## corral hunt benchmark (%d cores)\n\n", cores
  printf "input: %.0f MB, %d events (%d ECS NDJSON, %d Zeek conn.log)\n\n", bytes/1e6, ev, ecs, ev-ecs
  printf "| tool | input | wall s | CPU s | events/s | MB/s | MB/s per core used | peak RSS MB |\n|---|---|---|---|---|---|---|---|\n"
  printf "| corral hunt | ECS + Zeek | %.2f | %.2f | %.0f | %.0f | %.0f | %.1f |\n", cw, cc, eps, mbs, bytes/1e6/cc, crss/1024
  printf "| corral hunt | ECS only | %.2f | %.2f | %.0f | %.0f | %.0f | |\n", cew, cec, ecs/cew, ecsb/1e6/cew, ecsb/1e6/cec
  printf "| jq (Elastic rule) | ECS only | %.2f | %.2f | %.0f | %.0f | %.0f | |\n\n", jw, jc, ecs/jw, ecsb/1e6/jw, ecsb/1e6/jc
  printf "Elastic rule alerts: corral %d, jq %d, planted %d; Zeek rule alerts: corral %d, planted %d\n", ce, je, ge, cz, gz
  printf "peak RSS: %.1f MB at %d MB input, %.1f MB at %d MB input\n\n", srss/1024, smb, crss/1024, mb
  ratio = jw / cew
  printf "load average at the end: %s (other work on the machine slows the wall-clock figures;\n", load
  printf "the CPU-time figures are what %d otherwise idle cores would do)\n\n", cores
  printf "target >= 1,000,000 events/s using %d cores: %.0f events/s wall -> %s; %.0f events per CPU-second x %d cores = %.0f -> %s\n", cores, eps, ok(eps >= 1e6), ev/cc, cores, ev/cc*cores, ok(ev/cc*cores >= 1e6)
  printf "target >= 10x jq (ECS):                     %.1fx by wall clock -> %s; %.1fx by CPU time -> %s\n", ratio, ok(ratio >= 10), jc/cec, ok(jc/cec >= 10)
  flat = crss <= srss * 1.25 + 8192
  printf "target memory flat in input size:           %.1f MB vs %.1f MB -> %s\n", srss/1024, crss/1024, ok(flat)
  printf "alert counts agree (corral = jq = planted): %s\n", ok(ce == je && je == ge && cz == gz)
}'
