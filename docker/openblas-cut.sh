#!/bin/bash
# docker/openblas-cut.sh OUT BIN...: builds OUT, a libopenblas.so.0 that
# exports only the OpenBLAS functions the programs BIN... call (today
# cblas_sgemm, cblas_dgemm, openblas_set_num_threads), linked from Debian's
# own static libopenblas.a (libopenblas-dev, the same build as the shared
# library: DYNAMIC_ARCH, every x86-64 kernel, picked at load time for the
# CPU it runs on, so no speed is lost on any machine). Left out: LAPACK,
# the Fortran interface and libgfortran, and every BLAS routine nginfer does
# not call: Debian's libopenblas.so.0 is 36.5 MB plus 3.2 MB of libgfortran
# and libquadmath, this one about 25 MB (the kernels of the routines it
# keeps, for each of about 20 CPU families).
# Also exported, for diagnostics: openblas_get_config, openblas_get_corename,
# openblas_get_num_threads. Fails when a BIN calls an OpenBLAS function the
# result would not have, or the archive is missing.
set -euo pipefail

out=${1:?usage: docker/openblas-cut.sh OUT BIN...}
shift
[ $# -gt 0 ] || { echo "usage: docker/openblas-cut.sh OUT BIN..." >&2; exit 2; }
die() { echo "openblas-cut: $*" >&2; exit 1; }

# The archive and the shared library the alternatives system points at now
# (openblas-pthread, or -openmp/-serial if that is the one installed).
so=$(readlink -f /usr/lib/x86_64-linux-gnu/libopenblas.so.0 2>/dev/null) || so=''
[ -f "$so" ] || so=$(readlink -f "$(gcc -print-file-name=libopenblas.so.0)")
[ -f "$so" ] || die "no libopenblas.so.0 (apt-get install libopenblas0-pthread)"
archive=$(dirname "$so")/libopenblas.a
[ -f "$archive" ] || archive=$(readlink -f "$(gcc -print-file-name=libopenblas.a)")
[ -f "$archive" ] || die "no libopenblas.a beside $so (apt-get install libopenblas-dev)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$so" | awk '{ print $NF }' | sed 's/@.*//' | sort -u >"$tmp/has"
# What the BINs call: their undefined symbols, and the names they look up
# with dlsym (the core opens OpenBLAS with dlopen: the names are strings
# in the binary, not imports).
{
    nm -D --undefined-only "$@" | awk 'NF >= 2 { print $NF }' | sed 's/@.*//'
    strings -a "$@" | grep -xE '(cblas|openblas)_[a-z0-9_]+' || true
} | sort -u >"$tmp/want"
comm -12 "$tmp/has" "$tmp/want" >"$tmp/keep"
[ -s "$tmp/keep" ] || die "$*: call no OpenBLAS function (nothing to build)"
printf '%s\n' openblas_get_config openblas_get_corename openblas_get_num_threads >>"$tmp/keep"
sort -u -o "$tmp/keep" "$tmp/keep"

{
    echo '{ global:'
    sed 's/.*/    &;/' "$tmp/keep"
    echo '  local: *; };'
} >"$tmp/exports.map"
undef=()
while read -r s; do undef+=("-Wl,-u,$s"); done <"$tmp/keep"
gcc -shared -o "$out" -Wl,-soname,libopenblas.so.0 -Wl,--version-script="$tmp/exports.map" \
    -Wl,--gc-sections -Wl,--as-needed "${undef[@]}" "$archive" -lm -pthread
strip --strip-unneeded "$out"

nm -D --defined-only "$out" | awk '{ print $NF }' | sed 's/@.*//' | sort -u >"$tmp/got"
missing=$(comm -23 "$tmp/keep" "$tmp/got" | tr '\n' ' ')
[ -z "$missing" ] || die "$out lacks $missing"
if ldd "$out" | grep -q 'libgfortran\|not found'; then
    die "$out needs: $(ldd "$out" | grep 'libgfortran\|not found' | tr '\n' ' ')"
fi
echo "openblas-cut: $out: $(($(stat -c %s "$out") / 1000)) kB (from $archive; $(stat -Lc %s "$so" | awk '{ printf "%.1f MB", $1 / 1e6 }') for Debian's), exports: $(tr '\n' ' ' <"$tmp/keep")"
