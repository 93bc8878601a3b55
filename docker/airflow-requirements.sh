#!/bin/sh
# The Airflow image's requirements, from uv.lock: step-patterns' runtime dependencies (no dev
# group, so no local cloud, moto, duckdb, pytest...; no workspace member: the step-patterns wheel
# is installed on its own) plus the PostgreSQL driver of the compose file's metadata database URL
# (postgresql+psycopg), which only the dev parts depend on, at the version uv.lock pins for them.
# Run by the Dockerfile and by tests/unit/test_compose.py. UV names the uv to use (default: uv).
set -eu
UV=${UV:-uv}
export_locked() {
    "$UV" export --frozen --no-dev --no-emit-workspace --no-hashes --no-annotate --no-header "$@"
}
export_locked
export_locked --all-packages | grep -E '^psycopg(-binary)?=='
