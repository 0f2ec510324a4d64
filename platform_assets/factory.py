"""One asset chain per contract: adding a YAML file to `contracts/` adds the whole chain."""

from __future__ import annotations

from dagster import AssetsDefinition

from platform_assets.current import build_current_asset
from platform_assets.history import build_history_asset
from platform_assets.landing import build_landing_asset
from platform_assets.lib.contract import Contract
from platform_assets.partitions import DEFAULT_PARTITIONS, Partitions
from platform_assets.raw import build_raw_assets
from platform_assets.scd2 import build_scd2_asset
from platform_assets.snapshot import build_snapshot_asset


def entity_assets(contract: Contract, partitions: Partitions = DEFAULT_PARTITIONS) -> list[AssetsDefinition]:
    chain = [
        build_landing_asset(contract, partitions),
        build_raw_assets(contract, partitions),
        build_current_asset(contract, partitions),
        build_history_asset(contract, partitions),
        build_scd2_asset(contract, partitions),
    ]
    if contract.snapshot_url:
        chain.append(build_snapshot_asset(contract, partitions))
    return chain
