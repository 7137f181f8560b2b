#!/usr/bin/env bash
# Builds the Swift package and runs its tests (BBEGrouper against ../tests/golden, the readers on a corpus of
# mutated files: tests/fuzz_corpus.sh).
# Exits non-zero on failure; exits 0 with a notice when no Swift toolchain is installed.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v swift >/dev/null 2>&1; then
    echo "swift not found: skipping Swift tests"
    exit 0
fi

# shellcheck source=../tests/fuzz_corpus.sh
source ../tests/fuzz_corpus.sh
bbe_fuzz_corpus
swift --version
swift build
swift test
echo "Swift tests passed"
