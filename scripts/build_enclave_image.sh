#!/usr/bin/env bash
# Builds the enclave image, bit for bit reproducibly (docs/deploy-eks.md).
#
#   scripts/build_enclave_image.sh [--no-eif]
#
# Output (in $ENCLAVE_BUILD_DIR, default build-enclave/):
#   out/rootfs.tar                 the root filesystem (enclave/Dockerfile ADDs it)
#   out/enclave-initramfs.cpio.gz  the same tree as a newc initramfs
#   out/manifest.txt               every file, its SHA-256 and the Debian package
#   out/enclave-signer.eif         when docker and nitro-cli are present,
#   out/measurements.json          with its PCR0/1/2
#
# The root filesystem holds only: /init (enclave/init.c, static), signerd,
# the eth plugin, the shared libraries they load (found with ldd; their
# Debian packages listed by dpkg -S), the CA bundle and
# /etc/enclave-signer/enclave.conf.  No shell, no package manager.
#
# Reproducible: every timestamp is SOURCE_DATE_EPOCH (default: the last
# commit's time), entries are sorted, owners are 0:0, gzip stores no name or
# time, the build path is mapped to "." in every object
# (-ffile-prefix-map), no build ids, binaries stripped.  Two builds of one
# commit on one Debian release give identical bytes
# (tests/enclave/reproducible.sh checks it).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
want_eif=1
case "${1:-}" in
    "") ;;
    --no-eif) want_eif=0 ;;
    *) echo "usage: $0 [--no-eif]   (environment: SOURCE_DATE_EPOCH, ENCLAVE_BUILD_DIR)" >&2; exit 2 ;;
esac

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$src" log -1 --format=%ct 2>/dev/null) || {
        echo "$0: not a git checkout: set SOURCE_DATE_EPOCH" >&2; exit 1; }
fi
export SOURCE_DATE_EPOCH LC_ALL=C TZ=UTC
bdir=${ENCLAVE_BUILD_DIR:-$src/build-enclave}
mkdir -p "$bdir"
bdir=$(cd "$bdir" && pwd)
obj=$bdir/obj root=$bdir/rootfs out=$bdir/out
for tool in gcc strip cpio gzip tar ldd sha384sum; do
    command -v "$tool" >/dev/null || { echo "$0: needs $tool" >&2; exit 1; }
done

# 1. signerd and the plugins, with no trace of the build path.
map="-ffile-prefix-map=$src=. -ffile-prefix-map=$obj=."
BUILD_DIR=$obj \
CFLAGS="-O2 -g0 $map -fstack-protector-strong -D_FORTIFY_SOURCE=2" \
LDFLAGS="-Wl,--build-id=none -Wl,-z,relro,-z,now" \
CONFIGURE_FLAGS="--prefix=/usr --sysconfdir=/etc --disable-dependency-tracking" \
    ./scripts/build.sh

# 2. The static init.
rm -rf "$root" "$out"
mkdir -p "$root" "$out"
gcc -static -O2 -g0 $map -Wall -Wextra -Werror -Wl,--build-id=none \
    -o "$obj/init" enclave/init.c
strip --strip-all "$obj/init"

# 3. The tree.
for d in dev proc tmp etc/enclave-signer etc/ssl/certs usr/bin \
         usr/lib/enclave-signer var/lib/enclave-signer; do
    mkdir -p "$root/$d"
done
install -m 0755 "$obj/init" "$root/init"
install -m 0755 "$obj/signerd" "$root/usr/bin/signerd"
strip --strip-all "$root/usr/bin/signerd"
install -m 0644 "$obj/plugins/.libs/eth.so" "$root/usr/lib/enclave-signer/eth.so"
strip --strip-unneeded "$root/usr/lib/enclave-signer/eth.so"
install -m 0644 enclave/enclave.conf "$root/etc/enclave-signer/enclave.conf"
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"

# Shared libraries, at the paths the dynamic loader looks for them.
libs=$( { ldd "$root/usr/bin/signerd"; ldd "$root/usr/lib/enclave-signer/eth.so"; } |
        awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' | sort -u)
for l in $libs; do
    mkdir -p "$root$(dirname "$l")"
    cp -L "$l" "$root$l"
    chmod 0644 "$root$l"
done
chmod 0755 "$root"/lib64/ld-linux-*.so.* 2>/dev/null || true

# 4. Manifest: file, SHA-256, Debian package that ships it (or "project").
pkg_of() { # $1 = path; merged /usr: try the path and its /usr twin
    local p
    for p in "$1" "/usr$1" "${1#/usr}"; do
        dpkg -S "$p" 2>/dev/null | head -1 | cut -d: -f1 && return 0
    done
    echo project
}
( cd "$root"
  find . -type f | sort | while read -r f; do
      p=project
      case "$f" in
          ./lib*) p=$(pkg_of "${f#.}") ;;
          ./etc/ssl/*) p=ca-certificates ;;   # made by update-ca-certificates
      esac
      v=$( [ "$p" = project ] && git -C "$src" rev-parse HEAD 2>/dev/null ||
           dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo "?")
      printf '%s %s %s=%s\n' "$(sha256sum "$f" | cut -d' ' -f1)" "${f#.}" "$p" "$v"
  done ) >"$out/manifest.txt"

# 5. Fixed modes and times, sorted archives.
find "$root" -type d -exec chmod 0755 {} +
chmod 0700 "$root/var/lib/enclave-signer"
chmod 1777 "$root/tmp"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
( cd "$root" && find . -mindepth 1 | sort |
  cpio -o -H newc --reproducible -R 0:0 --quiet ) | gzip -9 -n >"$out/enclave-initramfs.cpio.gz"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    --format=gnu -C "$root" -cf "$out/rootfs.tar" .
cp enclave/Dockerfile "$out/Dockerfile"

echo "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"
echo "initramfs: $out/enclave-initramfs.cpio.gz"
echo "initramfs SHA-384: $(sha384sum "$out/enclave-initramfs.cpio.gz" | cut -d' ' -f1)"
echo "rootfs.tar SHA-384: $(sha384sum "$out/rootfs.tar" | cut -d' ' -f1)"

# 6. The EIF, where the Nitro tooling is installed.
if [ "$want_eif" = 1 ] && command -v nitro-cli >/dev/null && command -v docker >/dev/null \
   && docker info >/dev/null 2>&1; then
    tag="enclave-signer:$(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null || echo local)"
    docker build -q -t "$tag" "$out" >/dev/null
    nitro-cli build-enclave --docker-uri "$tag" \
        --output-file "$out/enclave-signer.eif" >"$out/measurements.json"
    for pcr in PCR0 PCR1 PCR2; do
        echo "$pcr: $(jq -r ".Measurements.$pcr" "$out/measurements.json")"
    done
else
    echo "nitro-cli/docker not available: no EIF built (PCR0 comes from nitro-cli build-enclave)"
fi
