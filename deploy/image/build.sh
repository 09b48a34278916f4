#!/usr/bin/env bash
# Build the streamproc image from the repository's Dockerfile with Docker, where Docker Hub cannot
# be reached (CI): the base is made from Debian's packages (debootstrap: Debian bookworm's Python
# 3.11 in a virtual environment on PATH, as python:3.11-slim has it), imported into the Docker
# engine, and the Dockerfile is built on it (its `ARG BASE`). Where Docker Hub is reachable,
# `docker build -t streamproc .` does the same on python:3.11-slim.
#
#   deploy/image/build.sh [TAG]        default TAG: streamproc:ci
#
# Needs root, debootstrap and a Docker engine (Debian's docker.io) that `docker` reaches (set
# DOCKER_HOST for a private one: tests/integration/test_image.py starts its own). The build runs
# with `--network host`: the engine may have no bridge network (CI's dockerd runs with
# --bridge=none), and pip needs PyPI. The base's root file system is cached in
# $STREAMPROC_IMAGE_CACHE (default ~/.cache/streamproc/image), so a second build reuses it.
# The base trusts the certificate authorities the host trusts (its CA bundle is copied in): the
# build downloads from PyPI through whatever TLS the host's network presents.
# Measured on a 2-core machine: the base imported in 6 s, the Dockerfile built in 71 s (mostly
# pip downloading the dependencies); debootstrap, once, about 3 min.
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG=${1:-streamproc:ci}
BASE=streamproc-base:bookworm
CACHE=${STREAMPROC_IMAGE_CACHE:-$HOME/.cache/streamproc/image}
MIRROR=${STREAMPROC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The classic builder: Debian 12's docker.io builds with it by default, and a newer docker CLI
# without the buildx plugin falls back to it too; BuildKit would need its own network entitlement.
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}
mkdir -p "$CACHE"

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
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
    echo "docker import: $rootfs as $BASE" >&2
    # /dev is the engine's to provide: debootstrap's device nodes stay out of the image.
    tar -C "$rootfs" --exclude=./.complete --exclude='./dev/*' -c . | docker import \
        --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'CMD ["/bin/bash"]' \
        - "$BASE" >/dev/null
fi

echo "docker build: $TAG from Dockerfile on $BASE" >&2
started=$SECONDS
docker build --network host --build-arg "BASE=$BASE" -t "$TAG" . >"$CACHE/build.log" 2>&1 \
    || { tail -30 "$CACHE/build.log" >&2; exit 1; }
echo "docker build: $TAG built in $((SECONDS - started)) s" >&2
echo "$TAG"
