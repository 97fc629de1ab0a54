#!/usr/bin/env bash
# Gust's DynamoDB API against moto_server, same native load generator (gust-bench-dynamodb).
# Builds release `gust` and the benchmark, installs moto_server into .cache/bench-venv (once),
# then runs. Usage: bench/dynamodb.sh [--seconds 3] [--clients 1,8] [--out DIR]
# Results: stdout, bench/results/dynamodb.md and bench/results/dynamodb.json.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.cache/bench-venv
if [ ! -x "$venv/bin/moto_server" ]; then
    mkdir -p .cache
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q "moto[server,dynamodb]"
fi
cargo build --release -p gust-cli -p gust-bench
exec target/release/gust-bench-dynamodb --moto "$venv/bin/moto_server" "$@"
