#!/usr/bin/env bash
# Fetches AWS's SigV4 test suite, which botocore's source distribution ships under
# tests/unit/auth/aws4_testsuite, into the cache directory $1 and prints the suite's path.
#
#   GUST_SIGV4_SUITE=$(crates/aws/tests/fetch-sigv4-suite.sh ~/.cache/gust) \
#     cargo test -p gust-aws --test aws4_testsuite
#
# The version is the installed botocore's (or $BOTOCORE_VERSION); $PYTHON picks the interpreter.
# Nothing is written outside the cache directory; the suite is never copied into the repo.
set -euo pipefail

cache="${1:?usage: fetch-sigv4-suite.sh CACHE_DIR}"
python="${PYTHON:-python3}"
version="${BOTOCORE_VERSION:-$("$python" -c 'import botocore; print(botocore.__version__)' 2>/dev/null || echo 1.43.11)}"
suite="$cache/botocore-$version/tests/unit/auth/aws4_testsuite"

if [ ! -f "$suite/get-vanilla/get-vanilla.req" ]; then
    mkdir -p "$cache"
    sdist="$cache/botocore-$version.tar.gz"
    if [ ! -f "$sdist" ]; then
        "$python" -m pip download --quiet --no-binary :all: --no-deps \
            "botocore==$version" -d "$cache" >&2
    fi
    tar -xzf "$sdist" -C "$cache" "botocore-$version/tests/unit/auth/aws4_testsuite"
fi
echo "$suite"
