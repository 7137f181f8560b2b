#!/usr/bin/env bash
# JVM benchmark of the Kotlin grouper on the golden benchmark cases (bbe-bench/1 JSON, source
# "kotlin-grouper", device "host"). Reuses test.sh's kotlinc build (build/kotlinc, cached).
# Usage: bash android_demo/grouper/bench.sh [--runs N] [--warmup N] [--case NAME]... [--out FILE]
# The JSON goes to stdout (or FILE), a human-readable table to stderr; exit 1 if labels differ.
set -euo pipefail

if ! command -v java >/dev/null 2>&1; then
    echo "java not found: cannot run the Kotlin grouper bench" >&2
    exit 1
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=kotlinc-build.sh
source "$HERE/kotlinc-build.sh"
bbe_kotlin_build bench
exec java -Dbbe.golden.dir="${BBE_GOLDEN_DIR:-$REPO/tests/golden}" \
    -cp "$MAIN_CLASSES:$BENCH_CLASSES:$KOTLIN_STDLIB" org.bbemobile.grouper.GrouperBench "$@"
