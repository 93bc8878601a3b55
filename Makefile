# Every target creates what it needs from nothing: a pinned uv in .tools/, then .venv from uv.lock.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv/.synced

.PHONY: demo test quick sandbox render lint clean package deploy airflow-package

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $(VENV)

demo: $(VENV)  ## the main job: the demo on the local cloud
	$(UV) run --frozen step-patterns demo

test: $(VENV)  ## every test: unit, integration (sandbox), e2e (airflow dags test)
	$(UV) run --frozen pytest -n 2

quick: $(VENV)  ## the inner loop: unit + integration tests only
	$(UV) run --frozen pytest -n 2 tests/unit tests/integration

sandbox: $(VENV)  ## keep the local cloud running (Ctrl-C to stop)
	$(UV) run --frozen python -m step_patterns_sandbox up

render: $(VENV)
	$(UV) run --frozen step-patterns render wait-loop --format mermaid

package: $(VENV)  ## build/step-patterns-lambdas.zip: the Lambda bundle, reproducible, size and SHA-256 printed
	UV=$(abspath $(UV)) $(UV) run --frozen step-patterns package --output build/step-patterns-lambdas.zip

deploy: package  ## upload the zip and `aws cloudformation deploy` deploy/template.yaml (env vars: docs/deploy.md; DRY_RUN=1 prints only)
	$(UV) run --frozen python deploy/deploy.py

AIRFLOW_DIST ?= dist/airflow
AIRFLOW_PLUGINS ?= /usr/local/airflow/plugins
# What an Airflow deployment installs (docs/install.md): the step-patterns wheel, constraints.txt
# (uv.lock's versions of its dependencies, no dev parts), and for MWAA a plugins.zip holding both
# plus a requirements.txt that installs the wheel from where MWAA unpacks plugins.zip.
airflow-package: $(UV)  ## dist/airflow/: wheel + constraints.txt + MWAA requirements.txt and plugins.zip
	rm -rf $(AIRFLOW_DIST) && mkdir -p $(AIRFLOW_DIST)
	$(UV) build --quiet --wheel --package step-patterns --out-dir $(AIRFLOW_DIST)
	rm -f $(AIRFLOW_DIST)/.gitignore
	$(UV) export --quiet --frozen --no-dev --no-emit-workspace --no-hashes --no-header \
		--output-file $(AIRFLOW_DIST)/constraints.txt
	cd $(AIRFLOW_DIST) && wheel=$$(ls step_patterns-*.whl) && \
		printf '%s\n' "# step-patterns for Amazon MWAA: upload plugins.zip and this file (docs/install.md)." \
			"--constraint $(AIRFLOW_PLUGINS)/constraints.txt" "$(AIRFLOW_PLUGINS)/$$wheel" > requirements.txt && \
		$(PYTHON) -m zipfile -c plugins.zip "$$wheel" constraints.txt
	@ls -l $(AIRFLOW_DIST)

clean:
	rm -rf .venv .tools .sandbox artifacts dist
