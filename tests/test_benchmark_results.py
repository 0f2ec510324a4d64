"""`--cases` reruns update their own entries of latest.json and keep the others' figures."""

import json
from dataclasses import replace

import pytest

from benchmarks.__main__ import Result, markdown_table, merged_results

pytestmark = pytest.mark.unit


def result(case: str, seconds: float) -> Result:
    return Result(case, "size", seconds, 1.0, "baseline", 2.0, seconds / 2.0, "<= 1.0", True)


def test_a_rerun_of_some_cases_replaces_their_entries_and_keeps_the_rest(tmp_path):
    path = tmp_path / "latest.json"
    path.write_text(json.dumps(merged_results(path, {"merge": result("m", 1.0), "hour": result("h", 3.0)}, False)))

    rerun = merged_results(path, {"hour": result("h", 4.0), "merge-10x": result("m", 5.0)}, True)

    assert [(r["name"], r["seconds"]) for r in rerun] == [("merge", 1.0), ("hour", 4.0), ("merge-10x", 5.0)]
    assert all(r["measured_at"] for r in rerun)


def test_a_full_run_replaces_the_whole_file(tmp_path):
    path = tmp_path / "latest.json"
    path.write_text(json.dumps(merged_results(path, {"merge": result("m", 1.0)}, False)))

    assert [r["name"] for r in merged_results(path, {"hour": result("h", 3.0)}, False)] == ["hour"]


def test_the_table_shows_the_baselines_own_growth_where_the_baseline_scales_with_the_work():
    merge = replace(result("merge", 10.0), half_seconds=4.0, growth=2.5, growth_met=False, half_baseline_seconds=0.8)
    hour = replace(result("hour", 40.0), baseline_seconds=3600.0, half_seconds=20.0, growth=2.0, growth_met=True)
    hour = replace(hour, half_baseline_seconds=3600.0)  # an hour of real time at both sizes

    merge_row, hour_row = markdown_table([merge, hour]).splitlines()[2:]

    assert merge_row.endswith("4.00 s → 10.00 s: 2.50 **not met** (baseline 2.50) |")
    assert hour_row.endswith("20.00 s → 40.00 s: 2.00 |")
