"""Check the contracts before they are deployed: every file is loaded and validated as the code location
would, and every mistake is printed with its file, key and fix.

    python -m cli contracts validate [DIRECTORY]     # exit status 1 when any contract is refused
    python -m cli contracts migrate --entity NAME    # rebuild an entity's tables after a breaking change

`validate` also compares each contract with the tables the lake holds (PLATFORM_LAKE_ROOT) and refuses
a change they cannot follow in place; `migrate` is that change's way forward (see README, Contract
changes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from platform_assets.entity import contract_changes_refused
from platform_assets.lib.contract import Contract, read_contracts
from platform_assets.settings import PlatformSettings
from resources.lake import LakeResource


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    validate = actions.add_parser("validate", help="load and check every contract")
    validate.add_argument("directory", nargs="?", type=Path, help="default: PLATFORM_CONTRACTS_DIR or contracts/")
    migrate = actions.add_parser("migrate", help="rebuild an entity's tables from the archive with its contract")
    migrate.add_argument("--entity", required=True)


def run(args: argparse.Namespace) -> None:
    directory = getattr(args, "directory", None) or PlatformSettings.from_env().contracts_dir
    contracts, refused = read_contracts(directory)
    lake = LakeResource.from_env()
    if args.action == "migrate":
        _migrate(args.entity, contracts, lake)
        return
    errors = [broken.error for broken in refused]
    for contract in contracts:
        change_refused = contract_changes_refused(lake, contract)
        if change_refused:
            errors.append(change_refused)
        else:
            print(f"ok  {contract.path}: entity {contract.name}, {len(contract.fields)} fields")
    for error in errors:
        print(f"contract refused: {error}", file=sys.stderr)
    if errors:
        raise SystemExit(1)


def _migrate(entity: str, contracts: list[Contract], lake: LakeResource) -> None:
    from platform_assets.migration import migrate
    from resources.schema_registry import SchemaRegistryResource
    from resources.spark import SparkResource

    by_name = {contract.name: contract for contract in contracts}
    if entity not in by_name:
        raise SystemExit(f"no contract named `{entity}`; entities are {sorted(by_name)}")
    published = migrate(
        by_name[entity], lake, SparkResource.from_env().session(), SchemaRegistryResource.from_env().lookup()
    )
    print(json.dumps({"entity": entity, "rows_published": published}))
