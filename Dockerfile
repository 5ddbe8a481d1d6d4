# CALMA Workshops production images, one per role (docker-compose.yml picks the target):
#   web     the ASGI server, migrate and beat: Django, Channels, Celery client; no torch, no
#           sentence-transformers, no UMAP, no scikit-learn (the web process never imports them)
#   worker  the Celery worker: the same plus the `worker` extra (embedding model, UMAP, summary)
# `docker build --target worker .` / `docker build --target web .` (the default is web, the last stage).
FROM python:3.11-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
# The lock without torch (installed from the CPU index below) and without the local chat model
# server (a development tool: `make run`).
RUN pip install --upgrade pip \
    && grep -v -E '^(torch|llama[_-]cpp[_-]python)==' constraints.txt > /tmp/constraints.txt \
    && useradd --system --uid 1000 calma

FROM base AS worker
# libgomp1: OpenMP for torch and scikit-learn.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
# torch pinned to the CPU build (the default index would pull CUDA packages).
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
RUN pip install -c /tmp/constraints.txt ".[worker]"
COPY . .
RUN SECRET_KEY=build-only-not-a-secret-0123456789abcdef DEBUG=0 python manage.py collectstatic --noinput \
    && chown -R calma /app
USER calma
CMD ["celery", "-A", "calma", "worker", "--loglevel", "INFO", "--concurrency", "2"]

FROM base AS web
# curl: the compose healthcheck.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
RUN pip install -c /tmp/constraints.txt .
COPY . .
RUN SECRET_KEY=build-only-not-a-secret-0123456789abcdef DEBUG=0 python manage.py collectstatic --noinput \
    && chown -R calma /app
USER calma
EXPOSE 8000
# --no-proxy-headers: the client address is the socket's; behind a proxy set TRUSTED_PROXY_HOPS.
CMD ["uvicorn", "calma.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--no-proxy-headers", "--timeout-keep-alive", "75"]
