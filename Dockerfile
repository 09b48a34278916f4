# The streamproc image: a worker by default; `simulate`, `record` and `replay` run from it too.
#   docker build -t streamproc .
#   docker run --rm -e STREAMPROC_BROKER=broker:9092 -p 127.0.0.1:6066:6066 streamproc
#   docker run --rm -e STREAMPROC_BROKER=broker:9092 streamproc simulate --rate 1000
# BASE: any image with Python 3.11+ whose `python` and `pip` are on PATH. CI, which cannot reach
# Docker Hub, builds one from Debian's packages (deploy/image/build.sh).
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
# Dependencies get their own layer (all ship manylinux wheels, no compiler needed), so a code
# change doesn't reinstall faust, numpy and river.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY README.md ./
COPY streamproc ./streamproc
RUN pip install --no-deps . && cd / && rm -rf /src

# Non-root, numeric uid (Kubernetes runAsNonRoot can verify it). /data holds the worker state
# and registry/; it is created owned by the user, so a fresh named volume mounted at
# /data/registry inherits that ownership.
RUN useradd --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin streamproc \
    && mkdir -p /data/registry \
    && chown -R 10001:10001 /data

# The worker's web server binds 127.0.0.1 unless told otherwise; in a container it must listen
# on all interfaces for health checks, probes and scraping.
ENV STREAMPROC_DATA_DIR=/data \
    STREAMPROC_WEB_HOST=0.0.0.0 \
    STREAMPROC_WEB_PORT=6066

USER 10001:10001
WORKDIR /data
EXPOSE 6066
ENTRYPOINT ["streamproc"]
CMD ["worker"]
