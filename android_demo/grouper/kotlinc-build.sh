# Shared by test.sh and bench.sh (source it, do not run it): compiles the grouper with Debian's kotlinc
# into build/kotlinc/{main,test,bench}, each cached under a SHA-256 stamp of its sources, the sources it
# depends on, the compiler and the classpath. Sets MAIN_CLASSES, TEST_CLASSES, BENCH_CLASSES, KOTLIN_STDLIB,
# JUNIT_CP. Overridable: KOTLINC, KOTLIN_STDLIB, JUNIT_JAR, HAMCREST_JAR, BBE_KOTLIN_BUILD_DIR.

GROUPER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD_DIR="${BBE_KOTLIN_BUILD_DIR:-$GROUPER_DIR/build/kotlinc}"

_bbe_sudo() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else "$@"; fi
}

# Installs the Debian packages kotlin and junit4 when kotlinc or the JUnit jar is missing.
bbe_ensure_toolchain() {
    local need=0
    command -v "${KOTLINC:-kotlinc}" >/dev/null 2>&1 || need=1
    [ -f "${JUNIT_JAR:-/usr/share/java/junit4.jar}" ] || need=1
    if [ "$need" = 1 ]; then
        if ! command -v apt-get >/dev/null 2>&1; then
            echo "kotlinc or junit4 missing and apt-get unavailable: install Kotlin and JUnit 4 first" >&2
            return 1
        fi
        echo "installing kotlin and junit4 (apt-get)..." >&2
        export DEBIAN_FRONTEND=noninteractive
        _bbe_sudo apt-get install -y kotlin junit4 >&2 ||
            { _bbe_sudo apt-get update >&2 && _bbe_sudo apt-get install -y kotlin junit4 >&2; } || return 1
    fi
    KOTLINC="${KOTLINC:-kotlinc}"
    local kdir
    kdir="$(dirname "$(readlink -f "$(command -v "$KOTLINC")")")"
    if [ -z "${KOTLIN_STDLIB:-}" ]; then
        for f in /usr/share/java/kotlin-stdlib.jar "$kdir/../lib/kotlin-stdlib.jar"; do
            if [ -f "$f" ]; then KOTLIN_STDLIB="$f"; break; fi
        done
    fi
    JUNIT_JAR="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
    HAMCREST_JAR="${HAMCREST_JAR:-/usr/share/java/hamcrest-core.jar}"
    for f in "${KOTLIN_STDLIB:-}" "$JUNIT_JAR" "$HAMCREST_JAR"; do
        if [ ! -f "$f" ]; then echo "missing jar: '$f' (set KOTLIN_STDLIB / JUNIT_JAR / HAMCREST_JAR)" >&2; return 1; fi
    done
    JUNIT_CP="$JUNIT_JAR:$HAMCREST_JAR"
}

# _bbe_compile NAME CLASSPATH DEPSTAMP SRCDIR: compiles SRCDIR into $BUILD_DIR/NAME unless its stamp matches.
_bbe_compile() {
    local name="$1" cp="$2" dep="$3" src="$4" out="$BUILD_DIR/$1" stamp
    stamp="$(
        {
            echo "compiler $(readlink -f "$(command -v "$KOTLINC")") cp $cp dep $dep"
            (cd "$src" && find . -name '*.kt' -type f | LC_ALL=C sort | while IFS= read -r f; do
                echo "$f $(sha256sum < "$f" | cut -d' ' -f1)"
            done)
        } | sha256sum | cut -d' ' -f1
    )"
    if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ]; then
        echo "$stamp"
        return 0
    fi
    echo "compiling $name ($src)..." >&2
    local tmp
    tmp="$(mktemp -d "$BUILD_DIR/.tmp-$name.XXXXXX")"
    local args=() sources=()
    [ -n "$cp" ] && args=(-cp "$cp")
    mapfile -t sources < <(find "$src" -name '*.kt' -type f | LC_ALL=C sort)
    # kotlinc's launcher passes -noverify, which JDK 13+ warns about: drop that one line.
    if ! "$KOTLINC" -nowarn "${args[@]}" -d "$tmp" "${sources[@]}" \
        >&2 2> >(grep -v 'Options -Xverify:none and -noverify were deprecated' >&2); then
        rm -rf "$tmp"
        echo "kotlinc failed for $name" >&2
        return 1
    fi
    echo "$stamp" > "$tmp/.stamp"
    rm -rf "$out"
    mv "$tmp" "$out"
    echo "$stamp"
}

# Builds main (+ test and/or bench as asked: bbe_kotlin_build test bench).
bbe_kotlin_build() {
    bbe_ensure_toolchain || return 1
    mkdir -p "$BUILD_DIR"
    (
        # One build at a time in this build directory (test.sh and bench.sh may run concurrently).
        if command -v flock >/dev/null 2>&1; then flock 9; fi
        local main_stamp
        main_stamp="$(_bbe_compile main "" "" "$GROUPER_DIR/src/main/kotlin")" || exit 1
        for set in "$@"; do
            case "$set" in
                test) _bbe_compile test "$BUILD_DIR/main:$JUNIT_CP" "$main_stamp" "$GROUPER_DIR/src/test/kotlin" >/dev/null || exit 1 ;;
                bench) _bbe_compile bench "$BUILD_DIR/main" "$main_stamp" "$GROUPER_DIR/src/bench/kotlin" >/dev/null || exit 1 ;;
                *) echo "unknown source set $set" >&2; exit 1 ;;
            esac
        done
    ) 9>"$BUILD_DIR/.lock" || return 1
    MAIN_CLASSES="$BUILD_DIR/main"
    TEST_CLASSES="$BUILD_DIR/test"
    BENCH_CLASSES="$BUILD_DIR/bench"
}
