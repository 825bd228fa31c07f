# One image for every Slimline service (migrate, workers); the command picks the role.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY tasks ./tasks
COPY workers ./workers
RUN pip install . && useradd --create-home --uid 10001 slimline
USER slimline
ENTRYPOINT ["slimline"]
CMD ["--help"]
