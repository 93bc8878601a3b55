"""Deals in SQLite: ascending ids, PATCH semantics, an index for case-insensitive search.

One connection guarded by a lock serves every request thread: SQLite calls take
microseconds here, and ":memory:" databases only exist inside a single connection.

The search index trails the deals table by ``search_lag_s`` (as Pipedrive's does): a write
adds index rows visible from ``now + lag`` and retires the deal's current rows at that same
instant, so until then search answers from the deal's previous values (or not at all for a
new deal). Lists and GETs read the deals table: they see every write at once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from typing import Any, Iterable

from .schema import DealSchema, searchable_text

_STANDARD_COLUMNS = ("title", "value", "currency", "status", "stage_id", "owner_id", "person_id",
                     "org_id", "pipeline_id", "expected_close_date")

_DDL = """
CREATE TABLE IF NOT EXISTS deals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    value,                      -- no type affinity: ints stay ints, floats stay floats
    currency TEXT, status TEXT, stage_id INTEGER, owner_id INTEGER, person_id INTEGER,
    org_id INTEGER, pipeline_id INTEGER, expected_close_date TEXT,
    custom_fields TEXT NOT NULL,  -- JSON object {field key: value}
    add_time TEXT NOT NULL, update_time TEXT NOT NULL
);
-- One row per searchable value: field is 'title' or a custom field key; norm is lower-cased.
-- A row is in the index from visible_at until retired_at (NULL: until the next write), both
-- unix times: the lag of Pipedrive's search index.
CREATE TABLE IF NOT EXISTS deal_search (
    deal_id INTEGER NOT NULL, field TEXT NOT NULL, norm TEXT NOT NULL,
    visible_at REAL NOT NULL, retired_at REAL
);
CREATE INDEX IF NOT EXISTS deal_search_norm ON deal_search (norm, field);
CREATE INDEX IF NOT EXISTS deal_search_deal ON deal_search (deal_id);
"""

# Orders of GET /api/v2/deals (sort_by): the column, and its tie-breaker for a stable cursor.
SORT_COLUMNS = ("id", "update_time", "add_time")


def normalize(text: str) -> str:
    """Case folding shared by indexing and searching (exact_match is case-insensitive)."""
    return text.lower()


class DealStore:
    def __init__(self, db_path: str, schema: DealSchema, search_lag_s: float = 0.0):
        self.schema = schema
        self.search_lag_s = search_lag_s  # the sandbox sets it from its settings (changeable at runtime)
        self.clock = time.time  # the search index's clock (tests move it instead of sleeping)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(db_path, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        if db_path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        columns = [r[1] for r in self._db.execute("PRAGMA table_info(deal_search)")]
        if columns and "visible_at" not in columns:  # a database from before the index lag: rebuild it
            self._db.execute("DROP TABLE deal_search")
        self._db.executescript(_DDL)
        if columns and "visible_at" not in columns:
            with self._db:
                for row in self._db.execute("SELECT id, title, custom_fields FROM deals").fetchall():
                    self._index(row["id"], row["title"], json.loads(row["custom_fields"]))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, fields: dict[str, Any], now: str) -> dict[str, Any]:
        with self._lock, self._db:
            cur = self._db.execute(
                f"INSERT INTO deals ({', '.join(_STANDARD_COLUMNS)}, custom_fields, add_time, update_time) "
                f"VALUES ({', '.join('?' * (len(_STANDARD_COLUMNS) + 3))})",
                [fields[c] for c in _STANDARD_COLUMNS] + [json.dumps(fields["custom_fields"]), now, now],
            )
            deal_id = cur.lastrowid
            self._index(deal_id, fields["title"], fields["custom_fields"])
            return self._get(deal_id)

    def update(self, deal_id: int, fields: dict[str, Any], now: str) -> dict[str, Any] | None:
        """Change only the given fields; None when the deal does not exist."""
        with self._lock, self._db:
            row = self._db.execute("SELECT title, custom_fields FROM deals WHERE id = ?", (deal_id,)).fetchone()
            if row is None:
                return None
            custom = json.loads(row["custom_fields"])
            custom.update(fields.get("custom_fields", {}))
            columns = [c for c in _STANDARD_COLUMNS if c in fields]
            assignments = "".join(f"{c} = ?, " for c in columns)
            self._db.execute(
                f"UPDATE deals SET {assignments}custom_fields = ?, update_time = ? WHERE id = ?",
                [fields[c] for c in columns] + [json.dumps(custom), now, deal_id],
            )
            self._index(deal_id, fields.get("title", row["title"]), custom)
            return self._get(deal_id)

    def get(self, deal_id: int) -> dict[str, Any] | None:
        with self._lock:
            return self._get(deal_id)

    def page(self, after_id: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Deals with id > after_id in ascending id order, and whether more follow."""
        return self.select(limit, after=(after_id,) if after_id else None)

    def select(self, limit: int, *, sort_by: str = "id", descending: bool = False,
               after: tuple | None = None, since: str | None = None,
               until: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        """One page of deals in ``sort_by`` order (ties by id), and whether more follow.

        ``after`` is the sort key of the last deal of the previous page (``(id,)`` or
        ``(time, id)``): keyset paging, so writes between pages neither repeat nor skip a
        deal that did not change. ``since``/``until``: ``update_time >= since`` and
        ``< until`` (RFC 3339 UTC strings, second precision, as stored).
        """
        if sort_by not in SORT_COLUMNS:
            raise ValueError(f"sort_by must be one of {SORT_COLUMNS}, got {sort_by!r}")
        key = ["id"] if sort_by == "id" else [sort_by, "id"]
        where, args = [], []
        if since is not None:
            where.append("update_time >= ?")
            args.append(since)
        if until is not None:
            where.append("update_time < ?")
            args.append(until)
        if after is not None:
            where.append(f"({', '.join(key)}) {'<' if descending else '>'} ({', '.join('?' * len(key))})")
            args.extend(after)
        order = ", ".join(f"{c} {'DESC' if descending else 'ASC'}" for c in key)
        sql = (f"SELECT * FROM deals {'WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY {order} LIMIT ?")
        with self._lock:
            rows = self._db.execute(sql, [*args, limit + 1]).fetchall()
        return [self._to_deal(r) for r in rows[:limit]], len(rows) > limit

    def search(self, term: str, exact: bool, fields: Iterable[str], offset: int, limit: int):
        """[(deal, score, matched custom values)] best first, and whether more follow.

        `fields` holds 'title' and/or custom field keys to search in.
        """
        fields = list(fields)
        if not fields:
            return [], False
        needle = normalize(term)
        condition = "norm = ?" if exact else "instr(norm, ?) > 0"
        marks = ", ".join("?" * len(fields))
        now = self.clock()
        with self._lock:
            hits = self._db.execute(
                f"SELECT deal_id, field, norm FROM deal_search WHERE {condition} AND field IN ({marks}) "
                "AND visible_at <= ? AND (retired_at IS NULL OR retired_at > ?)",
                [needle, *fields, now, now],
            ).fetchall()
            by_deal: dict[int, tuple[float, list[str]]] = {}
            for hit in hits:
                score = len(needle) / max(1, len(hit["norm"]))  # 1.0 for a whole-value match
                best, matched = by_deal.get(hit["deal_id"], (0.0, []))
                if hit["field"] != "title":
                    matched = matched + [hit["field"]]
                by_deal[hit["deal_id"]] = (max(best, score), matched)
            ranked = sorted(by_deal.items(), key=lambda kv: (-kv[1][0], kv[0]))
            window = ranked[offset:offset + limit]
            results = []
            for deal_id, (score, matched_keys) in window:
                deal = self._get(deal_id)
                values = [searchable_text(self.schema.by_key[k].field_type, deal["custom_fields"][k])
                          for k in matched_keys]
                results.append((deal, round(score, 6), values))
        return results, len(ranked) > offset + limit

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM deals").fetchone()[0]

    def duplicates(self, key: str) -> int:
        """Deals beyond the first that share a (case-insensitive) value of custom field `key`.

        Counted from the deals themselves, not the search index: a duplicate made a moment ago
        counts before search shows it.
        """
        with self._lock:
            values = [json.loads(r[0]).get(key) for r in self._db.execute("SELECT custom_fields FROM deals")]
        seen: set[str] = set()
        extra = 0
        for value in values:
            if value is None:
                continue
            norm = normalize(str(value))
            extra += norm in seen
            seen.add(norm)
        return extra

    def clear(self) -> None:
        """Drop every deal; ids start again at 1."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM deals")
            self._db.execute("DELETE FROM deal_search")
            self._db.execute("DELETE FROM sqlite_sequence WHERE name = 'deals'")

    def _index(self, deal_id: int, title: str, custom: dict[str, Any]) -> None:
        """Index the deal's new values from ``now + search_lag_s``; its current ones retire then."""
        now = self.clock()
        lag = max(0.0, self.search_lag_s)
        if lag == 0:
            self._db.execute("DELETE FROM deal_search WHERE deal_id = ?", (deal_id,))
        else:
            self._db.execute("DELETE FROM deal_search WHERE deal_id = ? AND retired_at <= ?", (deal_id, now))
            self._db.execute("UPDATE deal_search SET retired_at = ? WHERE deal_id = ? AND retired_at IS NULL",
                             (now + lag, deal_id))
        rows = [(deal_id, "title", normalize(title), now + lag)]
        for f in self.schema.custom:
            text = searchable_text(f.field_type, custom.get(f.key))
            if text is not None:
                rows.append((deal_id, f.key, normalize(text), now + lag))
        self._db.executemany("INSERT INTO deal_search (deal_id, field, norm, visible_at) VALUES (?, ?, ?, ?)", rows)

    def _get(self, deal_id: int) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM deals WHERE id = ?", (deal_id,)).fetchone()
        return None if row is None else self._to_deal(row)

    def _to_deal(self, row: sqlite3.Row) -> dict[str, Any]:
        stored = json.loads(row["custom_fields"])
        deal = {"id": row["id"], **{c: row[c] for c in _STANDARD_COLUMNS}}
        deal["custom_fields"] = {f.key: stored.get(f.key) for f in self.schema.custom}
        deal.update(add_time=row["add_time"], update_time=row["update_time"], is_deleted=False)
        return deal
