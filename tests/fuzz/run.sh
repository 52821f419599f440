#!/bin/sh
# Builds the libFuzzer targets of tests/fuzz with clang
# (-fsanitize=fuzzer,address,undefined; the engine and eth plugin sources
# compiled with -fsanitize=fuzzer-no-link,address,undefined, and an
# instrumented eth.so for fuzz_dispatch), then runs each target for a
# bounded time on a temporary copy of its seed corpus (plus the saved crash
# inputs) and fails if any target crashes, leaks or times out.
#
# `make fuzz` runs this script; it is not part of `make check` (the
# corpora and crash inputs are replayed there by tests/fuzz/regress).
#
# Environment:
#   FUZZ_SECONDS      seconds per target (default 30)
#   FUZZ_TARGETS      targets to run (default "dispatch tx frame http config")
#   FUZZ_ARTIFACTS    where crash/leak/timeout inputs are written
#                     (default $BUILDDIR/fuzz-artifacts or $TMPDIR/...)
#   FUZZ_KEEP_CORPUS  if set, a directory that receives each grown corpus
#   FUZZ_FLAGS        extra libFuzzer flags (e.g. -jobs=2 -workers=2)
#   FUZZ_WORK         build and work directory, kept afterwards (default: a
#                     temporary directory, removed)
#   FUZZ_CC           the compiler (default clang; must support libFuzzer)
#   BUILDDIR          a configured build tree (for config.h), optional;
#                     SIGNER_BUILDDIR is used when it is not set
#   SRCDIR            the source tree (default: SIGNER_SRCDIR, else two
#                     levels above this file)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
SRCDIR=${SRCDIR:-${SIGNER_SRCDIR:-$(cd "$here/../.." && pwd)}}
BUILDDIR=${BUILDDIR:-${SIGNER_BUILDDIR:-}}
CC=${FUZZ_CC:-clang}
SECS=${FUZZ_SECONDS:-30}
TARGETS=${FUZZ_TARGETS:-"dispatch tx frame http config"}
ARTDIR=${FUZZ_ARTIFACTS:-${BUILDDIR:-${TMPDIR:-/tmp}}/fuzz-artifacts}

# The sources: read from the automake fragments, so a new engine or plugin
# file is never left out.
PKGS="libsecp256k1 libcrypto libssl libconfig libcjson libevent
  libevent_pthreads libevent_openssl sqlite3 libcurl libcbor"

command -v "$CC" >/dev/null 2>&1 || {
    echo "run.sh: $CC not found (apt-get install -y clang libclang-rt-14-dev)" >&2
    exit 1
}

from_am() { # file variable: the .c files assigned or appended to it
    awk -v var="$2" '
        $0 ~ "^" var "[ \t]*[+]?=" { on = 1 }
        on { print; if ($0 !~ /\\$/) on = 0 }' "$1" |
        tr ' \t\\' '\n\n\n' | grep '\.c$' | sort -u
}
ENGINE_SRCS=$( (for f in "$SRCDIR"/engine/Makefile.am.include \
                         "$SRCDIR"/engine/*/Makefile.am.include; do
                    from_am "$f" engine_libengine_la_SOURCES
                done
                from_am "$SRCDIR/engine/attest/Makefile.am.include" \
                    engine_attest_libattest_la_SOURCES) | sort -u)
ETH_SRCS=$(from_am "$SRCDIR/plugins/eth/Makefile.am.include" ETH_PLUGIN_SOURCES)
if [ -z "$ENGINE_SRCS" ] || [ -z "$ETH_SRCS" ]; then
    echo "run.sh: no sources found in the Makefile fragments" >&2
    exit 1
fi

if [ -n "${FUZZ_WORK:-}" ]; then
    # kept afterwards: the binaries can then replay an input by hand, e.g.
    # FUZZ_PLUGIN_DIR=$FUZZ_WORK/plugins $FUZZ_WORK/fuzz_tx INPUT
    WORK=$FUZZ_WORK
    rm -rf "$WORK/corpus"
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/signer-fuzz.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT INT TERM
fi
mkdir -p "$WORK/obj" "$WORK/plugins" "$WORK/tmp" "$ARTDIR"

# config.h: the build tree's, or a minimal one
if [ -n "$BUILDDIR" ] && [ -f "$BUILDDIR/config.h" ]; then
    CFGDIR=$BUILDDIR
else
    CFGDIR=$WORK
    printf '#ifndef _GNU_SOURCE\n#define _GNU_SOURCE 1\n#endif\n#define PACKAGE "enclave-signer"\n#define VERSION "0.1.0"\n' \
        > "$WORK/config.h"
fi

SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
CFLAGS="-g -O1 -fno-omit-frame-pointer -fPIC $SAN -fsanitize=fuzzer-no-link
  -I$CFGDIR -I$SRCDIR/include -I$SRCDIR/engine
  -DSIGNER_PLUGIN_DIR=\"/nonexistent\" -DSIGNER_SYSCONF_DIR=\"/nonexistent\"
  $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -ldl -lpthread"

echo "fuzz: building with $CC in $WORK"
cc_obj() { # src obj [extra flags]
    src=$1; obj=$2; shift 2
    # shellcheck disable=SC2086
    $CC $CFLAGS "$@" -c "$SRCDIR/$src" -o "$obj"
}
ENGINE_OBJS=
for s in $ENGINE_SRCS; do
    o="$WORK/obj/$(echo "$s" | tr '/' '_' | sed 's/\.c$/.o/')"
    cc_obj "$s" "$o" &
    ENGINE_OBJS="$ENGINE_OBJS $o"
done
wait
ETH_OBJS=
for s in $ETH_SRCS; do
    o="$WORK/obj/$(echo "$s" | tr '/' '_' | sed 's/\.c$/.o/')"
    cc_obj "$s" "$o" -fvisibility=hidden &
    ETH_OBJS="$ETH_OBJS $o"
done
cc_obj tests/plugins/mock_host.c "$WORK/obj/mock_host.o" &
for t in $TARGETS; do
    cc_obj "tests/fuzz/fuzz_$t.c" "$WORK/obj/fuzz_$t.o" &
done
wait
for o in $ENGINE_OBJS $ETH_OBJS "$WORK/obj/mock_host.o"; do
    [ -f "$o" ] || { echo "run.sh: compiling failed ($o)" >&2; exit 1; }
done

# the plugin as the engine loads it: only signer_plugin_init exported
# shellcheck disable=SC2086
$CC -shared $SAN -fsanitize=fuzzer-no-link $ETH_OBJS \
    $(pkg-config --libs libsecp256k1) -o "$WORK/plugins/eth.so"
chmod 0755 "$WORK/plugins/eth.so"

for t in $TARGETS; do
    [ -f "$WORK/obj/fuzz_$t.o" ] || { echo "run.sh: fuzz_$t.c failed to compile" >&2; exit 1; }
    case $t in
        tx) objs="$ETH_OBJS $WORK/obj/mock_host.o $ENGINE_OBJS" ;; # the mock host runs the real key service
        *) objs="$ENGINE_OBJS" ;;
    esac
    # shellcheck disable=SC2086
    $CC -fsanitize=fuzzer $SAN -rdynamic "$WORK/obj/fuzz_$t.o" $objs $LIBS \
        -o "$WORK/fuzz_$t"
done

failed=
for t in $TARGETS; do
    corpus="$WORK/corpus/$t"
    mkdir -p "$corpus"
    for d in "$SRCDIR/tests/fuzz/corpus/$t" "$SRCDIR/tests/fuzz/crashes/$t"; do
        if [ -d "$d" ]; then
            find "$d" -type f ! -name 'README*' -exec cp {} "$corpus/" \;
        fi
    done
    extra=
    [ "$t" = dispatch ] && extra="-close_fd_mask=3"
    if [ -f "$SRCDIR/tests/fuzz/dict/$t.dict" ]; then
        extra="$extra -dict=$SRCDIR/tests/fuzz/dict/$t.dict"
    fi
    log="$WORK/$t.log"
    echo "fuzz: fuzz_$t for ${SECS}s"
    set +e
    # shellcheck disable=SC2086
    (cd "$WORK" && FUZZ_PLUGIN_DIR="$WORK/plugins" TMPDIR="$WORK/tmp" \
        ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}" \
        UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
        "./fuzz_$t" -max_total_time="$SECS" -rss_limit_mb=2048 \
        -timeout="${FUZZ_TIMEOUT:-25}" -print_final_stats=1 \
        -artifact_prefix="$ARTDIR/$t-" $extra ${FUZZ_FLAGS:-} \
        "$corpus" </dev/null >"$log" 2>&1)
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed 's/ *exec\/s.*//')
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    units=$(find "$corpus" -type f | wc -l)
    echo "fuzz: fuzz_$t: rc=$rc execs=${execs:-?} cov=${cov:-?} ft=${ft:-?} corpus=$units"
    if [ -n "${FUZZ_KEEP_CORPUS:-}" ]; then
        mkdir -p "$FUZZ_KEEP_CORPUS/$t"
        cp "$corpus"/* "$FUZZ_KEEP_CORPUS/$t/" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ]; then
        echo "fuzz: fuzz_$t FAILED; report follows (inputs in $ARTDIR):" >&2
        grep -v -E '^#[0-9]+|^INFO: |^\[libfuzzer\]' "$log" | tail -n 80 >&2
        failed="$failed $t"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: FAILED:$failed -- put each input into tests/fuzz/crashes/<target>/" >&2
    exit 1
fi
rmdir "$ARTDIR" 2>/dev/null || true
echo "fuzz: all targets passed"
