# Shared by the Node suites' run.sh (sourced, not run): finds the trees and
# node, runs one test script under a time limit and adds its "NAME: N passed,
# M failed" line to the totals.  A crash or time-out counts as a failure even
# if no check failed.
#   suite_init PREFIX              resets passed, failed, status
#   suite_paths SRCDIR             exports SIGNER_SRCDIR (default SRCDIR) and
#                                  SIGNER_BUILDDIR (default SIGNER_SRCDIR)
#   suite_need_node                exits 77 (skip) without node, 1 (after the
#                                  totals line) when it is older than 18
#   suite_workdir DIR NAME         sets workdir: DIR, or a copy of the suite
#                                  in the build tree when DIR is read-only
#   suite_run NAME FILE LIMIT      runs node FILE within LIMIT seconds
#   suite_finish                   prints the totals; returns status

suite_init() {
    suite_prefix=$1
    passed=0
    failed=0
    status=0
}

suite_paths() {
    SIGNER_SRCDIR=${SIGNER_SRCDIR:-$(cd "$1" && pwd)}
    SIGNER_BUILDDIR=${SIGNER_BUILDDIR:-$SIGNER_SRCDIR}
    export SIGNER_SRCDIR SIGNER_BUILDDIR
}

suite_need_node() {
    local major
    if ! command -v node >/dev/null 2>&1; then
        echo "$suite_prefix: node not found; skipping (install nodejs >= 20 and npm)"
        exit 77
    fi
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if [ "$major" -lt 18 ] 2>/dev/null; then
        echo "$suite_prefix: node $(node --version) is too old (need >= 18; tested with 20)"
        echo "$suite_prefix: 0 passed, 1 failed"
        exit 1
    fi
}

# The suite's scripts import ../lib/*.mjs: a copy in the build tree gets
# tests/lib too.
suite_workdir() {
    local dir=$1 name=$2 f
    workdir=$dir
    [ -w "$dir" ] && return 0
    workdir=$SIGNER_BUILDDIR/tests/$name
    mkdir -p "$workdir" "$SIGNER_BUILDDIR/tests/lib" || return 1
    for f in "$dir"/package.json "$dir"/package-lock.json "$dir"/*.mjs "$dir"/*.py; do
        [ -e "$f" ] || continue
        cp -f "$f" "$workdir/" || return 1
    done
    cp -f "$SIGNER_SRCDIR"/tests/lib/*.mjs "$SIGNER_BUILDDIR/tests/lib/"
}

suite_run() {
    local t=$1 file=$2 limit=$3 log rc line p f
    echo "$suite_prefix: running $t"
    log=$(mktemp "${TMPDIR:-/tmp}/$suite_prefix-$t.XXXXXX") || return 1
    # Each script kills its own children by PID on any exit; --kill-after:
    # one that ignores SIGTERM is killed 10 s later.
    timeout --kill-after=10 "$limit" node "$file" > "$log" 2>&1
    rc=$?
    cat "$log"
    line=$(grep -E "^$t: [0-9]+ passed, [0-9]+ failed\$" "$log" | tail -n 1)
    rm -f "$log"
    p=0
    f=0
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/^[^:]*: ([0-9]+) passed, ([0-9]+) failed$/\1/')
        f=$(echo "$line" | sed -E 's/^[^:]*: ([0-9]+) passed, ([0-9]+) failed$/\2/')
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ]; then
        status=1
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "$suite_prefix: $t timed out after ${limit}s"
        else
            echo "$suite_prefix: $t exited with status $rc"
        fi
        if [ -z "$line" ] || [ "$f" -eq 0 ]; then
            failed=$((failed + 1))
        fi
    fi
}

suite_finish() {
    if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
        echo "$suite_prefix: no test ran"
        failed=1
        status=1
    fi
    echo "$suite_prefix: $passed passed, $failed failed"
    return "$status"
}

# suite_npm_ci DIR: installs DIR's pinned npm packages with `npm ci` when
# node_modules is missing or was installed from another package-lock.json.
# Returns non-zero (after saying why) when that fails.
suite_npm_ci() {
    local dir=$1 sum stamp
    sum=$(cksum < "$dir/package-lock.json" | tr -d ' \t')
    stamp=$dir/node_modules/.lock-cksum
    if [ -f "$stamp" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "$suite_prefix: npm not found and $dir/node_modules is missing or stale"
        return 1
    fi
    echo "$suite_prefix: npm ci in $dir"
    if ! timeout 300 npm ci --prefix "$dir" --no-audit --no-fund --prefer-offline \
            --ignore-scripts --loglevel=error; then
        echo "$suite_prefix: npm ci failed (offline without a populated npm cache?)"
        return 1
    fi
    echo "$sum" > "$stamp"
}
