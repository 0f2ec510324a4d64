"""Data quality: the rules generated from a contract, and running them with Great Expectations 1.x.

The rules are Great Expectations expectation types, so a contract can add its own by name
(`quality.expectations: [{type: expect_column_values_to_be_between, kwargs: {...}}]`). `checks.py`
turns the outcomes into Dagster asset check results. Great Expectations is imported on first use:
the import takes seconds and most processes that load the code location never validate anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any

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
    """Validate each rule on its own, so every outcome is tied to its rule whatever GX's suite order."""
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    outcomes = []
    for rule in rules:
        checked = batch.validate(_expectation(rule))
        details = checked.result or {}
        outcomes.append(
            Outcome(
                rule=rule,
                success=bool(checked.success),
                unexpected_count=int(details.get("unexpected_count") or 0),
                element_count=int(details.get("element_count") or len(frame)),
                sample=[str(v) for v in (details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]],
            )
        )
    return outcomes
