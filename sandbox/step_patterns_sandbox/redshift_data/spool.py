"""A statement's result, encoded once and kept on disk page by page.

Rows arrive from the engine in batches; each page of ``page_size`` records is written as
one JSON array to an anonymous temporary file, and only its (offset, length) stays in
memory. Serving a page is one ``os.pread`` (thread-safe, no shared file position), so a
1,000,000-row result costs ``page_size`` rows of memory while it is written or read plus
16 bytes per page, and its encoded size on disk (freed when the spool is closed).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

from .fields import Column, row_encoder


class ResultSpool:
    def __init__(self, columns: list[Column], page_size: int, directory: str | None = None):
        self.columns = columns
        self.column_metadata = [c.metadata() for c in columns]
        self.page_size = page_size
        self.total_rows = 0
        self.size_bytes = 0
        self._encode = row_encoder(columns)
        self._pending: list[str] = []
        self._pages: list[tuple[int, int]] = []
        self._file = tempfile.TemporaryFile(dir=directory, prefix="redshift-data-")

    def add_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        encode = self._encode
        for row in rows:
            self._pending.append(encode(row))
            if len(self._pending) >= self.page_size:
                self._flush()

    def finish(self) -> None:
        if self._pending:
            self._flush()
        self._file.flush()

    def _flush(self) -> None:
        data = ("[" + ",".join(self._pending) + "]").encode()
        self._file.write(data)
        self._pages.append((self.size_bytes, len(data)))
        self.total_rows += len(self._pending)
        self.size_bytes += len(data)
        self._pending = []

    @property
    def page_count(self) -> int:
        return len(self._pages)

    def page(self, index: int) -> str:
        """JSON text of page ``index``'s records (``[]`` for an empty result)."""
        if not self._pages:
            return "[]"
        offset, length = self._pages[index]
        return os.pread(self._file.fileno(), length, offset).decode()

    def close(self) -> None:
        self._file.close()
