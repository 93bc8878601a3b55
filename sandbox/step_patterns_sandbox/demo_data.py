"""Realistic leads for the demo and the end-to-end tests, generated in the warehouse itself."""

from __future__ import annotations

from datetime import date, timedelta

LEADS_TABLE = """
CREATE OR REPLACE TABLE leads (
    lead_id VARCHAR PRIMARY KEY,
    company VARCHAR NOT NULL,
    contact_email VARCHAR,
    value DECIMAL(12, 2),
    currency VARCHAR(3),
    source VARCHAR,
    score DOUBLE,
    created_at TIMESTAMP NOT NULL
)
"""

_COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne", "Soylent"]
_SUFFIXES = ["GmbH", "Ltd", "Inc", "SAS", "BV", "Oy", "AB", "SpA"]
_SOURCES = ["web", "referral", "event", "partner", "outbound"]


def seed_leads(warehouse, *, days: int, per_day: int, last_day: str) -> int:
    """``days`` x ``per_day`` leads ending on ``last_day``, deterministic (no random state)."""
    last = date.fromisoformat(last_day)
    first = last - timedelta(days=days - 1)
    warehouse.execute(LEADS_TABLE)
    companies = ", ".join(f"'{c}'" for c in _COMPANIES)
    suffixes = ", ".join(f"'{s}'" for s in _SUFFIXES)
    sources = ", ".join(f"'{s}'" for s in _SOURCES)
    warehouse.execute(f"""
        INSERT INTO leads
        SELECT
            'L-' || lpad(CAST(n AS VARCHAR), 7, '0'),
            list_extract([{companies}], (n % 10) + 1) || ' ' || list_extract([{suffixes}], (n % 8) + 1)
                || ' #' || CAST(n AS VARCHAR),
            'contact' || CAST(n AS VARCHAR) || '@example.com',
            CAST(((n * 7919) % 50000) / 10.0 + 100 AS DECIMAL(12, 2)),
            list_extract(['EUR', 'USD', 'GBP'], (n % 3) + 1),
            list_extract([{sources}], (n % 5) + 1),
            ROUND(((n * 104729) % 1000) / 10.0, 1),
            TIMESTAMP '{first.isoformat()} 08:00:00'
                + INTERVAL (n // {per_day}) DAY
                + INTERVAL ((n % {per_day}) * 36) SECOND
        FROM range({days * per_day}) t(n)
    """)
    return warehouse.execute("SELECT COUNT(*) FROM leads")[0][0]


QUALIFIED_LEADS_TABLE = """
CREATE TABLE IF NOT EXISTS qualified_leads (
    lead_id VARCHAR PRIMARY KEY,
    company VARCHAR NOT NULL,
    value DECIMAL(12, 2),
    currency VARCHAR(3),
    source VARCHAR,
    score DOUBLE,
    created_at TIMESTAMP NOT NULL
)
"""


def create_qualified_leads(warehouse) -> None:
    """The table ``dags/composed_sync.py`` fills with its long statement."""
    warehouse.execute(QUALIFIED_LEADS_TABLE)


def change_leads(warehouse, *, day: str, every: int) -> int:
    """Rename every ``every``-th lead of ``day`` (a warehouse-side change to sync); returns how many."""
    warehouse.execute(
        "UPDATE leads SET company = company || ' (updated)' "
        "WHERE CAST(created_at AS DATE) = CAST(:day AS DATE) "
        "AND CAST(substr(lead_id, 3) AS INTEGER) % CAST(:every AS INTEGER) = 0",
        {"day": day, "every": every},
    )
    return warehouse.execute(
        "SELECT COUNT(*) FROM leads WHERE CAST(created_at AS DATE) = CAST(:day AS DATE) "
        "AND company LIKE '%(updated)'", {"day": day},
    )[0][0]
