#!/usr/bin/env bash
# Builds the Kotlin grouper and its JUnit 4 tests with Debian's kotlinc (installing kotlin and junit4 with
# apt-get when absent) and runs them against tests/golden (and the readers on mutated files: see
# tests/fuzz_corpus.sh). Exit status non-zero on any failure.
# Usage: bash android_demo/grouper/test.sh [TestClass ...]   (from any directory)
set -euo pipefail

if ! command -v java >/dev/null 2>&1; then
    echo "java not found: skipping Kotlin tests"
    exit 0
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=kotlinc-build.sh
source "$HERE/kotlinc-build.sh"
bbe_kotlin_build test
# shellcheck source=../../tests/fuzz_corpus.sh
source "$REPO/tests/fuzz_corpus.sh"
bbe_fuzz_corpus

if [ "$#" -gt 0 ]; then
    classes=("$@")
else
    # Every compiled top-level class whose name ends in Test.
    mapfile -t classes < <(cd "$TEST_CLASSES" && find . -name '*Test.class' ! -name '*$*' | LC_ALL=C sort |
        sed -e 's|^\./||' -e 's|\.class$||' -e 's|/|.|g')
fi
if [ "${#classes[@]}" -eq 0 ]; then
    echo "no test classes found in $TEST_CLASSES" >&2
    exit 1
fi
java -Dbbe.golden.dir="${BBE_GOLDEN_DIR:-$REPO/tests/golden}" -Dbbe.fuzz.corpus="${BBE_FUZZ_CORPUS:-}" \
    -cp "$MAIN_CLASSES:$TEST_CLASSES:$JUNIT_CP:$KOTLIN_STDLIB" org.junit.runner.JUnitCore "${classes[@]}"
