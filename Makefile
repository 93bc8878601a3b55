# Every target creates what it needs from nothing: a pinned uv in .tools/, then .venv from uv.lock.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv/.synced

.PHONY: demo test sandbox render lint clean package deploy

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $(VENV)

demo: $(VENV)  ## the main job: the demo on the local cloud
	$(UV) run --frozen step-patterns demo

test: $(VENV)  ## every test: unit, integration (sandbox), e2e (airflow dags test)
	$(UV) run --frozen pytest -n 2 --dist loadgroup

sandbox: $(VENV)  ## keep the local cloud running (Ctrl-C to stop)
	$(UV) run --frozen python -m step_patterns_sandbox up

render: $(VENV)
	$(UV) run --frozen step-patterns render wait-loop --format mermaid

package: $(VENV)  ## build/step-patterns-lambdas.zip: the Lambda bundle, reproducible, size and SHA-256 printed
	UV=$(abspath $(UV)) $(UV) run --frozen step-patterns package --output build/step-patterns-lambdas.zip

deploy: package  ## upload the zip and `aws cloudformation deploy` deploy/template.yaml (env vars: docs/deploy.md; DRY_RUN=1 prints only)
	$(UV) run --frozen python deploy/deploy.py

clean:
	rm -rf .venv .tools .sandbox artifacts
