# One image for every Slimline service (migrate, workers, gateway); the command picks the role.
#
# Two stages: the builder compiles llama.cpp (llama-cpp-python) and gathers every wheel Slimline needs with
# scripts/install.sh --wheels; the runtime stage installs those wheels only (no compiler, no network) with the
# same script, and runs as a non-root user. `celery` is PID 1 when a worker runs (exec form, no shell), so it
# receives SIGTERM and stops warm: give the container a stop grace period longer than its longest batch.

# The products' escalated tier needs Qwen2.5-Coder-1.5B (2.2 GB): build with
# --build-arg SLIMLINE_SPLIT_GENERATOR_MODELS=qwen2.5-coder-1.5b to put it in the image.
ARG SLIMLINE_SPLIT_GENERATOR_MODELS=""

FROM python:3.11-slim AS builder
ARG SLIMLINE_SPLIT_GENERATOR_MODELS
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY tasks ./tasks
COPY workers ./workers
COPY scripts/install.sh scripts/install-models.sh ./scripts/
# A portable CPU build of llama.cpp (no -march=native: the image runs on other machines than the builder).
RUN CMAKE_ARGS="-DGGML_NATIVE=OFF" scripts/install.sh --wheels /wheels

FROM python:3.11-slim
ARG SLIMLINE_SPLIT_GENERATOR_MODELS
# libgomp: OpenMP runtime of LightGBM and llama.cpp (a shared library, not a build tool).
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 slimline
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/slimline/bin:$PATH SLIMLINE_DATA_DIR=/var/lib/slimline SLIMLINE_GENERATOR__CACHE_DIR=/opt/slimline-models
COPY --from=builder /wheels /wheels
COPY scripts/install.sh scripts/install-models.sh /tmp/scripts/
# Only the wheels of the builder: no index, no compiler.
RUN PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels /tmp/scripts/install.sh /opt/slimline /wheels/slimline-*.whl \
    && rm -rf /wheels /tmp/scripts /root/.cache \
    && mkdir -p /var/lib/slimline && chown slimline /var/lib/slimline
USER slimline
WORKDIR /home/slimline
EXPOSE 8000 9808
ENTRYPOINT ["slimline"]
CMD ["--help"]
