"""Marts: the dbt project in `dbt/`, daily partitions passed as vars, published all or nothing.

dbt runs on the Spark Connect server of the run process (the embedded Sail server, or SPARK_REMOTE in
production) and builds the run's day range into Delta tables at a location of the run's own,
`<lake>/marts/_builds/<run_id>/<model>`. Only when every model and every test of the run passed is each
mart's day range published into `<lake>/marts/<model>` with one Delta replaceWhere commit: a reader of a
mart sees its previous days or its new days, never a mix and never a gap, and a failed run changes nothing.
(The marts are switched one after another, so a reader joining two marts mid-publish can see one new and
one old; a rerun of the same days converges.)

The dbt manifest is prepared the way dagster-dbt prescribes: `dagster dev` re-parses the project when
the code location loads (`prepare_if_dev`), and everywhere else it is built ahead of time
(`dagster-dbt project prepare-and-package`, run by `make` and by the image build).
"""

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, BackfillPolicy
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from platform_assets.entity import ensure_tables, layer_asset_key
from platform_assets.lib.contract import Contract
from platform_assets.partitions import DEFAULT_PARTITIONS, Partitions
from resources.lake import IncompatibleSchemaError, LakeResource
from resources.spark import SparkResource

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


def spark_connect_address(remote: str) -> tuple[str, int]:
    """Host and port of a Spark Connect URL, the only parts of it that dbt-sail's profile can carry."""
    parts = urlsplit(remote)
    if parts.scheme != "sc" or not parts.hostname or parts.path.strip("/;"):
        raise ValueError(
            f"the marts cannot reach Spark Connect at `{remote}`: dbt-sail takes `sc://host:port` only "
            "(no `/;token=...` parameters); set SPARK_REMOTE to that form"
        )
    return parts.hostname, parts.port or 15002


def window_predicate(column: str, data_type: pa.DataType, start: datetime, end: datetime) -> str:
    """The rows of a mart in the run's day range [start, end), as a Delta (delta-rs) predicate."""
    if pa.types.is_date(data_type):
        return f"{column} >= '{start:%Y-%m-%d}' AND {column} < '{end:%Y-%m-%d}'"
    return f"{column} >= '{start:%Y-%m-%dT%H:%M:%SZ}' AND {column} < '{end:%Y-%m-%dT%H:%M:%SZ}'"


def publishable(build: pa.Table, partition_by: list[str]) -> pa.Table:
    """The model's columns in its order (Sail writes partition columns last), all nullable as everywhere in
    the lake (Sail infers NOT NULL from expressions, which a later day's data need not keep)."""
    columns = [*partition_by, *(name for name in build.column_names if name not in partition_by)]
    data = build.select(columns)
    return data.cast(pa.schema([field.with_nullable(True) for field in data.schema]))


def publish_mart(
    lake: LakeResource, build_entity: str, model: Mapping[str, Any], start: datetime, end: datetime
) -> int | None:
    """Publish one mart's day range from the run's build with one replaceWhere commit; returns its version.

    The published table follows its model as the layer tables follow their contracts: a new column is
    added, a widened one rewritten. A column whose type the model changed otherwise (a spend that was a
    double and is now an exact decimal) is refused: cast into the old type, the new days would silently
    lose what the change is for, and the old days cannot be converted without being rebuilt.
    """
    name = model["alias"] or model["name"]
    partition_by = list(model["config"].get("partition_by") or [])
    window_column = model["config"]["meta"]["window_column"]
    data = publishable(lake.read("marts", f"{build_entity}/{name}"), partition_by)
    predicate = window_predicate(window_column, data.schema.field(window_column).type, start, end)
    try:
        lake.evolve("marts", name, data.schema, partition_by=partition_by or None)
    except IncompatibleSchemaError as error:
        raise IncompatibleSchemaError(
            f"mart `{name}` was not published: its model changed a column's type ({error}); delete the "
            f"published mart {lake.uri('marts', name)} and rerun the marts over every day it held (a backfill "
            "of daily_job), which publishes it anew with the model's types"
        ) from error
    lake.replace_where("marts", name, data, predicate)
    return lake.version("marts", name)


def remove_build(uri: str) -> None:
    """Delete a run's build tables (a local directory or a prefix in the object store)."""
    filesystem, path = pafs.FileSystem.from_uri(uri)
    if filesystem.get_file_info(path).type != pafs.FileType.NotFound:
        filesystem.delete_dir(path)


def mart_models(manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [node for node in manifest["nodes"].values() if node["resource_type"] == "model" and "marts" in node["fqn"]]


class PlatformDbtTranslator(DagsterDbtTranslator):
    """Marts under `marts/<model>`, staging views under `staging/<model>`, sources under the keys of the
    layer assets they read (`history/history_customers`), owners from model meta."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return layer_asset_key(dbt_resource_props["source_name"], dbt_resource_props["name"])
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
        context: AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource, spark: SparkResource
    ) -> Iterator[Any]:
        window = context.partition_time_window
        dbt_vars = {
            "min_date": f"{window.start:%Y-%m-%d}",
            "max_date": f"{window.end - timedelta(days=1):%Y-%m-%d}",
        }
        # An entity without data yet reads as empty tables in dbt instead of failing the whole build.
        for contract in contracts:
            ensure_tables(lake, contract, ("raw", "current", "history"))
        host, port = spark_connect_address(spark.endpoint())
        build_entity = f"_builds/{context.run.run_id}"
        build_root = lake.uri("marts", build_entity)
        settings = {
            "DBT_TARGET": "sail",
            "SPARK_CONNECT_HOST": host,
            "SPARK_CONNECT_PORT": str(port),
            "PLATFORM_LAKE_ROOT": lake.resolved_root,
            "PLATFORM_MARTS_ROOT": build_root,
        }
        try:
            with environment(settings):
                invocation = dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context)
                yield from invocation.stream()
            # Reached only when every model and every test passed (dagster-dbt raises otherwise).
            versions = {
                model["name"]: publish_mart(lake, build_entity, model, window.start, window.end)
                for model in mart_models(invocation.get_artifact("manifest.json"))
                if context.selected_asset_keys & {translator.get_asset_key(model)}
            }
        finally:
            remove_build(build_root)
        context.log.info(f"published marts for {dbt_vars['min_date']}..{dbt_vars['max_date']}: versions {versions}")

    return marts
