"""`--cases` reruns update their own entries of latest.json and keep the others' figures."""

import json

import pytest

from benchmarks.__main__ import Result, merged_results

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
