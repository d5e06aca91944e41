#!/usr/bin/env bash
# Installs what the test suites need, so `bash scripts/test.sh` works on a fresh Debian machine
# that has only the Rust toolchain, python3 + pip and node + npm:
#   - Debian packages (C compiler, python3-venv, chromium for the HTML report test, ...) through
#     apt-get, only when missing and only as root;
#   - the official Python clients (ollama, openai, anthropic) and pytest, pinned in
#     e2e/python/requirements.txt, into the venv e2e/python/.venv;
#   - the official `ollama` npm client, pinned in e2e/node/package-lock.json, through `npm ci`.
# Safe to run repeatedly: each step is skipped when already done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY_DIR="$ROOT/e2e/python"
NODE_DIR="$ROOT/e2e/node"
VENV="$PY_DIR/.venv"
MIN_NODE_MAJOR=18

say() { printf 'setup: %s\n' "$*"; }
die() {
    printf 'setup: error: %s\n' "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# --- Debian packages --------------------------------------------------------------------------

missing_debs=()
have cargo || die "cargo not found: install the Rust toolchain (https://rustup.rs) and re-run"
# The bundled SQLite and zstd are C code built by cc.
have cc || missing_debs+=(gcc libc6-dev)
have python3 || missing_debs+=(python3)
if ! have python3 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    # Debian ships venv's ensurepip separately.
    missing_debs+=(python3-venv)
fi
have node || missing_debs+=(nodejs)
have npm || missing_debs+=(npm)
# corral-scan's HTML report is checked as headless Chromium renders it.
have chromium || have chromium-browser || missing_debs+=(chromium)
# The mutual-TLS end-to-end tests make their CA and client certificates with it.
have openssl || missing_debs+=(openssl)

if ((${#missing_debs[@]} > 0)); then
    if [[ $(id -u) -ne 0 ]]; then
        die "missing Debian packages: ${missing_debs[*]} (run as root, or: sudo apt-get install ${missing_debs[*]})"
    fi
    have apt-get || die "missing ${missing_debs[*]} and no apt-get to install them with"
    say "installing Debian packages: ${missing_debs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q </dev/null || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing_debs[@]}" </dev/null ||
        die "apt-get install ${missing_debs[*]} failed"
else
    say "system packages present (cc, python3 with venv, node, npm, chromium)"
fi

node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= MIN_NODE_MAJOR)) ||
    die "node $(node --version) is too old: the e2e tests need node >= $MIN_NODE_MAJOR (built-in test runner and fetch)"

# --- Python venv ------------------------------------------------------------------------------

stamp="$VENV/.corral-requirements.sha256"
want="$( (sha256sum "$PY_DIR/requirements.txt" && python3 --version) | sha256sum | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
    "$VENV/bin/python" -c 'import anthropic, ollama, openai, prometheus_client, pytest' >/dev/null 2>&1; then
    say "python venv up to date ($VENV)"
else
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'pass' >/dev/null 2>&1; then
        say "creating python venv $VENV"
        rm -rf "$VENV"
        python3 -m venv "$VENV" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    fi
    say "installing pinned python packages from e2e/python/requirements.txt"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
        -r "$PY_DIR/requirements.txt" </dev/null || die "pip install -r e2e/python/requirements.txt failed"
    printf '%s\n' "$want" >"$stamp"
fi

# --- npm --------------------------------------------------------------------------------------

lock="$NODE_DIR/package-lock.json"
installed="$NODE_DIR/node_modules/.package-lock.json"
if [[ -f "$installed" && -d "$NODE_DIR/node_modules/ollama" ]] &&
    cmp -s <(node -e 'const l=require(process.argv[1]);console.log(JSON.stringify(Object.keys(l.packages).filter(Boolean).map(k=>[k,l.packages[k].version]).sort()))' "$lock") \
        <(node -e 'const l=require(process.argv[1]);console.log(JSON.stringify(Object.keys(l.packages).filter(Boolean).map(k=>[k,l.packages[k].version]).sort()))' "$installed"); then
    say "node modules up to date ($NODE_DIR/node_modules)"
else
    say "installing pinned npm packages (npm ci)"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error </dev/null) ||
        die "npm ci in e2e/node failed"
fi

say "done"
