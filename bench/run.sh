#!/usr/bin/env bash
# Builds release binaries of `gust` and the benchmark, then runs the core benchmark.
# Usage: bench/run.sh [--quick] [--out DIR] [--gust PATH]
# Results: bench/results/core.md (the table) and bench/results/core.json (raw numbers).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p gust-cli -p gust-bench
exec target/release/gust-bench "$@"
