# Shared by the Node suites' run.sh (sourced, not run): runs one test script
# under a time limit and adds its "NAME: N passed, M failed" line to the
# totals.  A crash or time-out counts as a failure even if no check failed.
#   suite_init PREFIX              resets passed, failed, status
#   suite_run NAME FILE LIMIT      runs node FILE within LIMIT seconds
#   suite_finish                   prints the totals; returns status

suite_init() {
    suite_prefix=$1
    passed=0
    failed=0
    status=0
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
