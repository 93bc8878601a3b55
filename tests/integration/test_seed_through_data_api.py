"""`python -m step_patterns_sandbox.seed` (docker compose's `seed` service): the demo's leads reach a
running sandbox's warehouse through its Redshift Data API, found in its endpoints.json."""

from __future__ import annotations

import datetime

from step_patterns_sandbox.seed import main


def test_seed_fills_the_running_sandbox_s_warehouse_through_the_data_api(cloud, capsys):
    endpoints = cloud.settings.state_dir / "endpoints.json"
    assert main(["--endpoints", str(endpoints), "--days", "2", "--per-day", "5", "--last-day", "2026-11-27"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("seeded 10 leads (2 days x 5, up to 2026-11-27) into table leads of sandbox-cluster/dev")
    days = cloud.warehouse.execute("SELECT CAST(created_at AS DATE) AS day, COUNT(*) FROM leads GROUP BY 1 ORDER BY 1")
    assert days == [(datetime.date(2026, 11, 26), 5), (datetime.date(2026, 11, 27), 5)]
    assert cloud.warehouse.execute("SELECT COUNT(*) FROM qualified_leads") is not None  # the composed DAG's table


def test_seed_without_a_running_sandbox_is_one_line(tmp_path, capsys):
    assert main(["--endpoints", str(tmp_path / "endpoints.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"seed: cannot read the sandbox's endpoints from {tmp_path}")
