#!/usr/bin/env bash
# Boots the enclave image under qemu (software emulation) and signs through
# it: the image's /init, shared libraries and config are proven, not assumed.
#
#   tests/enclave/boot.sh        (after scripts/build_enclave_image.sh, or
#                                 it runs it)
#
# - Kernel: Debian's cloud kernel (linux-image-<abi>-cloud-amd64), fetched
#   with `apt-get download` and unpacked with `dpkg-deb -x` (no
#   initramfs-tools run), cached in $ENCLAVE_BUILD_DIR/kernel/.
# - The image under test is exactly out/enclave-initramfs.cpio.gz; the test
#   appends a second archive with the kernel's virtio network modules
#   (the kernel unpacks both) and passes enclave_signer.qemu_net=1, the
#   flag on which /init loads them and sets 10.0.2.15/24.  A Nitro enclave
#   gets neither.
# - qemu's user networking forwards 127.0.0.1:PORT to the guest's :5000,
#   where the image's signerd serves frames; tests/enclave/frames_check.mjs
#   sends generate_key, set_key, sign_transaction and sign_userop frames and
#   checks the answers with ethers v6.
# - With the flag, /init also adds `--listen frames=0.0.0.0:5000`, so this
#   test reaches signerd over TCP when enclave.conf listens on vsock only.
# - BOOT_ATTESTATION=1 (default: on when enclave.conf says role = "enclave")
#   also sends an `attestation` frame and checks the document carries the nonce.
# - A second boot without the flag (as on Nitro; modules and NIC present)
#   must bring up lo, load nothing, and leave signerd unreachable.
# Bounded: BOOT_TIMEOUT seconds (default 180); qemu is stopped by its PID.
set -uo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
bdir=${ENCLAVE_BUILD_DIR:-$src/build-enclave}
limit=${BOOT_TIMEOUT:-180}
QEMU_PID=
work=$(mktemp -d /tmp/enclave-boot.XXXXXX)
cleanup() {
    if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
        kill "$QEMU_PID" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$QEMU_PID" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$QEMU_PID" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() { echo "enclave-boot: $*"; echo "enclave-boot: 0 passed, 1 failed"; exit 1; }

command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 missing (scripts/deps.sh installs qemu-system-x86)"
command -v node >/dev/null || fail "node missing"
if [ ! -f "$bdir/out/enclave-initramfs.cpio.gz" ]; then
    ./scripts/build_enclave_image.sh --no-eif >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; fail "image build failed"; }
fi
img=$bdir/out/enclave-initramfs.cpio.gz

# The kernel package, once.
kdir=$bdir/kernel
if ! ls "$kdir"/x/boot/vmlinuz-* >/dev/null 2>&1; then
    mkdir -p "$kdir"
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
    if [ -z "$pkg" ]; then
        apt-get update -qq >/dev/null 2>&1
        pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
    fi
    [ -n "$pkg" ] || fail "no linux-image-*-cloud-amd64 package known to apt"
    ( cd "$kdir" && apt-get download "$pkg" >/dev/null 2>&1 ) || fail "apt-get download $pkg failed"
    dpkg-deb -x "$kdir"/"$pkg"_*.deb "$kdir/x" || fail "dpkg-deb -x failed"
    rm -f "$kdir"/*.deb
fi
vmlinuz=$(ls "$kdir"/x/boot/vmlinuz-* | head -1)
moddir=$(ls -d "$kdir"/x/lib/modules/* | head -1)

# The test-only archive: /lib/modules/qemu/<name>.ko.
mkdir -p "$work/mods/lib/modules/qemu"
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
         failover net_failover virtio_net; do
    f=$(find "$moddir/kernel" -name "$m.ko" | head -1)
    [ -n "$f" ] || fail "module $m not in $moddir"
    cp "$f" "$work/mods/lib/modules/qemu/$m.ko"
done
( cd "$work/mods" && find . -mindepth 1 | sort | cpio -o -H newc --reproducible -R 0:0 --quiet ) \
    | gzip -n >"$work/mods.cpio.gz"
cat "$img" "$work/mods.cpio.gz" >"$work/initrd"

# The pinned ethers (tests/deploy/package-lock.json).
tests/deploy/npm_ci.sh || fail "npm ci in tests/deploy failed"

if [ -z "${BOOT_ATTESTATION:-}" ] && grep -Eq '^[[:space:]]*role[[:space:]]*=[[:space:]]*"enclave"' enclave/enclave.conf; then
    export BOOT_ATTESTATION=1
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

boot() { # $1 = extra kernel arguments; $2 = console log
    qemu-system-x86_64 -accel tcg -m 512 -smp 2 -nographic -no-reboot \
        -kernel "$vmlinuz" -initrd "$work/initrd" \
        -append "console=ttyS0 panic=-1 quiet $1" \
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:5000" \
        -device virtio-net-pci,netdev=n0 \
        -serial "file:$2" -monitor none -display none </dev/null >"$work/qemu.out" 2>&1 &
    QEMU_PID=$!
}
stop_qemu() {
    kill "$QEMU_PID" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$QEMU_PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$QEMU_PID" 2>/dev/null
    QEMU_PID=
}

# 1. With the test flag: sign through the image.
start=$(date +%s)
boot enclave_signer.qemu_net=1 "$work/console.log"
NODE_PATH=$src/tests/deploy/node_modules timeout $((limit + 30)) \
    node tests/enclave/frames_check.mjs "$port" "$limit"
rc=$?
echo "enclave-boot: qemu ran $(( $(date +%s) - start )) s; SHA-384 of the image: $(sha384sum "$img" | cut -d' ' -f1)"
if [ $rc -ne 0 ]; then
    echo "==== guest console"; tail -n 60 "$work/console.log"
    echo "==== qemu"; tail -n 20 "$work/qemu.out"
    exit $rc
fi
stop_qemu

# 2. Without the flag (as on Nitro), with the same modules and NIC present:
#    init brings up lo only and signerd starts, unreachable from outside.
boot "" "$work/console2.log"
t=0
until grep -q 'listening on frames' "$work/console2.log" 2>/dev/null || [ $t -ge 600 ]; do sleep 0.2; t=$((t + 1)); done
answered=$(python3 - "$port" <<'PY'
import socket, struct, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
    s.sendall(struct.pack(">I", 2) + b"{}")
    print("yes" if s.recv(4) else "no")
except OSError:
    print("no")
PY
)
if grep -q 'listening on frames' "$work/console2.log" && grep -q 'init: lo up' "$work/console2.log" &&
   ! grep -q 'qemu test network\|/lib/modules' "$work/console2.log" && [ "$answered" = no ]; then
    echo "ok   without enclave_signer.qemu_net=1: lo up, no modules loaded, no network, signerd listening"
    echo "enclave-boot-nonet: 1 passed, 0 failed"
else
    echo "FAIL without the flag (answered from outside: $answered)"; tail -n 30 "$work/console2.log"
    echo "enclave-boot-nonet: 0 passed, 1 failed"
    exit 1
fi
exit 0
