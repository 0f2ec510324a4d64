"""Great Expectations and the Spark Connect client work in a fresh process without a Spark home (as a
Dagster run process started by the daemon is), not only inside a test session that set things up first."""

import json
import os
import subprocess
import sys
import warnings
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platform_assets.quality import (
    BUILT_IN,
    Rule,
    _columns_for_great_expectations,
    great_expectations_batch,
    great_expectations_outcome,
    validate,
    validate_table,
)

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
CHECKPOINT = """
from pathlib import Path
from resources.spark import SparkResource
kept = SparkResource().session().range(5).selectExpr("id * 2 AS twice").localCheckpoint()
print(sum(1 for _ in Path(".").glob("tmp/sail-checkpoints-*/**/*.parquet")), kept.count())
"""


def last_line_of_fresh_process(program: str, directory: Path, environment: dict[str, str] | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_HOME", "SAIL_EXECUTION__CHECKPOINT__PATH")}
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=directory,
        env={**env, "PYTHONPATH": str(ROOT), **(environment or {})},
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


def test_the_embedded_sail_checkpoints_in_a_directory_of_its_own_removed_at_exit(tmp_path):
    """The merges checkpoint what they use twice; Sail refuses a checkpoint without a path, so the
    embedded server gets a temporary directory, and its files go with the process."""
    (tmp_path / "tmp").mkdir()
    written, rows = last_line_of_fresh_process(CHECKPOINT, tmp_path, {"TMPDIR": str(tmp_path / "tmp")}).split()
    assert int(written) > 0 and rows == "5"
    assert not list((tmp_path / "tmp").glob("sail-checkpoints-*"))


EDGE_CASES = pd.DataFrame(
    {
        "id": ["a", "b", "b", None, "c", "d"],
        "day": ["d1", "d1", "d1", None, "d2", "d2"],
        "segment": ["standard", "gold", None, "premium", "gold", "business"],
        "amount": [1.0, None, 3.0, float("nan"), 5.0, 6.0],
        "_op": ["create", "update", "update", "truncate", "create", "delete"],
    }
)
BUILT_IN_RULES = [
    Rule("expect_column_values_to_not_be_null", {"column": "id"}),
    Rule("expect_column_values_to_not_be_null", {"column": "amount"}),
    # A truncate carries no key: key rules judge the other rows (as raw's rules for Debezium contracts).
    Rule(
        "expect_column_values_to_not_be_null",
        {"column": "id", "row_condition": '_op!="truncate"', "condition_parser": "pandas"},
    ),
    Rule("expect_column_to_exist", {"column": "segment"}),
    Rule("expect_column_to_exist", {"column": "absent"}),
    Rule("expect_column_values_to_be_in_set", {"column": "segment", "value_set": ["standard", "premium", "business"]}),
    Rule("expect_compound_columns_to_be_unique", {"column_list": ["day", "id"]}),
    # The contracts' usual own rule (card_transactions: `amount` >= 0), computed without GX too.
    Rule("expect_column_values_to_be_between", {"column": "amount", "min_value": 2}),
    Rule("expect_column_values_to_be_between", {"column": "amount", "max_value": 5, "strict_max": True}),
    Rule(
        "expect_column_values_to_be_between", {"column": "amount", "min_value": 1, "max_value": 5, "strict_min": True}
    ),
    Rule(
        "expect_column_values_to_be_between",
        {"column": "amount", "min_value": 4, "row_condition": '_op!="create"', "condition_parser": "pandas"},
    ),
]


@pytest.mark.parametrize("rule", BUILT_IN_RULES, ids=lambda rule: rule.describe())
def test_built_in_rules_agree_with_great_expectations(rule):
    """The rules computed without Great Expectations give its verdict, counts and samples."""
    assert rule.expectation in BUILT_IN
    batch = great_expectations_batch(EDGE_CASES)
    assert BUILT_IN[rule.expectation].judge(EDGE_CASES, rule) == great_expectations_outcome(batch, EDGE_CASES, rule)


MONEY = pa.table(
    {
        "amount": pa.array(
            [Decimal("0.10"), None, Decimal("-40.00"), Decimal("12.00"), Decimal("9999999999.99")],
            pa.decimal128(12, 2),
        ),
        "count": pa.array([3, 0, None, -2, 7], pa.int64()),
        "at": pa.array([datetime(2026, 1, day, tzinfo=UTC) for day in (1, 2, 3, 4, 5)], pa.timestamp("us", "UTC")),
    }
).to_pandas()


@pytest.mark.parametrize(
    "rule",
    [
        Rule("expect_column_values_to_be_between", {"column": "amount", "min_value": 0}),
        Rule("expect_column_values_to_be_between", {"column": "amount", "min_value": 0, "max_value": 12}),
        Rule("expect_column_values_to_be_between", {"column": "amount", "max_value": 12, "strict_max": True}),
        Rule("expect_column_values_to_be_between", {"column": "count", "min_value": 0, "strict_min": True}),
        # Times: compared by Great Expectations itself.
        Rule("expect_column_values_to_be_between", {"column": "at", "min_value": datetime(2026, 1, 3, tzinfo=UTC)}),
    ],
    ids=lambda rule: rule.describe(),
)
def test_a_range_rule_on_decimals_and_nullable_integers_agrees_with_great_expectations(rule):
    """Money arrives in pandas as Decimal objects and a nullable integer column as floats with NaN."""
    [outcome] = validate(MONEY, [rule])
    assert outcome == great_expectations_outcome(great_expectations_batch(MONEY), MONEY, rule)


@pytest.mark.parametrize(
    "rule",
    [
        # `mostly`: two of six ids are null, which GX accepts at 0.5; the built-in rule knows no `mostly`.
        Rule("expect_column_values_to_not_be_null", {"column": "amount", "mostly": 0.5}),
        Rule("expect_column_values_to_be_between", {"column": "amount", "min_value": 2, "mostly": 0.5}),
    ],
    ids=lambda rule: rule.describe(),
)
def test_a_rule_with_arguments_the_built_in_rules_do_not_read_gets_great_expectations_verdict(rule):
    [outcome] = validate(EDGE_CASES, [rule])
    assert outcome == great_expectations_outcome(great_expectations_batch(EDGE_CASES), EDGE_CASES, rule)


@pytest.mark.parametrize(
    "extra",
    [
        [],
        [Rule("expect_table_row_count_to_be_between", {"min_value": 1})],
        [next(rule for rule in BUILT_IN_RULES if "row_condition" in rule.kwargs)],
    ],
)
def test_a_table_is_judged_as_its_whole_frame_is(extra):
    """Only the columns the rules read become pandas; the outcomes, a missing column's included, are
    those of the whole frame (a table rule or a row condition gets every column)."""
    table = pa.Table.from_pandas(EDGE_CASES, preserve_index=False)
    by_columns = [rule for rule in BUILT_IN_RULES if "row_condition" not in rule.kwargs]
    rules = [*by_columns, Rule("expect_column_to_exist", {"column": "absent"}), *extra]
    assert validate_table(table, rules) == validate(EDGE_CASES, rules)


# Columns of every kind the built-in rules meet, with nulls, NaN and values that break each rule.
TABLE_COLUMNS = {
    "id": (pa.string(), st.sampled_from(["a", "b", None])),
    "day": (pa.date32(), st.sampled_from([date(2026, 1, 1), date(2026, 1, 2), None])),
    "segment": (pa.string(), st.sampled_from(["standard", "gold", None])),
    "price": (pa.decimal128(12, 2), st.sampled_from([Decimal("-1.50"), Decimal("0.00"), Decimal("2.25"), None])),
    "count": (pa.int64(), st.sampled_from([-3, 0, 4, None])),
    "amount": (pa.float64(), st.sampled_from([1.0, float("nan"), None, -2.0])),
}
TABLE_RULES = [
    *(Rule("expect_column_values_to_not_be_null", {"column": column}) for column in TABLE_COLUMNS),
    Rule("expect_column_to_exist", {"column": "id"}),
    Rule("expect_column_to_exist", {"column": "absent"}),
    Rule("expect_column_values_to_not_be_null", {"column": "absent"}),
    Rule("expect_column_values_to_be_in_set", {"column": "segment", "value_set": ["standard", "gold"]}),
    Rule("expect_column_values_to_be_in_set", {"column": "segment", "value_set": ["standard"]}),
    Rule("expect_column_values_to_be_in_set", {"column": "count", "value_set": [0, 4]}),
    Rule("expect_column_values_to_be_in_set", {"column": "count", "value_set": ["0"]}),
    Rule("expect_compound_columns_to_be_unique", {"column_list": ["day", "id"]}),
    Rule("expect_compound_columns_to_be_unique", {"column_list": ["id"]}),
    Rule("expect_compound_columns_to_be_unique", {"column_list": ["count", "price"]}),
    Rule("expect_column_values_to_be_between", {"column": "price", "min_value": 0}),
    Rule("expect_column_values_to_be_between", {"column": "price", "min_value": Decimal("0.00"), "strict_min": True}),
    Rule("expect_column_values_to_be_between", {"column": "price", "min_value": 0.5}),
    Rule("expect_column_values_to_be_between", {"column": "count", "max_value": 4, "strict_max": True}),
    Rule("expect_column_values_to_be_between", {"column": "count", "min_value": 0, "max_value": 4}),
    Rule("expect_column_values_to_be_between", {"column": "amount", "min_value": 0}),
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({name: values for name, (_, values) in TABLE_COLUMNS.items()}), max_size=8))
def test_a_table_gets_the_outcomes_of_its_frame_whether_arrow_or_pandas_judges(rows):
    """`validate_table` passes in Arrow the built-in rules that hold there, and sends the others to
    pandas: every outcome must be the one `validate` gives on the whole frame."""
    table = pa.Table.from_pylist(rows, pa.schema([(name, kind) for name, (kind, _) in TABLE_COLUMNS.items()]))
    assert validate_table(table, TABLE_RULES) == validate(table.to_pandas(), TABLE_RULES)


def test_a_range_on_decimals_sets_nothing_a_later_pandas_refuses():
    """The range rule wrote its verdicts into a boolean Series through index alignment, an upcast pandas
    deprecates (a FutureWarning now, an error in a later pandas)."""
    rule = Rule("expect_column_values_to_be_between", {"column": "price", "min_value": 0})
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        [outcome] = validate(pd.DataFrame({"price": [Decimal("1.5"), None, Decimal("-2")]}), [rule])
    assert (outcome.success, outcome.unexpected_count, outcome.sample) == (False, 1, ["-2"])


def test_a_rule_on_a_missing_column_fails_and_names_it():
    [outcome] = validate(EDGE_CASES, [Rule("expect_column_values_to_not_be_null", {"column": "absent"})])
    assert not outcome.success and outcome.sample == ["column `absent` is missing"]


def test_great_expectations_judge_a_column_rule_on_that_column_and_a_row_condition_on_the_whole_frame():
    """Great Expectations gets only the columns its rules name (it hashes every batch whole), unless a
    rule may read others: the outcomes are those of the whole frame either way."""
    frame = pd.DataFrame({"amount": [5, -1, 7, -3], "currency": ["EUR", "EUR", "USD", "USD"], "note": ["a"] * 4})
    between = Rule("expect_column_values_to_be_between", {"column": "amount", "min_value": 0})
    conditional = Rule(
        "expect_column_values_to_be_between",
        {"column": "amount", "min_value": 0, "row_condition": 'currency=="EUR"', "condition_parser": "pandas"},
    )
    assert list(_columns_for_great_expectations(frame, [between]).columns) == ["amount"]
    assert _columns_for_great_expectations(frame, [between, conditional]) is frame
    whole = great_expectations_batch(frame)
    for rules in ([between], [between, conditional]):
        assert validate(frame, rules) == [great_expectations_outcome(whole, frame, rule) for rule in rules]
    assert [(o.success, o.unexpected_count) for o in validate(frame, [conditional])] == [(False, 1)]


def test_a_range_expectation_judges_a_decimal_column():
    """Money is decimal(12, 2): Arrow hands pandas its values as Decimal objects, which Great Expectations
    compares with a contract's bounds as numbers (card_transactions expects `amount` >= 0)."""
    amounts = pa.array([Decimal("0.10"), None, Decimal("-40.00"), Decimal("9999999999.99")], pa.decimal128(12, 2))
    frame = pa.table({"amount": amounts}).to_pandas()
    [outcome] = validate(frame, [Rule("expect_column_values_to_be_between", {"column": "amount", "min_value": 0})])
    assert (outcome.success, outcome.unexpected_count, outcome.element_count) == (False, 1, 4)
    assert outcome.sample == ["-40.00"]


def test_a_sail_server_without_a_checkpoint_path_is_refused_with_the_setting_to_give_it(monkeypatch):
    """A Sail server in a cluster must be given a checkpoint path; the merges say which and how."""
    from pysail.spark import SparkConnectServer

    from resources.spark import SparkResource, stop_session
    from spark.cdc import CheckpointPathMissingError, checkpointed

    monkeypatch.delenv("SAIL_EXECUTION__CHECKPOINT__PATH", raising=False)
    server = SparkConnectServer("127.0.0.1", 0)
    server.start(background=True)
    remote = f"sc://127.0.0.1:{server.listening_address[1]}"
    try:
        session = SparkResource(remote=remote).session()
        with pytest.raises(CheckpointPathMissingError, match="SAIL_EXECUTION__CHECKPOINT__PATH"):
            checkpointed(session.range(3))
    finally:
        stop_session(remote)
        server.stop()
