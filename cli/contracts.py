"""Check the contracts before they are deployed: every file is loaded and validated as the code location
would, and every mistake is printed with its file, key and fix.

    python -m cli contracts validate [DIRECTORY]     # exit status 1 when any contract is refused
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from platform_assets.lib.contract import read_contracts
from platform_assets.settings import PlatformSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    validate = actions.add_parser("validate", help="load and check every contract")
    validate.add_argument("directory", nargs="?", type=Path, help="default: PLATFORM_CONTRACTS_DIR or contracts/")


def run(args: argparse.Namespace) -> None:
    directory = args.directory or PlatformSettings.from_env().contracts_dir
    contracts, refused = read_contracts(directory)
    for contract in contracts:
        print(f"ok  {contract.path}: entity {contract.name}, {len(contract.fields)} fields")
    for broken in refused:
        print(f"contract refused: {broken.error}", file=sys.stderr)
    if refused:
        raise SystemExit(1)
