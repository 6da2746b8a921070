#!/bin/bash
# docker/mkbase.sh TAG [ENGINE]: builds a minimal Debian 12 (bookworm) base
# image from Debian's archive alone, for machines that reach no image
# registry: mmdebstrap --variant=minbase of bookworm, bookworm-updates and
# bookworm-security, docs/man pages/locales left out (dpkg path-exclude,
# kept in the image for later apt-get installs, as debian:bookworm-slim
# does), apt lists dropped, imported with `ENGINE import` as TAG.
# Cached: does nothing when TAG exists. `make image` runs it (docker.mk).
#
# Env: DEBIAN_MIRROR (default http://deb.debian.org/debian)
#      DEBIAN_SECURITY (default http://deb.debian.org/debian-security)
#      MKBASE_TMP (scratch directory, default $TMPDIR or /tmp)
# Needs root (mmdebstrap in root mode; podman/docker import). Installs
# mmdebstrap with apt-get when missing.
set -euo pipefail

tag=${1:?usage: docker/mkbase.sh TAG [podman|docker]}
engine=${2:-podman}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY:-http://deb.debian.org/debian-security}

exists() {
    case $engine in
    *podman*) $engine image exists "$tag" ;;
    *) $engine image inspect "$tag" >/dev/null 2>&1 ;;
    esac
}
if exists; then
    echo "mkbase: $tag exists (cached; '$engine rmi $tag' to rebuild it)"
    exit 0
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || { echo "mkbase: mmdebstrap missing: apt-get install mmdebstrap (as root)" >&2; exit 1; }
    echo "mkbase: installing mmdebstrap" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends mmdebstrap >/dev/null
fi
[ "$(id -u)" -eq 0 ] || { echo "mkbase: run as root (mmdebstrap root mode, image import)" >&2; exit 1; }

tmp=$(mktemp -d "${MKBASE_TMP:-${TMPDIR:-/tmp}}/nginfer-base.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

t0=$SECONDS
echo "mkbase: mmdebstrap bookworm (minbase, updates, security) from $mirror"
# path-exclude keeps the copyright files (licences) and drops the rest of
# /usr/share/doc, man and info pages, translations and lintian overrides.
# The merged-usr hook makes the /bin -> usr/bin links itself, as
# debootstrap does; without it mmdebstrap installs usrmerge, which pulls in
# perl (46 MB). The hook's $1 is the new root (single quotes on purpose).
# shellcheck disable=SC2016
mmdebstrap --variant=minbase --mode=root --format=tar \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='Acquire::Languages "none"' \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb "$1"/var/log/*.log "$1"/var/log/apt/*' \
    bookworm "$tmp/rootfs.tar" \
    "deb $mirror bookworm main" \
    "deb $mirror bookworm-updates main" \
    "deb $security bookworm-security main"

echo "mkbase: importing $(du -h "$tmp/rootfs.tar" | cut -f1) as $tag"
$engine import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    "$tmp/rootfs.tar" "$tag" >/dev/null
echo "mkbase: $tag built in $((SECONDS - t0)) s"
