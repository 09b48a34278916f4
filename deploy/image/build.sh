#!/usr/bin/env bash
# Build the streamproc image from the repository's Dockerfile with neither a Docker engine nor
# Docker Hub, as CI must: a Debian bookworm base made from Debian's packages (debootstrap: Python
# 3.11 in a virtual environment on PATH, as python:3.11-slim has it), then the Dockerfile built by
# buildah (chroot isolation, vfs storage: no daemon, no overlay mounts). Where Docker runs,
# `docker build -t streamproc .` does the same on python:3.11-slim.
#
#   deploy/image/build.sh [TAG]        default TAG: localhost/streamproc:ci
#
# Needs root, buildah and debootstrap (Debian packages). The base's root file system is cached in
# $STREAMPROC_IMAGE_CACHE (default ~/.cache/streamproc/image), so a second build reuses it.
# The base trusts the certificate authorities the host trusts (its CA bundle is copied in): the
# build downloads from PyPI through whatever TLS the host's network presents.
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG=${1:-localhost/streamproc:ci}
BASE=localhost/streamproc-base:bookworm
CACHE=${STREAMPROC_IMAGE_CACHE:-$HOME/.cache/streamproc/image}
MIRROR=${STREAMPROC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
buildah() { command buildah --storage-driver vfs "$@"; }
mkdir -p "$CACHE"

if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
    rootfs=$CACHE/rootfs-bookworm
    if [ ! -f "$rootfs/.complete" ]; then
        rm -rf "$rootfs"
        echo "debootstrap: Debian bookworm with python3 into $rootfs" >&2
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            bookworm "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
            || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
        chroot "$rootfs" python3 -m venv /opt/python
        touch "$rootfs/.complete"
    fi
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    ctr=$(buildah from scratch)
    buildah copy "$ctr" "$rootfs" / >/dev/null
    buildah config \
        --env PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
        --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
        --cmd /bin/bash "$ctr"
    buildah commit -q "$ctr" "$BASE" >/dev/null
    buildah rm "$ctr" >/dev/null
fi

echo "buildah: building $TAG from Dockerfile on $BASE" >&2
buildah bud --isolation chroot --build-arg "BASE=$BASE" -t "$TAG" . >"$CACHE/build.log" 2>&1 \
    || { tail -30 "$CACHE/build.log" >&2; exit 1; }
echo "$TAG"
