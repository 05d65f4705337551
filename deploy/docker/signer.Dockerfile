# syntax=docker/dockerfile:1
# The signer service image. Build from the repository root (see .dockerignore):
#   docker build -f deploy/docker/signer.Dockerfile -t maestro/signer:0.1.0 .
# Settings come from MAESTRO_SIGNER_* environment variables
# (services/signer/src/maestro/services/signer/config.py).

# -- builder: wheels of the service and its workspace libraries, installed with
#    every dependency pinned by constraints.txt into a venv --------------------
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY constraints.txt ./
COPY libs/api/ libs/api/
COPY libs/runtime/ libs/runtime/
COPY services/signer/ services/signer/
RUN pip wheel --no-deps --wheel-dir /wheels libs/api libs/runtime services/signer \
 && python -m venv /opt/maestro \
 && /opt/maestro/bin/pip install --constraint constraints.txt /wheels/*.whl

# -- runtime: the venv on a clean slim image, no compilers or pip caches, non-root
FROM python:3.11-slim AS runtime
ENV PATH=/opt/maestro/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 maestro \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin maestro
COPY --from=builder /opt/maestro /opt/maestro
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# gRPC, /metrics
EXPOSE 50056 9456
ENTRYPOINT ["python", "-m", "maestro.services.signer"]
