#!/usr/bin/env bash
# The enclave image is reproducible: two clean clones of HEAD, in two
# different directories (different path lengths too), each built by
# scripts/build_enclave_image.sh from scratch (autoreconf, configure, make),
# must give byte-identical rootfs.tar and enclave-initramfs.cpio.gz.  On a
# difference, the per-file SHA-256 manifests are compared to name the file.
#
# Only committed work is built (git clone of HEAD).  Needs git, gcc, cpio.
# ENCLAVE_KEEP_OUT=DIR keeps the first build's out/ there.
set -uo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
head=$(git rev-parse HEAD) || { echo "reproducible: not a git checkout"; echo "reproducible: 0 passed, 1 failed"; exit 1; }
a=$(mktemp -d /tmp/enclave-repro-a.XXXXXX)
b=$(mktemp -d /tmp/enclave-repro-bb.XXXXXXXXXX)
trap 'rm -rf "$a" "$b"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
ko() { failed=$((failed + 1)); echo "FAIL $*"; }

build() { # $1 = directory
    local d=$1/src
    [ "$(basename "$1")" = "${b##*/}" ] && d=$1/some/deeper/checkout
    git clone -q --no-checkout "$src" "$d" && git -C "$d" checkout -q --detach "$head" || return 1
    ( cd "$d" && unset SOURCE_DATE_EPOCH ENCLAVE_BUILD_DIR BUILD_DIR CFLAGS LDFLAGS CONFIGURE_FLAGS &&
      ./scripts/build_enclave_image.sh --no-eif ) >"$1/build.log" 2>&1 || { tail -40 "$1/build.log"; return 1; }
    echo "$d/build-enclave/out"
}

start=$(date +%s)
oa=$(build "$a" | tail -1) || { ko "first build"; }
ob=$(build "$b" | tail -1) || { ko "second build"; }
if [ "$failed" -eq 0 ]; then
    for f in rootfs.tar enclave-initramfs.cpio.gz; do
        if cmp -s "$oa/$f" "$ob/$f"; then
            ok "$f identical from $(dirname "$(dirname "$oa")") and $(dirname "$(dirname "$ob")"): $(sha384sum "$oa/$f" | cut -d' ' -f1)"
        else
            ko "$f differs"
            diff "$oa/manifest.txt" "$ob/manifest.txt" | head -20
        fi
    done
    # The build path must not appear in any binary.
    if grep -rl -e "$a" -e "$b" "$(dirname "$oa")/rootfs" "$(dirname "$ob")/rootfs" >/dev/null 2>&1; then
        ko "a build path leaks into the image: $(grep -rl -e "$a" -e "$b" "$(dirname "$oa")/rootfs" "$(dirname "$ob")/rootfs" | head -3)"
    else
        ok "no build path in the image"
    fi
    # Nothing a shell or package manager would need is in it.
    if tar -tf "$oa/rootfs.tar" | grep -Eq '(^|/)(sh|bash|busybox|dash|apt|apt-get|dpkg)$'; then
        ko "a shell or package manager is in the image"
    else
        ok "no shell, no package manager ($(tar -tf "$oa/rootfs.tar" | grep -vc '/$') files)"
    fi
fi
# Keep the first build's output for the boot test (scripts/test.sh deploy).
if [ "$failed" -eq 0 ] && [ -n "${ENCLAVE_KEEP_OUT:-}" ]; then
    rm -rf "$ENCLAVE_KEEP_OUT" && mkdir -p "$ENCLAVE_KEEP_OUT" && cp -a "$oa"/. "$ENCLAVE_KEEP_OUT"/
fi
echo "reproducible: two builds took $(( $(date +%s) - start )) s"
echo "reproducible: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
