"""How the Pipedrive syncs page reads failures.jsonl lines and the syncers' request windows."""

from __future__ import annotations

import json

from step_patterns.ui.data import failure_row


def test_a_contract_error_names_its_row_and_each_field():
    line = json.dumps({"row": 4, "external_id": "L-0000004", "source": "contract", "reasons": [
        'title: expected non-empty string, got str " "', "currency: expected 3-letter currency code like EUR, got str \"euro\"",
    ]}).encode()
    row = failure_row(line)
    assert (row["external_id"], row["fields"], row["where"]) == ("L-0000004", ["currency", "title"], "row 4")
    assert len(row["reasons"]) == 2


def test_a_chunk_that_was_not_synced_says_why_without_a_field():
    line = json.dumps({"source": "sync", "chunk": 2, "records_from": 10, "records_to": 50, "not_synced": 40,
                       "reasons": ["records 10 to 49 of chunk 2 were not synced: AuthenticationFailed: 401"]}).encode()
    row = failure_row(line)
    assert (row["external_id"], row["fields"], row["where"], row["not_synced"]) == (None, [], "chunk 2", 40)


def test_a_line_that_is_not_json_is_shown_as_it_is():
    assert failure_row(b"{oops")["reasons"] == ["{oops"]


def test_the_chart_sums_concurrent_syncers_per_window_and_shows_idle_windows():
    from step_lambdas.contract.results import SegmentCounts, SegmentResult
    from step_patterns.ui.data import per_window

    def segment(chunk, windows):
        return SegmentResult(chunk=chunk, cursor_start=0, cursor_end=1, counts=SegmentCounts(), windows=windows)

    bars = per_window([segment(0, [[100.0, 7], [102.0, 10]]), segment(1, [[102.0, 9], [106.0, 3]])], 2.0)
    assert [(b.requests, b.elapsed_s) for b in bars] == [(7, 2.0), (19, 2.0), (0, 2.0), (3, 2.0)]
