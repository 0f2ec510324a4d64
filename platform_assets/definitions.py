"""The Dagster code location: every contract's asset chain, the marts, checks, sensors and schedules."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from dagster import BetaWarning, Definitions, PreviewWarning, in_process_executor

from platform_assets.erasure import build_erasure_job
from platform_assets.factory import entity_assets
from platform_assets.jobs import daily_job, hourly_job, landing_job
from platform_assets.landing import topic_specs
from platform_assets.lib.contract import Contract, load_contracts
from platform_assets.marts import dbt_resource, marts
from platform_assets.schedules import daily_schedule, hourly_schedule
from platform_assets.sensors import build_erasure_marts_sensor, build_history_sensor, build_lag_sensor
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource
from resources.secrets import load_aws_secrets_into_environment
from resources.spark import SparkResource
from resources.warehouse import WarehouseResource

# Backfill policies and pools are marked beta/preview in this Dagster release; the platform relies on them.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)


def resources_from_env() -> dict[str, Any]:
    return {
        "kafka": KafkaResource.from_env(),
        "lake": LakeResource.from_env(),
        "spark": SparkResource.from_env(),
        "schema_registry": SchemaRegistryResource.from_env(),
        "warehouse": WarehouseResource.from_env(),
        "dbt": dbt_resource(),
    }


def build_definitions(contracts: list[Contract], resources: Mapping[str, Any] | None = None) -> Definitions:
    erasure_job = build_erasure_job(contracts)
    return Definitions(
        assets=[*topic_specs(contracts), *(a for contract in contracts for a in entity_assets(contract)), marts],
        jobs=[landing_job, hourly_job, daily_job, erasure_job],
        schedules=[hourly_schedule, daily_schedule],
        sensors=[
            *(s for contract in contracts for s in (build_lag_sensor(contract), build_history_sensor(contract))),
            build_erasure_marts_sensor(erasure_job),
        ],
        resources=dict(resources or resources_from_env()),
        # One process per run: the embedded Spark server and the imports are paid once, not per step.
        executor=in_process_executor,
    )


load_aws_secrets_into_environment()
defs = build_definitions(load_contracts())
