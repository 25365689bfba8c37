# One image for every Ladder service; LADDER_SERVICE picks which one runs
# (intake, router, escalation, metrics). Configuration comes from the environment only.
#
#   make image        (docker build -t ladder:<version from pyproject.toml> .)
#   docker run -e LADDER_SERVICE=router -e KAFKA_BOOTSTRAP_SERVERS=... -e DATABASE_URL=... ladder:0.1.0
#
# Reproducible: every dependency comes from requirements/runtime.lock (exact versions and
# their hashes, the same lock `make install` and CI use); the project itself is installed
# without dependencies. (A registry that serves it can pin the base image by digest too:
# python:3.11-slim@sha256:...)

# --- build: a virtualenv with the pinned dependencies and the project ------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/ladder
WORKDIR /src
COPY requirements/runtime.lock ./requirements/runtime.lock
RUN /opt/ladder/bin/pip install --no-compile --require-hashes -r requirements/runtime.lock
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
COPY cli ./cli
RUN /opt/ladder/bin/pip install --no-compile --no-deps . \
 && /opt/ladder/bin/python -m compileall -q /opt/ladder/lib

# --- run: no compilers, no build tools, not root --------------------------------------
FROM python:3.11-slim
# A fixed numeric user and group (10001): Kubernetes can check runAsNonRoot against it.
RUN groupadd --system --gid 10001 ladder \
 && useradd --system --uid 10001 --gid ladder --home-dir /app --shell /usr/sbin/nologin ladder
COPY --from=build /opt/ladder /opt/ladder
COPY deploy/charter /app/deploy/charter
WORKDIR /app
ENV PATH=/opt/ladder/bin:$PATH \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    LADDER_SERVICE=intake \
    LADDER_CHARTER=/app/deploy/charter/default.yaml \
    INTAKE_HOST=0.0.0.0 ROUTER_HOST=0.0.0.0 ESCALATION_HOST=0.0.0.0 METRICS_HOST=0.0.0.0
USER 10001:10001
EXPOSE 8001 8002 8003 8004
# Alive = /healthz answers on the service's own port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD \
  python -c "import os, urllib.request; s = os.environ['LADDER_SERVICE']; \
port = os.environ.get(s.upper() + '_PORT') or {'intake': 8001, 'router': 8002, 'escalation': 8003, 'metrics': 8004}[s]; \
urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2)"
# exec: the service is PID 1's only child and gets SIGTERM directly (graceful shutdown).
CMD ["sh", "-c", "exec python -m services.${LADDER_SERVICE}"]
