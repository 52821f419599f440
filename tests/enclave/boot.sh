#!/usr/bin/env bash
# Boots the enclave image under qemu (software emulation) and signs through
# it in the enclave role: the image's /init, shared libraries and config are
# proven, not assumed.
#
#   tests/enclave/boot.sh        (after scripts/build_enclave_image.sh, or
#                                 it runs it)
#
# - Kernel: Debian's cloud kernel (linux-image-<abi>-cloud-amd64), fetched
#   with `apt-get download` and unpacked with `dpkg-deb -x` (no
#   initramfs-tools run), cached in $ENCLAVE_BUILD_DIR/kernel/.
# - The image under test is exactly out/enclave-initramfs.cpio.gz (the
#   production image: enclave role, vsock, /dev/nsm).  The test appends a
#   second archive, test-only: the kernel's virtio network modules,
#   /etc/enclave-signer/enclave-test.conf and its files (the emulated NSM's
#   test PKI, the KMS stand-in's test CA); the kernel unpacks both.  It
#   passes enclave_signer.qemu_net=1, the flag on which /init loads the
#   modules, sets 10.0.2.15/24 and runs signerd with enclave-test.conf.
#   A Nitro enclave gets neither.
# - enclave-test.conf: role = "enclave", attestation = "emulated" (PCR0 a
#   random value the stand-in's key policy names), frames on TCP
#   0.0.0.0:5000, aws-kms over tcp:10.0.2.2:PORT, which qemu's user
#   networking maps to the host's 127.0.0.1:PORT where this script runs the
#   KMS stand-in (tests/kms/kms_standin.py: HTTPS, SigV4, attestation and
#   PCR0 policy check); TLS still names kms.us-east-1.amazonaws.com.
# - qemu forwards 127.0.0.1:FPORT to the guest's :5000;
#   tests/enclave/frames_check.mjs sends attestation (verified by
#   tests/integration/enclave/verify_attestation.py), generate_key,
#   set_key, sign_transaction and sign_userop frames (with the stand-in's
#   test credentials) and checks the answers with ethers v6.
# - A second boot without the flag (as on Nitro; modules, test config and
#   NIC present) must bring up lo, load nothing and run signerd with the
#   production config, which refuses to start without /dev/nsm.
# Bounded: BOOT_TIMEOUT seconds (default 180); qemu and the stand-in are
# stopped by their PIDs.
set -uo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
bdir=${ENCLAVE_BUILD_DIR:-$src/build-enclave}
limit=${BOOT_TIMEOUT:-180}
py=${KMS_PYTHON:-/usr/bin/python3}
QEMU_PID= KMS_PID=
work=$(mktemp -d /tmp/enclave-boot.XXXXXX)
stop_pid() { # $1 = PID: TERM, up to 2 s, then KILL
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
    kill "$1" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done
    kill -9 "$1" 2>/dev/null
}
cleanup() {
    stop_pid "$QEMU_PID"
    stop_pid "$KMS_PID"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() { echo "enclave-boot: $*"; echo "enclave-boot: 0 passed, 1 failed"; exit 1; }

command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 missing (scripts/deps.sh installs qemu-system-x86)"
command -v node >/dev/null || fail "node missing"
"$py" -c 'import cryptography, cbor2' 2>/dev/null || fail "$py lacks cryptography or cbor2 (scripts/deps.sh installs them)"
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

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
kport=$(free_port)

# The KMS stand-in on the host's 127.0.0.1 (the guest reaches it as
# 10.0.2.2): test credentials, one key whose policy lets only an image with
# the emulated PCR0 Decrypt, attestation documents checked against the
# emulated NSM's test root.
bash tests/attest/make_test_pki.sh "$work/pki" >"$work/pki.log" 2>&1 || { cat "$work/pki.log"; fail "make_test_pki.sh failed"; }
rnd() { "$py" -c "import secrets; print(secrets.token_hex($1))"; }
pcr0=$(rnd 48)
export BOOT_PCR0=$pcr0 BOOT_PKI_ROOT=$work/pki/root.der BOOT_WORK=$work
export BOOT_AKID=ASIABOOTTEST0000001 BOOT_AWS_SECRET="boot-secret-$(rnd 16)" BOOT_TOKEN="boot-token-$(rnd 24)"
"$py" - "$work/standin.json" <<'PY'
import datetime, json, os, secrets, sys
e = os.environ
exp = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
policy = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Encrypt", "Resource": "*"},
    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"StringEqualsIgnoreCase": {"kms:RecipientAttestation:ImageSha384": e["BOOT_PCR0"]}}}]}
conf = {"region": "us-east-1", "account": "111122223333",
        "credentials": [{"access_key_id": e["BOOT_AKID"], "secret_access_key": e["BOOT_AWS_SECRET"],
                         "session_token": e["BOOT_TOKEN"], "expiration": exp,
                         "principal": "arn:aws:iam::111122223333:role/enclave"}],
        "attestation": {"root": os.path.join(e["BOOT_WORK"], "pki", "root.pem"), "max_age_seconds": 300},
        "keys": [{"key_id": "1111-boot", "aliases": ["alias/enclave-signer"],
                  "key_material_hex": secrets.token_hex(32), "policy": policy}]}
with open(sys.argv[1], "w") as f:
    json.dump(conf, f)
PY
"$py" tests/kms/kms_standin.py --config "$work/standin.json" --tls-dir "$work/tls" \
    --port "$kport" --quiet >"$work/kms.out" 2>&1 &
KMS_PID=$!
for _ in $(seq 1 100); do
    grep -q KMS_STANDIN_READY "$work/kms.out" 2>/dev/null && break
    kill -0 "$KMS_PID" 2>/dev/null || break
    sleep 0.1
done
grep -q KMS_STANDIN_READY "$work/kms.out" || { cat "$work/kms.out"; fail "KMS stand-in did not start"; }

# The test-only archive: /lib/modules/qemu/<name>.ko, enclave-test.conf and
# the files it names under /etc/enclave-signer/test/.
mkdir -p "$work/extra/lib/modules/qemu" "$work/extra/etc/enclave-signer/test"
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
         failover net_failover virtio_net; do
    f=$(find "$moddir/kernel" -name "$m.ko" | head -1)
    [ -n "$f" ] || fail "module $m not in $moddir"
    cp "$f" "$work/extra/lib/modules/qemu/$m.ko"
done
t=$work/extra/etc/enclave-signer/test
cp "$work/pki/leaf.key" "$work/pki/leaf.pem" "$work/pki/cabundle.pem" "$t/"
cp "$work/tls/ca.pem" "$t/kms-ca.pem"
sed -e '/^listen = (/,/^);/c\
listen = ( { address = "0.0.0.0:5000"; protocol = "frames"; } );' \
    -e "s|^    endpoint = .*|    endpoint = \"tcp:10.0.2.2:$kport\";|" \
    -e 's|^    ca_file = .*|    ca_file = "/etc/enclave-signer/test/kms-ca.pem";|' \
    -e 's|^    timeout_ms = .*|    timeout_ms = "30000";|' \
    -e '/^attestation = "nsm";/c\
attestation = "emulated";\
emulated_nsm = {\
    signing_key = "/etc/enclave-signer/test/leaf.key";\
    certificate = "/etc/enclave-signer/test/leaf.pem";\
    cabundle = "/etc/enclave-signer/test/cabundle.pem";\
    pcrs = { pcr0 = "'"$pcr0"'"; };\
};' enclave/enclave.conf >"$work/extra/etc/enclave-signer/enclave-test.conf"
for want in 'role = "enclave"' 'address = "0.0.0.0:5000"' "tcp:10.0.2.2:$kport" 'kms-ca.pem' \
            'attestation = "emulated"' "pcr0 = \"$pcr0\""; do
    grep -qF "$want" "$work/extra/etc/enclave-signer/enclave-test.conf" || fail "enclave-test.conf lacks $want"
done
( cd "$work/extra" && find . -mindepth 1 | sort | cpio -o -H newc --reproducible -R 0:0 --quiet ) \
    | gzip -n >"$work/extra.cpio.gz"
cat "$img" "$work/extra.cpio.gz" >"$work/initrd"

# The pinned ethers (tests/deploy/package-lock.json).
tests/deploy/npm_ci.sh || fail "npm ci in tests/deploy failed"


boot() { # $1 = extra kernel arguments; $2 = console log
    qemu-system-x86_64 -accel tcg -m 512 -smp 2 -nographic -no-reboot \
        -kernel "$vmlinuz" -initrd "$work/initrd" \
        -append "console=ttyS0 panic=-1 quiet $1" \
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:5000" \
        -device virtio-net-pci,netdev=n0 \
        -serial "file:$2" -monitor none -display none </dev/null >"$work/qemu.out" 2>&1 &
    QEMU_PID=$!
}
stop_qemu() { stop_pid "$QEMU_PID"; QEMU_PID=; }

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
    echo "==== KMS stand-in"; tail -n 20 "$work/kms.out"
    exit $rc
fi
stop_qemu

# 2. Without the flag (as on Nitro), with the same modules, test config and
#    NIC present: init brings up lo only and runs signerd with the
#    production config, which needs /dev/nsm; qemu has none, so signerd must
#    refuse to start, naming the device (the test config, which would have
#    started, is not used), and the kernel panics (panic=-1, -no-reboot:
#    qemu exits).
boot "" "$work/console2.log"
t=0
while kill -0 "$QEMU_PID" 2>/dev/null && [ $t -lt 600 ]; do sleep 0.2; t=$((t + 1)); done
stop_qemu
c2=$work/console2.log
if grep -q 'init: lo up' "$c2" && ! grep -q 'qemu test network\|/lib/modules' "$c2" &&
   grep -q '"level":"error".*NSM device /dev/nsm' "$c2" && ! grep -q ' ready: role' "$c2"; then
    echo "ok   without enclave_signer.qemu_net=1: lo up, no modules, the production config (no /dev/nsm here: signerd refuses to start)"
    echo "enclave-boot-nonet: 1 passed, 0 failed"
else
    echo "FAIL without the flag"; grep -v '^\[' "$c2" | tail -n 30
    echo "enclave-boot-nonet: 0 passed, 1 failed"
    exit 1
fi
exit 0
