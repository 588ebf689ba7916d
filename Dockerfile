# Verbatim: one small image, CPU only, non-root. Build: docker build -t verbatim .
# Used by docker-compose.yml for both the API and the scheduler.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    VERBATIM_DATA_DIR=/data \
    VERBATIM_MODEL_DIR=/opt/verbatim/models

WORKDIR /app
# torch is pinned in pyproject.toml (2.13.0). The CPU-only wheel index is the default, so the
# image never pulls the multi-GB CUDA build; override with --build-arg TORCH_INDEX_URL=...
ARG TORCH_INDEX_URL="https://download.pytorch.org/whl/cpu"
RUN pip install "torch==2.13.0" --index-url "$TORCH_INDEX_URL"

COPY pyproject.toml README.md ./
COPY core core
COPY nlp nlp
COPY jobs jobs
COPY service service
COPY verbatim_cli verbatim_cli
# Extras: postgres (psycopg 3). Add ",ray" to scale `verbatim enrich --engine ray` out.
ARG EXTRAS="postgres"
RUN pip install ".[${EXTRAS}]" \
    && verbatim setup \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin verbatim \
    && mkdir -p /data && chown verbatim:verbatim /data \
    && chmod -R a+rX /opt/verbatim

USER verbatim
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"
CMD ["verbatim", "serve", "--host", "0.0.0.0", "--port", "8000"]
