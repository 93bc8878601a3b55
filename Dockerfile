# step-patterns for docker-compose: Airflow 3.3 + the plugin + the local cloud, from uv.lock.
FROM python:3.11-slim

# The same uv the Makefile pins.
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv

WORKDIR /opt/step-patterns
ENV UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never

# Dependencies first (cached while only the sources change), exactly as locked.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-install-project

COPY plugins ./plugins
COPY lambdas ./lambdas
COPY sandbox ./sandbox
COPY dags ./dags
RUN uv sync --frozen

ENV PATH=/opt/step-patterns/.venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow
