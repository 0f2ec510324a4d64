"""Data quality: the rules generated from a contract, and running them with Great Expectations 1.x.

The rules are Great Expectations expectation types, so a contract can add its own by name
(`quality.expectations: [{type: expect_column_values_to_be_between, kwargs: {...}}]`). `checks.py`
turns the outcomes into Dagster asset check results. The rules generated for every contract, and
the usual range rule, are computed directly (see `validate`); Great Expectations runs every other
expectation and is imported on first use: the import takes seconds and most processes never need it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, reduce
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from platform_assets.lib.contract import Contract
from platform_assets.lib.records import TRUNCATE
from resources.spark import use_client_only_spark_home

SAMPLE_SIZE = 5


@dataclass(frozen=True)
class Rule:
    expectation: str
    kwargs: dict[str, Any]

    def describe(self) -> str:
        arguments = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.expectation}({arguments})"


@dataclass(frozen=True)
class Outcome:
    rule: Rule
    success: bool
    unexpected_count: int
    element_count: int
    sample: list[Any]


def _identity_columns(contract: Contract) -> list[str]:
    """Columns every change has; an envelope position may be null (e.g. a snapshot row's change LSN)."""
    sequence = [name for name in contract.sequence if name in contract.identity_fields]
    return [*contract.key, *sequence, contract.event_time_column]


def _keyed_rows(contract: Contract, column: str) -> dict[str, str]:
    """A truncate has no key: key rules apply to the other rows."""
    if column not in contract.key or not contract.orders_by_source_position:
        return {}
    return {"row_condition": f'_op!="{TRUNCATE}"', "condition_parser": "pandas"}


def raw_rules(contract: Contract) -> list[Rule]:
    """Every change carries its identity; declared values are accepted; the contract's own rules hold."""
    rules = [
        Rule("expect_column_values_to_not_be_null", {"column": c, **_keyed_rows(contract, c)})
        for c in _identity_columns(contract)
    ]
    rules += [Rule("expect_column_to_exist", {"column": spec.name}) for spec in contract.stored_fields]
    rules += [
        Rule("expect_column_values_to_be_in_set", {"column": spec.name, "value_set": list(spec.accepted_values)})
        for spec in contract.stored_fields
        if spec.accepted_values is not None and spec.pii is None
    ]
    rules += [Rule(str(e["type"]), dict(e.get("kwargs", {}))) for e in contract.quality.expectations]
    return rules


def history_rules(contract: Contract) -> list[Rule]:
    """One row per key per day, and every row has its key."""
    return [
        Rule("expect_compound_columns_to_be_unique", {"column_list": ["snapshot_date", *contract.key]}),
        *(Rule("expect_column_values_to_not_be_null", {"column": c}) for c in contract.key),
    ]


def _import_great_expectations() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    use_client_only_spark_home()
    import great_expectations

    return great_expectations


@cache
def _batch_definition() -> Any:
    gx = _import_great_expectations()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("partition")
    return source.add_dataframe_asset("rows").add_batch_definition_whole_dataframe("whole")


def _expectation(rule: Rule) -> Any:
    gx = _import_great_expectations()

    class_name = "".join(part.capitalize() for part in rule.expectation.split("_"))
    expectation_class = getattr(gx.expectations, class_name, None)
    if expectation_class is None:
        raise ValueError(f"unknown expectation `{rule.expectation}`; see the Great Expectations gallery for names")
    return expectation_class(**rule.kwargs)


def validate(frame: Any, rules: list[Rule]) -> list[Outcome]:
    """Validate every rule, each outcome tied to its rule. The rules the platform generates from every
    contract, and the usual range rule of a contract's own, are computed directly on the frame
    (BUILT_IN, same results as Great Expectations); every other rule goes through Great Expectations,
    so a contract without such rules never imports it (importing it costs 4-5 s in every run process,
    and building its context once cost 21-25 s; the built-ins take milliseconds)."""
    built_in = [_built_in_outcome(frame, rule) for rule in rules]
    for_great_expectations = [rule for rule, outcome in zip(rules, built_in, strict=True) if outcome is None]
    batch = None
    outcomes = []
    for rule, outcome in zip(rules, built_in, strict=True):
        if outcome is None:
            if batch is None:
                batch = great_expectations_batch(_columns_for_great_expectations(frame, for_great_expectations))
            outcome = great_expectations_outcome(batch, frame, rule)
        outcomes.append(outcome)
    return outcomes


def _built_in_outcome(frame: Any, rule: Rule) -> Outcome | None:
    """The rule's outcome computed directly, or None where Great Expectations must judge it: a rule
    with an argument the built-in does not read (`mostly`, `result_format`, ...), or values the
    built-in does not compare (see `_between`)."""
    built_in = BUILT_IN.get(rule.expectation)
    if built_in is None or not rule.kwargs.keys() <= built_in.arguments:
        return None
    return built_in.judge(frame, rule)


# The arguments by which an expectation of columns names them.
_COLUMN_ARGUMENTS = ("column", "column_A", "column_B", "column_list")


def _columns_for_great_expectations(frame: Any, rules: list[Rule]) -> Any:
    """`frame` with only the columns the rules (those Great Expectations judges) name: GE fingerprints
    every batch by hashing the whole frame (3 s of a raw hour of 700k changes, for one contract
    expectation on `amount`)."""
    named = _named_columns(rules)
    return frame if named is None else frame[[column for column in frame.columns if column in named]]


def _named_columns(rules: list[Rule]) -> set[str] | None:
    """The columns `rules` read, when each is about named columns alone; None when one may read any
    column (a table expectation, or a row condition)."""
    named: set[str] = set()
    for rule in rules:
        about_columns = rule.expectation.startswith(("expect_column_", "expect_multicolumn_", "expect_compound_"))
        columns = [rule.kwargs[argument] for argument in _COLUMN_ARGUMENTS if argument in rule.kwargs]
        if not about_columns or "row_condition" in rule.kwargs or not columns:
            return None
        for column in columns:
            named.update(column if isinstance(column, list) else [column])
    return named


def validate_table(table: pa.Table, rules: list[Rule]) -> list[Outcome]:
    """`validate` on an Arrow table. A built-in rule that Arrow finds holding is passed there (what
    nearly every run finds: converting 700k keys to pandas to find them unique cost 1 s of a 1M-event
    hour's `history`, as much of its `raw`); the other rules are judged on pandas, so a failure gets
    the same counts and samples as ever."""
    held = {index: outcome for index, rule in enumerate(rules) if (outcome := _held_in_arrow(table, rule)) is not None}
    judged = iter(_validate_on_pandas(table, [rule for index, rule in enumerate(rules) if index not in held]))
    return [held[index] if index in held else next(judged) for index in range(len(rules))]


def _validate_on_pandas(table: pa.Table, rules: list[Rule]) -> list[Outcome]:
    """`validate` on the table's columns the rules read as pandas (all of a raw hour's 14 columns took
    1.2 s of 714k changes, most of them read by no rule)."""
    if not rules:
        return []
    named = _named_columns(rules)
    if named is not None:
        table = table.select([column for column in table.column_names if column in named])
    return validate(table.to_pandas(), rules)


def _held_in_arrow(table: pa.Table, rule: Rule) -> Outcome | None:
    """The outcome of a built-in rule (see BUILT_IN) on a table where Arrow shows that it holds; None
    where it may not hold, or Arrow cannot tell as pandas would (NaN, values of another type)."""
    built_in = BUILT_IN.get(rule.expectation)
    if built_in is None or not rule.kwargs.keys() <= built_in.arguments or "row_condition" in rule.kwargs:
        return None
    holds = Outcome(rule, True, 0, table.num_rows, [])
    if rule.expectation == "expect_column_to_exist":
        return holds if rule.kwargs["column"] in table.column_names else None
    named = rule.kwargs.get("column_list") or [rule.kwargs["column"]]
    if not set(named) <= set(table.column_names) or any(pa.types.is_floating(table[c].type) for c in named):
        return None  # a missing column, or NaN, which pandas takes for null
    values = table[named[0]]
    try:
        if rule.expectation == "expect_column_values_to_not_be_null":
            return holds if values.null_count == 0 else None
        if rule.expectation == "expect_column_values_to_be_in_set":
            accepted = pa.array(list(rule.kwargs["value_set"]), values.type)
            return (
                holds if pc.all(pc.or_(pc.is_null(values), pc.is_in(values, accepted))).as_py() is not False else None
            )
        if rule.expectation == "expect_compound_columns_to_be_unique":
            counts = table.select(named).group_by(named).aggregate([([], "count_all")])
            repeated = counts.filter(pc.greater(counts["count_all"], 1))
            # Rows whose columns are all missing are not judged (as `_compound_unique`).
            all_missing = reduce(pc.and_, [pc.is_null(repeated[column]) for column in named])
            return holds if repeated.num_rows == 0 or pc.all(all_missing).as_py() else None
        return _between_in_arrow(values, rule, holds)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError, OverflowError):
        return None  # values Arrow does not compare as pandas would: pandas judges


def _between_in_arrow(values: pa.ChunkedArray, rule: Rule, holds: Outcome) -> Outcome | None:
    low, high = rule.kwargs.get("min_value"), rule.kwargs.get("max_value")
    bounds = [bound for bound in (low, high) if bound is not None]
    kind = values.type
    exact = all(isinstance(bound, int | Decimal) and not isinstance(bound, bool) for bound in bounds)
    if not bounds or not exact or not (pa.types.is_integer(kind) or pa.types.is_decimal(kind)):
        return None  # a float bound compares as pandas compares it there
    inside = []
    if low is not None:
        inside.append((pc.greater if rule.kwargs.get("strict_min") else pc.greater_equal)(values, pa.scalar(low, kind)))
    if high is not None:
        inside.append((pc.less if rule.kwargs.get("strict_max") else pc.less_equal)(values, pa.scalar(high, kind)))
    every = pc.and_(*inside) if len(inside) == 2 else inside[0]
    return holds if pc.all(every).as_py() is not False else None  # nulls are not judged


def great_expectations_outcome(batch: Any, frame: Any, rule: Rule) -> Outcome:
    """One rule validated by Great Expectations on a batch of `frame`."""
    checked = batch.validate(_expectation(rule))
    details = checked.result or {}
    return Outcome(
        rule=rule,
        success=bool(checked.success),
        unexpected_count=int(details.get("unexpected_count") or 0),
        element_count=int(details.get("element_count") or len(frame)),
        sample=[str(v) for v in (details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]],
    )


def great_expectations_batch(frame: Any) -> Any:
    return _batch_definition().get_batch(batch_parameters={"dataframe": frame})


def _missing(frame: Any, rule: Rule, columns: list[str]) -> Outcome | None:
    absent = [column for column in columns if column not in frame.columns]
    if not absent:
        return None
    return Outcome(rule, False, len(frame), len(frame), [f"column `{column}` is missing" for column in absent])


def _from_mask(frame: Any, rule: Rule, unexpected: Any, values: Any) -> Outcome:
    count = int(unexpected.sum())
    sample = [str(v) for v in values[unexpected].head(SAMPLE_SIZE).tolist()]
    return Outcome(rule, count == 0, count, len(frame), sample)


def _column_exists(frame: Any, rule: Rule) -> Outcome:
    return Outcome(rule, rule.kwargs["column"] in frame.columns, 0, len(frame), [])


def _judged_rows(frame: Any, rule: Rule) -> Any:
    """The rows a rule judges: those its `row_condition` selects (pandas syntax, as Great Expectations
    reads it with `condition_parser: pandas`), or all of them."""
    condition = rule.kwargs.get("row_condition")
    return frame if condition is None else frame.query(condition)


def _not_null(frame: Any, rule: Rule) -> Outcome:
    column = rule.kwargs["column"]
    if missing := _missing(frame, rule, [column]):
        return missing
    judged = _judged_rows(frame, rule)
    return _from_mask(judged, rule, judged[column].isna(), judged[column])


def _in_set(frame: Any, rule: Rule) -> Outcome:
    column = rule.kwargs["column"]
    if missing := _missing(frame, rule, [column]):
        return missing
    values = frame[column]
    return _from_mask(frame, rule, values.notna() & ~values.isin(list(rule.kwargs["value_set"])), values)


def _compound_unique(frame: Any, rule: Rule) -> Outcome:
    columns = list(rule.kwargs["column_list"])
    if missing := _missing(frame, rule, columns):
        return missing
    # As Great Expectations by default: rows whose columns are all missing are not judged.
    judged = frame[columns][~frame[columns].isna().all(axis=1)]
    duplicated = judged.duplicated(keep=False)
    rows = judged[duplicated].head(SAMPLE_SIZE).to_dict("records")
    count = int(duplicated.sum())
    return Outcome(rule, count == 0, count, len(frame), [str(row) for row in rows])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _between(frame: Any, rule: Rule) -> Outcome | None:
    """`expect_column_values_to_be_between` on numbers with number bounds (nulls and NaN not judged);
    None for anything else (text, times, bounds GX refuses), which Great Expectations judges."""
    import pandas as pd  # a frame's own library, not imported by a code location that validates nothing

    column = rule.kwargs["column"]
    low, high = rule.kwargs.get("min_value"), rule.kwargs.get("max_value")
    bounds = [bound for bound in (low, high) if bound is not None]
    if not bounds or not all(map(_is_number, bounds)) or (low is not None and high is not None and low > high):
        return None
    if missing := _missing(frame, rule, [column]):
        return missing
    judged = _judged_rows(frame, rule)
    values = judged[column]
    present = values.notna()
    numbers = values[present]
    if numbers.dtype.kind not in "iuf" and not (numbers.dtype == object and all(map(_is_number, numbers))):
        return None
    inside = pd.Series(True, index=numbers.index)
    if low is not None:
        inside &= numbers > low if rule.kwargs.get("strict_min") else numbers >= low
    if high is not None:
        inside &= numbers < high if rule.kwargs.get("strict_max") else numbers <= high
    unexpected = pd.Series(False, index=values.index)
    unexpected[present] = (~inside).to_numpy()  # by position: a Series would be aligned (and upcast) first
    return _from_mask(judged, rule, unexpected, values)


@dataclass(frozen=True)
class BuiltIn:
    """A rule computed without Great Expectations, for the arguments it reads."""

    judge: Callable[[Any, Rule], Outcome | None]
    arguments: frozenset[str]


_ROW_CONDITION = ("row_condition", "condition_parser")
BUILT_IN = {
    "expect_column_to_exist": BuiltIn(_column_exists, frozenset({"column"})),
    "expect_column_values_to_not_be_null": BuiltIn(_not_null, frozenset({"column", *_ROW_CONDITION})),
    "expect_column_values_to_be_in_set": BuiltIn(_in_set, frozenset({"column", "value_set"})),
    "expect_compound_columns_to_be_unique": BuiltIn(_compound_unique, frozenset({"column_list"})),
    "expect_column_values_to_be_between": BuiltIn(
        _between, frozenset({"column", "min_value", "max_value", "strict_min", "strict_max", *_ROW_CONDITION})
    ),
}
