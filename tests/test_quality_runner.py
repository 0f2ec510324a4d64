"""Great Expectations and the Spark Connect client work in a fresh process without a Spark home (as a
Dagster run process started by the daemon is), not only inside a test session that set things up first."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[1]
VALIDATE = """
import json
import pandas as pd
from platform_assets.quality import Rule, validate
outcomes = validate(pd.DataFrame({"a": [1, None, 3]}), [
    Rule("expect_column_values_to_not_be_null", {"column": "a"}),
    Rule("expect_column_values_to_be_between", {"column": "a", "min_value": 0}),
])
print(json.dumps([[o.success, o.unexpected_count, o.element_count] for o in outcomes]))
"""
SPARK = """
from resources.spark import SparkResource
print(SparkResource().session().range(3).count())
"""


def last_line_of_fresh_process(program: str, directory: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "SPARK_HOME"}
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=directory,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_validation_in_a_fresh_process(tmp_path):
    assert json.loads(last_line_of_fresh_process(VALIDATE, tmp_path)) == [[False, 1, 3], [True, 0, 3]]


def test_a_spark_session_in_a_fresh_process(tmp_path):
    assert last_line_of_fresh_process(SPARK, tmp_path) == "3"
