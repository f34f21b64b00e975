# imagegate: the server and its `imagegate` command in one image.
#   docker build -t imagegate .
#   docker run -p 8000:8000 -v imagegate-data:/data imagegate          (embedded: SQLite, files)
#   docker run ... imagegate worker | imagegate db upgrade | imagegate admin ...   (scale-out)
# Both stages start from the same Python image, so the venv's interpreter links resolve.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Every dependency ships manylinux wheels (psycopg[binary], pillow, argon2-cffi, obstore, uvloop),
# so no compiler is needed; only what .dockerignore lets through is in the context.
COPY client/ client/
COPY pyproject.toml README.md ./
COPY src/ src/
# Wheels of the SDK (it owns the `imagegate` command) and the server, then the venv from them
# alone: the server's `imagegate-client` requirement is met by the wheel built here.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip wheel --no-cache-dir --wheel-dir /wheels ./client . \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels \
        imagegate-client imagegate \
    && /opt/venv/bin/imagegate --help > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="imagegate" \
      org.opencontainers.image.description="Self-hostable text-to-image API gateway" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed uid/gid, so a bind-mounted /data can be chowned to it (chown 10001:10001 DIR).
RUN groupadd --system --gid 10001 imagegate \
    && useradd --system --uid 10001 --gid imagegate --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin imagegate \
    && mkdir /data \
    && chown imagegate:imagegate /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IMAGEGATE_HOST=0.0.0.0 \
    IMAGEGATE_PORT=8000 \
    IMAGEGATE_DATA_DIR=/data
# SQLite database, images and the server secret in embedded mode; a thumbnail cache otherwise.
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8000
# Liveness of an API process (`serve`); a worker has no HTTP port of its own, so compose gives
# workers their own check (deploy/compose.yaml). Exits non-zero on any error or non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('IMAGEGATE_PORT', '8000'), timeout=4)"]
# On SIGTERM, API and worker finish in-flight work within IMAGEGATE_SHUTDOWN_GRACE (30 s):
# give `docker stop` more than that (--stop-timeout 40 / stop_grace_period: 40s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["imagegate"]
CMD ["serve"]
