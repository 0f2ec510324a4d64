"""Great Expectations and the Spark Connect client work in a fresh process without a Spark home (as a
Dagster run process started by the daemon is), not only inside a test session that set things up first."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = """
import json
import pandas as pd
from platform_assets.lib.quality import Rule
from resources.quality import validate
outcomes = validate(pd.DataFrame({"a": [1, None, 3]}), [
    Rule("expect_column_values_to_not_be_null", {"column": "a"}),
    Rule("expect_column_values_to_be_between", {"column": "a", "min_value": 0}),
])
print(json.dumps([[o.success, o.unexpected_count, o.element_count] for o in outcomes]))
"""


def test_validation_in_a_fresh_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SPARK_HOME"}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [[False, 1, 3], [True, 0, 3]]


SPARK_PROGRAM = """
from resources.spark import SparkResource
print(SparkResource().session().range(3).count())
"""


def test_a_spark_session_in_a_fresh_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SPARK_HOME"}
    done = subprocess.run(
        [sys.executable, "-c", SPARK_PROGRAM],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "3"
