"""What every asset of one entity's chain shares, so the UI groups, filters and attributes them alike."""

from __future__ import annotations

from typing import Any

from platform_assets.lib.contract import Contract


def entity_asset_properties(contract: Contract, layer: str) -> dict[str, Any]:
    """Group, owners and tags of the entity's asset in `layer` (keyword arguments of `@asset` and `AssetSpec`)."""
    return {
        "group_name": contract.name,
        "owners": [f"team:{contract.owner}"] if contract.owner else None,
        "tags": {"layer": layer, "entity": contract.name},
    }


def lake_pool(contract: Contract, layer: str) -> str:
    """The concurrency pool of the lake table an asset writes: one writer at a time per Delta table."""
    return f"lake_{layer}_{contract.name}"
