"""Refused contract files, shown in the code location instead of taking it down.

A broken contract must not take the other teams' entities off line, yet must be loud where engineers
look: each refused file becomes an asset in the `refused_contracts` group whose description is the
error (file, key, fix), and a sensor named for the file, on by default, whose every tick fails with
that error. `python -m cli contracts validate` refuses the same files in CI, before a deploy.
"""

from __future__ import annotations

import re
from pathlib import Path

from dagster import AssetKey, AssetSpec, DefaultSensorStatus, SensorDefinition, SensorEvaluationContext, sensor

from platform_assets.lib.contract import ContractError, RefusedContract

GROUP = "refused_contracts"


def _name(refused: RefusedContract) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", Path(refused.path).stem)


def refused_contract_key(refused: RefusedContract) -> AssetKey:
    return AssetKey([GROUP, f"refused_{_name(refused)}"])


def refused_contract_specs(refused: list[RefusedContract]) -> list[AssetSpec]:
    return [
        AssetSpec(
            refused_contract_key(contract),
            description=f"REFUSED: this contract is not loaded, so its entity has no assets. {contract.error}",
            group_name=GROUP,
            kinds={"yaml"},
            metadata={"file": contract.path, "error": contract.error},
        )
        for contract in refused
    ]


def refused_contract_sensors(refused: list[RefusedContract], interval_s: int) -> list[SensorDefinition]:
    return [_failing_sensor(contract, interval_s) for contract in refused]


def _failing_sensor(refused: RefusedContract, interval_s: int) -> SensorDefinition:
    @sensor(
        name=f"refused_contract_{_name(refused)}",
        description=f"Fails while {refused.path} is refused: {refused.error}",
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def refused_contract_sensor(context: SensorEvaluationContext):
        raise ContractError(refused.error)

    return refused_contract_sensor
