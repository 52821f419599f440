#!/bin/sh
# Renders a unit template: contrib/systemd/render.sh IN OUT BINDIR SYSCONFDIR
# PKGDATADIR DOCDIR NITRO_CLI.  @HARDENING@ becomes hardening.inc (beside
# IN).  Used by `make` (install paths) and tests/deploy/systemd.sh (build
# paths, so systemd-analyze verify finds the programs).
set -eu
in=$1 out=$2
sed -e "s|@bindir@|$3|g" -e "s|@sysconfdir@|$4|g" -e "s|@pkgdatadir@|$5|g" \
    -e "s|@docdir@|$6|g" -e "s|@NITRO_CLI@|$7|g" \
    -e "/@HARDENING@/{r $(dirname "$in")/hardening.inc" -e 'd}' "$in" >"$out.tmp"
mv "$out.tmp" "$out"
