"""Is the test PostgreSQL reachable? Shared by every test that needs it.

``STEP_PATTERNS_PG_URL`` names it (default ``postgresql://postgres@127.0.0.1:5432/test``).
Where none is reachable such tests skip with the reason, unless ``STEP_PATTERNS_REQUIRE_PG=1``
(set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import functools
import os

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("STEP_PATTERNS_PG_URL") or DEFAULT_PG_URL


@functools.cache
def unreachable_reason(url: str) -> str | None:
    """None when ``SELECT 1`` works at ``url`` within 3 s, else why not."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as error:
        return f"PostgreSQL not reachable at {url}: {str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}"
    return None


def require_postgres() -> str:
    """Return the URL, or skip the calling test (fail it when STEP_PATTERNS_REQUIRE_PG=1)."""
    import pytest

    url = postgres_url()
    reason = unreachable_reason(url)
    if reason is None:
        return url
    if os.environ.get("STEP_PATTERNS_REQUIRE_PG") == "1":
        pytest.fail(f"{reason} (STEP_PATTERNS_REQUIRE_PG=1 makes this a failure)", pytrace=False)
    pytest.skip(f"{reason} (set STEP_PATTERNS_PG_URL, or STEP_PATTERNS_REQUIRE_PG=1 to fail instead)")
