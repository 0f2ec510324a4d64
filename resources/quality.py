"""Runs quality rules with Great Expectations 1.x on a pandas frame (one partition's rows).

Great Expectations is imported on first use: the import takes seconds and most processes that load
the code location never validate anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any

from platform_assets.lib.quality import Rule
from resources.spark import use_client_only_spark_home

SAMPLE_SIZE = 5


@dataclass(frozen=True)
class Outcome:
    rule: Rule
    success: bool
    unexpected_count: int
    element_count: int
    sample: list[Any]


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
