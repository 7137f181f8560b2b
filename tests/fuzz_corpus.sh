# Sourced by ios_demo/test.sh and android_demo/grouper/test.sh (do not run it): sets BBE_FUZZ_CORPUS to a
# corpus of mutated files for the Swift / Kotlin reader fuzz tests, written by tests/fuzz_corpus.py into a
# temporary directory removed on exit, unless BBE_FUZZ_CORPUS is already set. Python: $BBE_PYTHON, else the
# checkout's .venv (make setup). Without one the fuzz tests skip, saying why. Examples: $BBE_FUZZ_EXAMPLES (300).
bbe_fuzz_corpus() {
    local repo python
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    python="${BBE_PYTHON:-$repo/.venv/bin/python}"
    if [ -n "${BBE_FUZZ_CORPUS:-}" ]; then
        return 0
    fi
    if [ ! -x "$python" ]; then
        echo "no Python at $python (run make setup or set BBE_PYTHON): the fuzz corpus tests will skip" >&2
        return 0
    fi
    BBE_FUZZ_CORPUS="$(mktemp -d)"
    export BBE_FUZZ_CORPUS
    trap 'rm -rf "$BBE_FUZZ_CORPUS"' EXIT
    "$python" "$repo/tests/fuzz_corpus.py" "$BBE_FUZZ_CORPUS" --examples "${BBE_FUZZ_EXAMPLES:-300}"
}
