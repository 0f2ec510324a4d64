# syntax=docker/dockerfile:1.7
#
# The code-location image of the change-data platform: the Dagster gRPC server, and (launched by the
# K8sRunLauncher with the same image) every run.
#
#   docker build -t <registry>/change-data-platform:<immutable tag> .
#
# The dbt manifest is parsed at build time, so the server loads without running dbt.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ARG UV_VERSION=0.13.9

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    VIRTUAL_ENV=/app/.venv \
    PATH=/app/.venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    GX_ANALYTICS_ENABLED=false

RUN pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /app

# Dependencies first (their own layer, rebuilt only when the lock or native/ changes): exactly
# uv.lock, no dev group. platform-native (native/) is C, compiled here; the compiler leaves with the layer.
COPY pyproject.toml uv.lock ./
COPY native/ native/
RUN --mount=type=cache,target=/root/.cache/uv \
    apt-get update \
    && apt-get install --yes --no-install-recommends gcc libc6-dev \
    && uv sync --frozen --no-dev --compile-bytecode \
    && apt-get purge --yes --auto-remove gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

COPY platform_assets/ platform_assets/
COPY cli/ cli/
COPY resources/ resources/
COPY spark/ spark/
COPY dbt/ dbt/
COPY contracts/ contracts/
COPY simulator/ simulator/
COPY devstack/ devstack/
COPY workspace.yaml ./

# Bake the dbt manifest (dbt/target/manifest.json) as dagster-dbt prescribes; parsing opens no lake
# and connects to no Spark Connect server (dbt-sail, the adapter runs use, is in the locked environment).
RUN dagster-dbt project prepare-and-package --file platform_assets/marts.py \
    && test -f dbt/target/manifest.json

# Non-root. It owns only what it writes at run time: dbt's target/ and logs/, and DAGSTER_HOME
# (the K8sRunLauncher mounts dagster.yaml into it).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home app \
    && mkdir -p /opt/dagster/dagster_home dbt/logs \
    && chown -R app:app /app/dbt /opt/dagster/dagster_home
USER 10001:10001

EXPOSE 4000
CMD ["dagster", "api", "grpc", "-m", "platform_assets.definitions", "-h", "0.0.0.0", "-p", "4000"]
