#!/bin/bash
# docker/mkroot.sh [--lib SONAME=FILE] [--pkg PKG] ROOT FILE...: makes the
# image's root filesystem in ROOT out of this (Debian) system's own files:
# each FILE (a path, or a program name looked up in PATH and the sbin
# directories) is copied to the same path in ROOT, and with it every shared
# library ldd says it loads and the program interpreter, so ROOT needs no
# package manager and holds nothing else. docker/Dockerfile runs it in its
# build stage and copies ROOT into an empty image (FROM scratch).
#
#   --lib SONAME=FILE  FILE goes where the library SONAME would (used for
#                      the OpenBLAS cut down to what nginfer calls); when
#                      no FILE links SONAME (nginfer opens OpenBLAS with
#                      dlopen), into libc.so.6's directory, where the
#                      loader looks, with the libraries it loads
#   --pkg PKG          record PKG too (the package FILE was made from)
#
# Also, for what reads the image afterwards:
#   ROOT/bin, sbin, lib, lib64    links into usr/ (merged /usr, as Debian 12)
#   ROOT/var/lib/dpkg/status.d/   the dpkg record of each package a copied
#                                 file came from (as distroless images do:
#                                 vulnerability scanners read it)
#   ROOT/usr/share/doc/PKG/copyright  the licence of each of those packages
#   ROOT/etc/os-release           Debian's
# A file whose package dpkg cannot name is listed on stderr, not an error.
# Fails (exit 1) on a FILE that does not exist or a library ldd cannot find.
# Prints the package list and ROOT's size at the end.
set -euo pipefail

usage() { echo "usage: docker/mkroot.sh [--lib SONAME=FILE] [--pkg PKG] ROOT FILE..." >&2; exit 2; }
die() { echo "mkroot: $*" >&2; exit 1; }
declare -A lib_file=() # SONAME -> the file to use instead
declare -A pkgs=()     # packages to record -> 1
while [ $# -gt 0 ]; do
    case $1 in
    --lib)
        { [ $# -ge 2 ] && [[ $2 == ?*=?* ]]; } || usage
        [ -f "${2#*=}" ] || die "--lib $2: no such file"
        lib_file[${2%%=*}]=$(readlink -f -- "${2#*=}")
        shift 2
        ;;
    --pkg)
        [ $# -ge 2 ] || usage
        dpkg-query -s "$2" >/dev/null 2>&1 || die "--pkg $2: not an installed package"
        pkgs[$2]=1
        shift 2
        ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
    esac
done
[ $# -ge 2 ] || usage
root=$1
shift
case $root in /*) ;; *) root=$PWD/$root ;; esac

mkdir -p "$root"/usr/bin "$root"/usr/sbin "$root"/usr/lib "$root"/usr/lib64 "$root"/etc
for d in bin sbin lib lib64; do
    [ -L "$root/$d" ] || ln -s "usr/$d" "$root/$d"
done

declare -A copied=()   # path as asked for -> 1
declare -A real=()     # resolved path of each copied file -> 1
declare -A replaced=() # --lib SONAME placed -> 1

# ldd looks in $ovr first: each --lib SONAME is a link there to its file,
# so the libraries listed are those of the replacement, not the original's.
ovr=$(mktemp -d)
trap 'rm -rf "$ovr"' EXIT
for lib in "${!lib_file[@]}"; do ln -s "${lib_file[$lib]}" "$ovr/$lib"; done

# copy_one PATH: PATH's file at its resolved path in ROOT, and PATH itself
# (its directories resolved) as a relative symbolic link to it when the
# two differ (libc.so.6 via /lib, libopenblas.so.0 via /etc/alternatives).
copy_one() {
    local p=$1 rp lp
    [ -z "${copied[$p]:-}" ] || return 0
    copied[$p]=1
    rp=$(readlink -f -- "$p") || die "$p: cannot resolve"
    [ -f "$rp" ] || die "$p: not a file"
    if [ -z "${real[$rp]:-}" ]; then
        mkdir -p "$root${rp%/*}"
        cp -p -- "$rp" "$root$rp"
        real[$rp]=1
    fi
    lp=$(readlink -f -- "${p%/*}")/${p##*/}
    if [ "$lp" != "$rp" ] && [ ! -e "$root$lp" ] && [ ! -L "$root$lp" ]; then
        mkdir -p "$root${lp%/*}"
        ln -s "$(realpath -s -m --relative-to="${lp%/*}" "$rp")" "$root$lp"
    fi
}

is_elf() { [ "$(head -c 4 -- "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; }

# copy_with_libs PATH: PATH, and when it is an ELF file everything ldd
# lists for it (ldd's list is already transitive). A --lib SONAME goes into
# the directory libc.so.6 is in.
copy_with_libs() {
    local p=$1 out lib libdir
    copy_one "$p"
    is_elf "$p" || return 0
    out=$(LC_ALL=C LD_LIBRARY_PATH=$ovr ldd -- "$p" 2>&1) || {
        case $out in *'not a dynamic executable'*) return 0 ;; esac
        die "ldd $p failed: $out"
    }
    if grep -q 'not found' <<<"$out"; then
        die "$p: libraries not found: $(grep 'not found' <<<"$out" | tr '\n' ' ')"
    fi
    libdir=$(awk '$1 == "libc.so.6" && $2 == "=>" { print $3 }' <<<"$out")
    [ -n "$libdir" ] && libdir=$(readlink -f -- "$libdir") && libdir=${libdir%/*}
    [ -z "$libdir" ] || libc_dir=$libdir
    # "libx.so.1 => /lib/.../libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
    while read -r lib; do
        [ -n "$lib" ] || continue
        if [ "${lib#"$ovr"/}" != "$lib" ]; then
            [ -n "$libdir" ] || die "$p: loads ${lib#"$ovr"/} but not libc.so.6: where does it go?"
            [ -n "${replaced[${lib#"$ovr"/}]:-}" ] && continue
            mkdir -p "$root$libdir"
            cp -- "$(readlink -f -- "$lib")" "$root$libdir/${lib#"$ovr"/}"
            chmod 0644 "$root$libdir/${lib#"$ovr"/}"
            replaced[${lib#"$ovr"/}]=1
        else
            copy_one "$lib"
        fi
    done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out")
}

libc_dir=''
for f in "$@"; do
    case $f in
    /*) p=$f ;;
    # type -P: the file, also for names bash has as builtins (test, kill, echo)
    *) p=$(PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin type -P -- "$f") || die "$f: not found in PATH" ;;
    esac
    [ -e "$p" ] || die "$p: no such file"
    copy_with_libs "$p"
done
# A --lib no program links: opened with dlopen at run time (OpenBLAS by
# the core), so it goes where the loader searches, with what it loads.
for lib in "${!lib_file[@]}"; do
    [ -z "${replaced[$lib]:-}" ] || continue
    [ -n "$libc_dir" ] || die "--lib $lib: no copied program loads libc.so.6: where does $lib go?"
    mkdir -p "$root$libc_dir"
    cp -- "${lib_file[$lib]}" "$root$libc_dir/$lib"
    chmod 0644 "$root$libc_dir/$lib"
    replaced[$lib]=1
    out=$(LC_ALL=C ldd -- "${lib_file[$lib]}" 2>&1) || die "ldd ${lib_file[$lib]} failed: $out"
    if grep -q 'not found' <<<"$out"; then
        die "--lib $lib: libraries not found: $(grep 'not found' <<<"$out" | tr '\n' ' ')"
    fi
    while read -r l; do
        [ -n "$l" ] && copy_one "$l"
    done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out")
done

# --- package records --------------------------------------------------------------

# dpkg knows a file by the path its package ships (often /lib/... in
# Debian 12, where it lives in /usr/lib/...): ask for the asked-for path,
# the resolved one and the resolved one without /usr, all in one call
# (each call reads every package's file list).
declare -A owner=()
qs=()
for p in "${!copied[@]}"; do
    rp=$(readlink -f -- "$p")
    qs+=("$p" "$rp" "${rp#/usr}")
done
while IFS= read -r line; do
    case $line in diversion*) continue ;; esac
    owner[${line#*: }]=${line%%[:,]*}
done < <(dpkg-query -S -- "${qs[@]}" 2>/dev/null)
unowned=()
for p in "${!copied[@]}"; do
    rp=$(readlink -f -- "$p")
    pkg=${owner[$p]:-${owner[$rp]:-${owner[${rp#/usr}]:-}}}
    if [ -n "$pkg" ]; then
        pkgs[$pkg]=1
    else
        unowned+=("$p")
    fi
done
mkdir -p "$root/var/lib/dpkg/status.d"
for pkg in "${!pkgs[@]}"; do
    dpkg-query -s "$pkg" >"$root/var/lib/dpkg/status.d/$pkg"
    if [ -f "/usr/share/doc/$pkg/copyright" ]; then
        mkdir -p "$root/usr/share/doc/$pkg"
        cp -p "/usr/share/doc/$pkg/copyright" "$root/usr/share/doc/$pkg/"
    fi
done
if [ -f /usr/lib/os-release ]; then
    copy_one /usr/lib/os-release
    [ -e "$root/etc/os-release" ] || ln -s ../usr/lib/os-release "$root/etc/os-release"
fi

[ ${#unowned[@]} -eq 0 ] || echo "mkroot: no Debian package owns: ${unowned[*]}" >&2
echo "mkroot: ${#copied[@]} files ($(printf '%s ' "${!replaced[@]}")from --lib) from ${#pkgs[@]} packages: $(printf '%s\n' "${!pkgs[@]}" | sort | tr '\n' ' ')"
echo "mkroot: $root: $(du -sh "$root" | cut -f1)"
