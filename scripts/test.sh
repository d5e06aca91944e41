#!/usr/bin/env bash
# The project's test command: `bash scripts/test.sh`.
#
# Installs what the suites need (scripts/setup-test-deps.sh), builds every binary, then runs
#   1. cargo test --workspace        unit, integration and bypass-corpus tests
#      cargo test (fuzz/)            every fuzz corpus replayed through its target
#   2. pytest e2e/python             the official `ollama`, `openai` and `anthropic` Python clients through the gate
#   3. node --test e2e/node          the official `ollama` npm client through the gate
# Stops at the first failing stage, exits non-zero if anything failed, and ends with one line
# `summary: N passed, N failed, N skipped` over every test run.
#
# Options: --e2e   skip `cargo test` (build, then the end-to-end suites only)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

run_cargo_test=1
for arg in "$@"; do
    case "$arg" in
    --e2e) run_cargo_test=0 ;;
    -h | --help)
        sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        printf 'test.sh: unknown option %s (try --help)\n' "$arg" >&2
        exit 2
        ;;
    esac
done

export CI="${CI:-}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Tests talk to 127.0.0.1 only; a proxy from the environment must not intercept them.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

LOGS="$(mktemp -d "${TMPDIR:-/tmp}/corral-test.XXXXXX")"
trap 'rm -rf "$LOGS"' EXIT

passed=0
failed=0
skipped=0
start_all=$SECONDS

banner() { printf '\n==> %s\n' "$*"; }

finish() {
    local status=$1 msg=$2
    printf '\n'
    if ((status == 0)); then
        printf 'test.sh: all stages passed in %ss\n' "$((SECONDS - start_all))"
    else
        printf 'test.sh: FAILED: %s (after %ss)\n' "$msg" "$((SECONDS - start_all))" >&2
        # A stage that failed without countable failures (a build error, a crashed runner)
        # still counts as one failure in the summary.
        ((failed > 0)) || failed=1
    fi
    printf 'summary: %d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
    exit "$status"
}

# Runs one stage; on failure, reports it and stops.
stage() {
    local name=$1
    shift
    banner "$name"
    local t0=$SECONDS
    if "$@"; then
        printf -- '--- %s: ok (%ss)\n' "$name" "$((SECONDS - t0))"
    else
        local code=$?
        finish 1 "$name (exit $code)"
    fi
}

# --- counting ---------------------------------------------------------------------------------

count_cargo() { # cargo test's "test result: ok. N passed; M failed; K ignored; ..."
    local log=$1 p f i
    read -r p f i < <(awk '/^test result: /{
            for (n = 1; n <= NF; n++) {
                if ($(n+1) ~ /^passed/) p += $n
                if ($(n+1) ~ /^failed/) f += $n
                if ($(n+1) ~ /^ignored/) i += $n
            }
        } END { printf "%d %d %d\n", p, f, i }' "$log")
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + i))
}

count_junit() { # pytest's JUnit XML
    local p f s
    read -r p f s < <("$VENV_PY" - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
t = f = s = 0
for su in suites:
    t += int(su.get("tests", 0))
    f += int(su.get("failures", 0)) + int(su.get("errors", 0))
    s += int(su.get("skipped", 0))
print(t - f - s, f, s)
PY
    )
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
}

count_tap() { # node's TAP summary: "# pass N", "# fail N", "# skipped N", "# todo N", "# cancelled N"
    local p f s
    read -r p f s < <(awk '/^# pass /{p=$3} /^# fail /{f+=$3} /^# cancelled /{f+=$3}
        /^# skipped /{s+=$3} /^# todo /{s+=$3} END { printf "%d %d %d\n", p, f, s }' "$1")
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
}

# --- stages -----------------------------------------------------------------------------------

VENV_PY="$ROOT/e2e/python/.venv/bin/python"

setup() { bash "$ROOT/scripts/setup-test-deps.sh"; }

build() {
    cargo build --workspace --bins || return
    TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')" || return
    export CORRAL_BIN="$TARGET_DIR/debug/corral"
    export MOCK_OLLAMA_BIN="$TARGET_DIR/debug/mock-ollama"
    export MOCK_IDP_BIN="$TARGET_DIR/debug/mock-idp"
    local bin
    for bin in "$CORRAL_BIN" "$MOCK_OLLAMA_BIN" "$MOCK_IDP_BIN"; do
        [[ -x "$bin" ]] || {
            printf 'test.sh: %s was not built\n' "$bin" >&2
            return 1
        }
    done
}

cargo_test() {
    local log="$LOGS/cargo-test.log" code=0
    cargo test --workspace 2>&1 | tee "$log" || code=$?
    count_cargo "$log"
    return "$code"
}

fuzz_corpus() {
    local log="$LOGS/fuzz-corpus.log" code=0
    # The main target directory: the dependencies compiled for the workspace are reused.
    cargo test --manifest-path "$ROOT/fuzz/Cargo.toml" --target-dir "$TARGET_DIR" 2>&1 | tee "$log" || code=$?
    count_cargo "$log"
    return "$code"
}

pytest_e2e() {
    local xml="$LOGS/pytest.xml" code=0
    (cd "$ROOT/e2e/python" && "$VENV_PY" -m pytest -p no:cacheprovider --junitxml="$xml" </dev/null) || code=$?
    [[ -f "$xml" ]] && count_junit "$xml"
    # Exit 5 means no test was collected: for this suite, that is a failure.
    return "$code"
}

node_e2e() {
    local tap="$LOGS/node.tap" code=0
    (cd "$ROOT/e2e/node" && node --test \
        --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="$tap" \
        test/*.test.mjs </dev/null) || code=$?
    [[ -f "$tap" ]] && count_tap "$tap"
    if ((code == 0)) && ! grep -q '^# pass [1-9]' "$tap"; then
        printf 'test.sh: node --test ran no test\n' >&2
        return 1
    fi
    return "$code"
}

stage "install test dependencies" setup
stage "cargo build --workspace --bins" build
if ((run_cargo_test)); then
    stage "cargo test --workspace" cargo_test
    stage "fuzz corpora replayed through every fuzz target" fuzz_corpus
fi
stage "e2e: python clients (ollama, openai, anthropic) through the gate" pytest_e2e
stage "e2e: node client (ollama) through the gate" node_e2e
finish 0 ""
