"""Debian's Chromium through Playwright, for the scheduler tests that look at the Airflow UI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def browser_or_skip():
    """Playwright's sync API, or skip (fail in CI, where STEP_PATTERNS_REQUIRE_PG=1) without Chromium."""
    problem = None
    if not os.access(CHROMIUM, os.X_OK):
        problem = f"{CHROMIUM} not found (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = problem or "playwright is not installed (uv sync)"
    if problem is None:
        return sync_playwright
    if os.environ.get("STEP_PATTERNS_REQUIRE_PG") == "1":
        pytest.fail(f"{problem} (STEP_PATTERNS_REQUIRE_PG=1 makes this a failure)", pytrace=False)
    pytest.skip(problem)
