"""Marts: the dbt project in `dbt/`, daily partitions passed as vars, published all or nothing.

The dbt manifest is prepared the way dagster-dbt prescribes: `dagster dev` re-parses the project when
the code location loads (`prepare_if_dev`), and everywhere else it is built ahead of time
(`dagster-dbt project prepare-and-package`, run by `make` and by the image build).
"""

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, BackfillPolicy
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from platform_assets.entity import ensure_tables
from platform_assets.lib.contract import Contract
from platform_assets.partitions import DEFAULT_PARTITIONS, Partitions
from resources.lake import LakeResource
from resources.warehouse import WarehouseResource

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt"
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()
# The dbt of this environment, whether or not its bin directory is on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt")) if Path(sys.executable).with_name("dbt").exists() else "dbt"


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)


@contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """dbt reads its settings from the environment of its process, which dagster-dbt copies from ours."""
    saved = dict(os.environ)
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class PlatformDbtTranslator(DagsterDbtTranslator):
    """Marts under `marts/<model>`, staging views under `staging/<model>`, owners from model meta."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        layer = "marts" if "marts" in dbt_resource_props["fqn"] else "staging"
        return AssetKey([layer, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return "marts"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        owner = dbt_resource_props.get("meta", {}).get("owner") or dbt_resource_props.get("config", {}).get(
            "meta", {}
        ).get("owner")
        return [f"team:{owner}"] if owner else []


translator = PlatformDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def build_marts(contracts: list[Contract], partitions: Partitions = DEFAULT_PARTITIONS) -> AssetsDefinition:
    """The dbt models as assets over the daily partitions; every entity's tables exist before dbt reads them."""

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        dagster_dbt_translator=translator,
        partitions_def=partitions.daily,
        backfill_policy=BackfillPolicy.single_run(),
        pool="warehouse_marts",
    )
    def marts(
        context: AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource, warehouse: WarehouseResource
    ) -> Iterator[Any]:
        window = context.partition_time_window
        dbt_vars = {
            "min_date": f"{window.start:%Y-%m-%d}",
            "max_date": f"{window.end - timedelta(days=1):%Y-%m-%d}",
        }
        # An entity without data yet reads as empty tables in dbt instead of failing the whole build.
        for contract in contracts:
            ensure_tables(lake, contract, ("raw", "current", "history"))
        build = warehouse.build_copy(context.run.run_id)
        try:
            with environment({"PLATFORM_LAKE_ROOT": lake.resolved_root, "PLATFORM_DUCKDB_PATH": str(build)}):
                yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context).stream()
        except BaseException:
            warehouse.discard(build)
            raise
        warehouse.publish(build)
        context.log.info(f"published marts for {dbt_vars['min_date']}..{dbt_vars['max_date']} to {warehouse.published}")

    return marts
