#!/bin/sh
# The systemd units of contrib/systemd, rendered with this build's signerd:
#  - `systemd-analyze verify` prints nothing and succeeds (unknown keys, bad
#    values, missing programs and dependencies all print);
#  - `systemd-analyze security --offline=yes`: overall exposure <= 3.0 for
#    every signerd unit, <= 3.0 for the enclave launcher too (nitro-cli is not
#    on CI machines: /bin/true stands in for it, so only the unit is judged).
# A stub nitro-enclaves-allocator.service (from aws-nitro-enclaves-cli on a
# real instance) satisfies the enclave unit's dependency.  Exit 77 without
# systemd-analyze.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${SIGNER_SRCDIR:-$(cd "$here/../.." && pwd)}
build=${SIGNER_BUILDDIR:-$src/build}
command -v systemd-analyze >/dev/null 2>&1 || { echo "systemd: systemd-analyze not found; skipping"; exit 77; }
[ -x "$build/signerd" ] || { echo "systemd: $build/signerd not built"; echo "systemd: 0 passed, 1 failed"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
ko() { failed=$((failed + 1)); echo "FAIL $*"; }

for t in "$src"/contrib/systemd/*.service.in; do
    u=$(basename "$t" .in)
    sh "$src/contrib/systemd/render.sh" "$t" "$tmp/$u" "$build" /etc \
        /usr/share/enclave-signer /usr/share/doc/enclave-signer /bin/true
done
cp "$src"/contrib/systemd/*.target "$tmp/"
printf '[Unit]\nDescription=stub of aws-nitro-enclaves-cli allocator\n[Service]\nType=oneshot\nExecStart=/bin/true\n' \
    >"$tmp/nitro-enclaves-allocator.service"
units=$(cd "$tmp" && ls enclave-signer*.service enclave-signer*.target)
[ -n "$units" ] || ko "no units rendered"

out=$(cd "$tmp" && systemd-analyze verify --man=no $(for u in $units; do printf './%s ' "$u"; done) 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ]; then ok "systemd-analyze verify: $(echo $units)"; else ko "systemd-analyze verify (rc $rc): $out"; fi

for u in $units; do
    case "$u" in *.target) continue ;; esac
    line=$(systemd-analyze security --offline=yes "$tmp/$u" 2>&1 | grep 'Overall exposure level')
    level=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9.]*\) .*/\1/p')
    if [ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 3.0) }'; then
        ok "$u exposure $level <= 3.0"
    else
        ko "$u exposure ${level:-unknown} > 3.0: $line"
    fi
    grep -q '^MemoryDenyWriteExecute=yes' "$tmp/$u" && grep -q '^ProtectSystem=strict' "$tmp/$u" &&
        grep -q '^NoNewPrivileges=yes' "$tmp/$u" && grep -q '^CapabilityBoundingSet=$' "$tmp/$u" &&
        grep -q '^SystemCallFilter=@system-service' "$tmp/$u" && grep -q '^LockPersonality=yes' "$tmp/$u" \
        && ok "$u: the required hardening options" || ko "$u lacks a required hardening option"
done
# The verifier must catch a broken unit (a typo and a missing program).
printf '[Service]\nExecStart=/nonexistent/signerd\nProtectSystm=strict\n' >"$tmp/broken.service"
if (cd "$tmp" && systemd-analyze verify --man=no ./broken.service >/dev/null 2>&1); then
    ko "systemd-analyze verify accepted a broken unit"
else
    ok "systemd-analyze verify rejects a broken unit"
fi
echo "systemd: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
