# Two images for docker-compose.yml, both from uv.lock:
#
#   --target airflow   Airflow 3.3 + the step-patterns wheel and its locked runtime dependencies:
#                      what a production Airflow gets (no local cloud, moto, duckdb, pytest, uv,
#                      sources). DAGs are not in it: compose mounts ./dags.
#   --target sandbox   the dev parts: the local cloud (step-patterns-sandbox) on a checkout of
#                      this repo (it builds the Lambda bundle from lambdas/ at start).
FROM python:3.11-slim AS base
# The same uv the Makefile pins.
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
WORKDIR /opt/step-patterns
ENV UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never

# ---------------------------------------------------------------- the Airflow image
FROM base AS airflow-build
COPY pyproject.toml uv.lock README.md ./
COPY sandbox/pyproject.toml ./sandbox/pyproject.toml
COPY docker/airflow-requirements.sh ./docker/
# Dependencies first (cached while only the sources change), exactly as locked.
RUN sh docker/airflow-requirements.sh > /tmp/requirements.txt \
    && uv venv /opt/venv \
    && uv pip install --python /opt/venv -r /tmp/requirements.txt
COPY plugins ./plugins
COPY lambdas ./lambdas
RUN uv build --wheel --out-dir /tmp/dist . \
    && uv pip install --python /opt/venv --no-deps /tmp/dist/step_patterns-*.whl

FROM python:3.11-slim AS airflow
COPY --from=airflow-build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow
WORKDIR /opt/airflow

# ---------------------------------------------------------------- the sandbox image
FROM base AS sandbox
COPY pyproject.toml uv.lock README.md ./
COPY sandbox/pyproject.toml ./sandbox/pyproject.toml
RUN uv sync --frozen --no-dev --package step-patterns-sandbox --no-install-workspace
COPY plugins ./plugins
COPY lambdas ./lambdas
COPY sandbox ./sandbox
RUN uv sync --frozen --no-dev --package step-patterns-sandbox
ENV PATH=/opt/step-patterns/.venv/bin:$PATH
