"""Erase a person's keys from every table and old table version, and print the audit record.

    python -m cli erase --entity customers --key C000123 [--key ...] [--retention-hours 0]

The same as the `erasure_job` of the Dagster UI (see README, Data protection).
"""

from __future__ import annotations

import argparse
import json

from platform_assets.erasure import erase
from platform_assets.lib.contract import load_contracts
from platform_assets.settings import PlatformSettings
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--entity", required=True, help="the contract whose keys are erased")
    parser.add_argument("--key", action="append", required=True, help="a key to erase (repeat for more)")
    parser.add_argument("--retention-hours", type=int, default=0, help="keep Delta files younger than this")


def run(args: argparse.Namespace) -> None:
    contracts = load_contracts(PlatformSettings.from_env().contracts_dir)
    by_name = {c.name: c for c in contracts}
    if args.entity not in by_name:
        raise SystemExit(f"no contract named `{args.entity}`; entities are {sorted(by_name)}")
    audit = erase(
        by_name[args.entity],
        args.key,
        LakeResource.from_env(),
        contracts,
        args.retention_hours,
        schema_lookup=SchemaRegistryResource.from_env().lookup(),
    )
    print(json.dumps(audit, default=str))
