#!/usr/bin/env bash
# Runs every test: the Rust build and `cargo test`, then the end-to-end suite
# (tests/e2e) against a real `gust up` with boto3, the AWS CLI and the official
# Lambda runtime interface clients.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -k sigv4        extra arguments go to pytest
#
# Environment:
#   GUST_TEST_SKIP_CARGO=1          skip `cargo test --workspace` (still builds)
#   GUST_TEST_SKIP_BUILD=1          skip the build too (iterating on the e2e suite)
#   GUST_TEST_CACHE=DIR             cache for the compiled npm client (default ~/.cache/gust-test)
#   PYTEST_ADDOPTS                  as usual for pytest
#
# Idempotent: the virtualenv and the npm client are reinstalled only when their
# pinned requirements change. System packages come from scripts/setup-deps.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STARTED=$(date +%s)
step() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - STARTED ))" "$*"; }
note() { printf '    %s\n' "$*"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# ---------------------------------------------------------------------------
if [ "${GUST_TEST_SKIP_BUILD:-}" = "1" ]; then
    step "skipping cargo build (GUST_TEST_SKIP_BUILD=1)"
else
    step "cargo build --workspace --all-targets"
    cargo build --workspace --all-targets
fi

# ---------------------------------------------------------------------------
SIGV4_FETCH=crates/aws/tests/fetch-sigv4-suite.sh
if [ -f "$SIGV4_FETCH" ]; then
    step "fetching the SigV4 test suite into .cache/sigv4"
    # A self-ignoring cache directory (as .pytest_cache does), so git never sees it.
    mkdir -p .cache && [ -f .cache/.gitignore ] || echo '*' > .cache/.gitignore
    bash "$SIGV4_FETCH" "$ROOT/.cache/sigv4"
    export GUST_SIGV4_SUITE="$ROOT/.cache/sigv4"
    note "GUST_SIGV4_SUITE=$GUST_SIGV4_SUITE"
else
    note "no $SIGV4_FETCH; the SigV4 vector tests use what cargo test has"
fi

if [ "${GUST_TEST_SKIP_CARGO:-}" = "1" ]; then
    step "skipping cargo test (GUST_TEST_SKIP_CARGO=1)"
else
    step "cargo test --workspace"
    cargo test --workspace
fi

# ---------------------------------------------------------------------------
step "Python virtualenv .venv (tests/e2e/requirements.txt)"
# The Debian interpreter starts fast and has venv/ensurepip; fall back to the
# real binary behind whatever python3 is on PATH (never a pyenv shim).
pick_python() {
    if /usr/bin/python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        echo /usr/bin/python3
        return
    fi
    local p
    p="$(command -v python3 || true)"
    if [ -n "$p" ]; then
        "$p" -c 'import sys; print(sys.executable)' 2>/dev/null && return
    fi
    echo "no usable python3 (install python3-venv: scripts/setup-deps.sh)" >&2
    return 1
}
VENV="$ROOT/.venv"
REQS=tests/e2e/requirements.txt
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    BASE_PY="$(pick_python)"
    note "creating .venv with $BASE_PY"
    rm -rf "$VENV"
    "$BASE_PY" -m venv "$VENV"
fi
REQ_HASH="$(hash_of "$REQS")"
if [ "$(cat "$VENV/.gust-requirements" 2>/dev/null)" != "$REQ_HASH" ]; then
    note "installing pinned packages"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS"
    echo "$REQ_HASH" > "$VENV/.gust-requirements"
else
    note "up to date"
fi

# ---------------------------------------------------------------------------
step "AWS SDKs for functions (gust sdk install)"
# What Lambda's managed runtimes include and functions import without bundling: boto3 and
# the SDK for JavaScript v3. `gust sdk install` lays them out; `gust up` reads GUST_SDK_DIR.
# Pinned, and cached under .cache by the hash of the pins.
SDK_PY_PINS=(boto3==1.44.8)
SDK_NODE_PINS=(@aws-sdk/client-dynamodb@3.1169.0 @aws-sdk/lib-dynamodb@3.1169.0)
SDK_HASH="$( (echo "${SDK_PY_PINS[@]}" "${SDK_NODE_PINS[@]}"; node --version) | sha256sum | cut -c1-16)"
SDK_DIR="$ROOT/.cache/sdk-$SDK_HASH"
mkdir -p .cache && [ -f .cache/.gitignore ] || echo '*' > .cache/.gitignore
if [ ! -f "$SDK_DIR/.complete" ]; then
    rm -rf "$SDK_DIR"
    args=(--dir "$SDK_DIR" --python "$VENV/bin/python")
    for p in "${SDK_PY_PINS[@]}"; do args+=(--python-package "$p"); done
    for p in "${SDK_NODE_PINS[@]}"; do args+=(--node-package "$p"); done
    "${CARGO_TARGET_DIR:-$ROOT/target}/debug/gust" sdk install "${args[@]}"
    touch "$SDK_DIR/.complete"
else
    note "cached in $SDK_DIR"
fi
export GUST_SDK_DIR="$SDK_DIR"

# ---------------------------------------------------------------------------
step "aws-lambda-ric (npm) in tests/e2e/node"
# aws-lambda-ric 3.3.0 (the last for Node 20) compiles native code (cmake,
# autoconf, automake, libtool, g++): about 1.5 minutes, so the result is cached
# outside the work tree, keyed by the pinned package files and the Node version.
# npm 11 runs dependency install scripts only when allowed: package.json's
# "allowScripts" approves exactly aws-lambda-ric@3.3.0.
NODE_DIR=tests/e2e/node
NODE_HASH="$( (cat "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json"; node --version; uname -m) | sha256sum | cut -c1-16)"
CACHE="${GUST_TEST_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/gust-test}/npm-$NODE_HASH"
if [ ! -f "$CACHE/node_modules/aws-lambda-ric/dist/rapid-client.node" ]; then
    note "building into $CACHE (native code; takes a minute or two)"
    rm -rf "$CACHE.tmp"
    mkdir -p "$CACHE.tmp"
    cp "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json" "$CACHE.tmp/"
    if ! (cd "$CACHE.tmp" && npm ci --no-audit --no-fund >npm-install.log 2>&1); then
        tail -50 "$CACHE.tmp/npm-install.log"
        echo "npm ci failed; full log in $CACHE.tmp/npm-install.log" >&2
        exit 1
    fi
    if [ ! -f "$CACHE.tmp/node_modules/aws-lambda-ric/dist/rapid-client.node" ]; then
        tail -30 "$CACHE.tmp/npm-install.log"
        echo "aws-lambda-ric installed without its native module (install scripts skipped?)" >&2
        exit 1
    fi
    rm -rf "$CACHE"
    mv "$CACHE.tmp" "$CACHE"
else
    note "cached in $CACHE"
fi
if [ "$(readlink "$NODE_DIR/node_modules" 2>/dev/null)" != "$CACHE/node_modules" ]; then
    rm -rf "$NODE_DIR/node_modules"
    ln -s "$CACHE/node_modules" "$NODE_DIR/node_modules"
fi

# ---------------------------------------------------------------------------
step "Wasm guest built by componentize-py (crates/wasm/tests/guests/py-hello)"
# An 18 MB wasi:http component from Python source, cached by the hash of its inputs; the
# Rust test and tests/e2e/test_wasm.py use it through GUST_WASM_PY_COMPONENT.
PY_GUEST=crates/wasm/tests/guests/py-hello
CPY_VERSION=0.25.1
if ! "$VENV/bin/componentize-py" --version 2>/dev/null | grep -q "$CPY_VERSION"; then
    "$VENV/bin/pip" install -q "componentize-py==$CPY_VERSION"
fi
PY_GUEST_HASH="$( (cat "$PY_GUEST/app.py" "$PY_GUEST/build.sh" crates/wasm/tests/guests/wit/*.wit crates/wasm/tests/guests/wit/deps/*.wit; echo "$CPY_VERSION") | sha256sum | cut -c1-16)"
PY_GUEST_OUT="$ROOT/.cache/wasm-guests/py-hello-$PY_GUEST_HASH.wasm"
if [ ! -f "$PY_GUEST_OUT" ]; then
    mkdir -p "$(dirname "$PY_GUEST_OUT")"
    PATH="$VENV/bin:$PATH" "$PY_GUEST/build.sh" "$PY_GUEST_OUT.tmp" >/dev/null
    mv "$PY_GUEST_OUT.tmp" "$PY_GUEST_OUT"
else
    note "cached in $PY_GUEST_OUT"
fi
export GUST_WASM_PY_COMPONENT="$PY_GUEST_OUT"
if [ "${GUST_TEST_SKIP_CARGO:-}" != "1" ]; then
    cargo test -p gust-wasm --test wasm componentize_py
fi

# ---------------------------------------------------------------------------
step "end-to-end suite: pytest tests/e2e"
export GUST_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/gust"
export GUST_E2E_REQUIRE_ALL=1
set +e
"$VENV/bin/python" -m pytest tests/e2e -x -q "$@"
rc=$?
set -e
case $rc in
    0) step "all tests passed" ;;
    5) step "pytest collected no tests"; exit 1 ;;
    *) step "end-to-end suite failed (pytest exit $rc)"; exit $rc ;;
esac
