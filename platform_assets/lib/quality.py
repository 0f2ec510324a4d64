"""The quality rules generated from a contract, as plain data (expectation name + arguments).

The rules are Great Expectations expectation types so a contract can add its own by name
(`quality.expectations: [{type: expect_column_values_to_be_between, kwargs: {...}}]`); running
them is the job of `resources.quality`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from platform_assets.lib.contract import Contract


@dataclass(frozen=True)
class Rule:
    expectation: str
    kwargs: dict[str, Any]

    def describe(self) -> str:
        arguments = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.expectation}({arguments})"


def _identity_columns(contract: Contract) -> list[str]:
    return [*contract.key, contract.sequence, contract.event_time]


def raw_rules(contract: Contract) -> list[Rule]:
    """Every change carries its identity; declared values are accepted; the contract's own rules hold."""
    rules = [Rule("expect_column_values_to_not_be_null", {"column": c}) for c in _identity_columns(contract)]
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
