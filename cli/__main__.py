"""python -m cli <command> [options]: the platform's operations outside the Dagster UI."""

from __future__ import annotations

import argparse
from types import ModuleType

from cli import adls, contracts, erase, spark_conf

COMMANDS: dict[str, ModuleType] = {
    "contracts": contracts,
    "erase": erase,
    "provision-adls": adls,
    "spark-conf": spark_conf,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        module.add_arguments(commands.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0]))
    args = parser.parse_args(argv)
    COMMANDS[args.command].run(args)


if __name__ == "__main__":
    main()
