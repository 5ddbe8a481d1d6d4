# CALMA Workshops production image: web (ASGI) and Celery worker share it.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
# torch pinned to the CPU build (the default index would pull CUDA packages).
RUN pip install --upgrade pip \
    && pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" \
    && grep -v -E '^(torch|llama[_-]cpp[_-]python)==' constraints.txt > /tmp/constraints.txt
COPY . .
RUN pip install -c /tmp/constraints.txt . \
    && SECRET_KEY=build-only-not-a-secret-0123456789abcdef DEBUG=0 python manage.py collectstatic --noinput \
    && useradd --system --uid 1000 calma && chown -R calma /app
USER calma
EXPOSE 8000
# --no-proxy-headers: the client address is the socket's; behind a proxy set TRUSTED_PROXY_HOPS.
CMD ["uvicorn", "calma.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--no-proxy-headers"]
