#!/bin/sh
# Builds py-hello.wasm (a wasi:http/proxy component) from app.py with componentize-py 0.25.1:
#   crates/wasm/tests/guests/py-hello/build.sh <output.wasm>
# Needs `componentize-py` on PATH or in .venv (pip install componentize-py==0.25.1).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
WIT="$HERE/../wit"
OUT=$(realpath -m "${1:-py-hello.wasm}")
CPY=$(command -v componentize-py || echo "$HERE/../../../../../.venv/bin/componentize-py")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp "$HERE/app.py" "$WORK/"
cd "$WORK"
"$CPY" -d "$WIT" -w gust:test/guest bindings .
"$CPY" -d "$WIT" -w gust:test/guest componentize app -o "$OUT"
