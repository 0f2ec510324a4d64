"""The Dagster code location: every contract's asset chain, the marts, checks, sensors and schedules.

`build_definitions(contracts, resources, settings)` builds it from plain arguments, so tests and tools
build their own; `defs` is the location the Dagster tools load, configured from the environment.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from dagster import BetaWarning, Definitions, PreviewWarning, in_process_executor

from platform_assets.alerts import Webhook, build_alert_sensors
from platform_assets.entity import contract_changes_refused
from platform_assets.factory import entity_assets
from platform_assets.jobs import build_erasure_job, daily_job, hourly_job, landing_job
from platform_assets.landing import topic_specs
from platform_assets.lib.contract import Contract, RefusedContract, read_contracts
from platform_assets.maintenance import build_maintenance_job, build_maintenance_schedule
from platform_assets.marts import build_marts, dbt_resource
from platform_assets.partitions import Partitions
from platform_assets.refused_contracts import refused_contract_sensors, refused_contract_specs
from platform_assets.schedules import daily_schedule
from platform_assets.schema_changes import REGISTRY_FORMATS
from platform_assets.secrets import load_secrets_into_environment
from platform_assets.sensors import (
    build_erasure_marts_sensor,
    build_history_sensor,
    build_lag_sensor,
    build_schema_registry_sensor,
)
from platform_assets.settings import PlatformSettings
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource
from resources.spark import SparkResource

# Backfill policies and pools are marked beta/preview in this Dagster release; the platform relies on them.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)


def platform_resources(
    kafka: KafkaResource,
    lake: LakeResource,
    spark: SparkResource | None = None,
    schema_registry: SchemaRegistryResource | None = None,
) -> dict[str, Any]:
    """Every resource the code location uses; what is not given is the embedded default."""
    return {
        "kafka": kafka,
        "lake": lake,
        "spark": spark or SparkResource(),
        "schema_registry": schema_registry or SchemaRegistryResource(),
        "dbt": dbt_resource(),
    }


def resources_from_env() -> dict[str, Any]:
    return platform_resources(
        KafkaResource.from_env(),
        LakeResource.from_env(),
        SparkResource.from_env(),
        SchemaRegistryResource.from_env(),
    )


def build_definitions(
    contracts: list[Contract],
    resources: Mapping[str, Any] | None = None,
    settings: PlatformSettings | None = None,
    refused: list[RefusedContract] | None = None,
) -> Definitions:
    """The code location for `contracts`; each `refused` contract file is shown as an error, not loaded."""
    settings = settings or PlatformSettings()
    refused = refused or []
    partitions = Partitions.starting(settings.start, settings.freshness_hour_s)
    marts = build_marts(contracts, partitions)
    erasure_job = build_erasure_job(contracts)
    maintenance_job = build_maintenance_job(contracts)
    interval = settings.sensor_interval_s
    sensors = [build_erasure_marts_sensor(erasure_job, list(marts.keys), interval)]
    if any(contract.source.format in REGISTRY_FORMATS for contract in contracts):
        sensors.append(build_schema_registry_sensor(contracts, interval))
    for contract in contracts:
        sensors.append(
            build_lag_sensor(contract, settings.lag_threshold, settings.max_delay_s, interval, partitions),
        )
        sensors.append(build_history_sensor(contract, list(marts.keys), interval, partitions))
    sensors.extend(refused_contract_sensors(refused, interval))
    if settings.alert_webhook_url:
        webhook = Webhook.configured(settings.alert_webhook_url, settings.alert_format, settings.ui_url)
        sensors.extend(build_alert_sensors(webhook, interval))
    chains = [asset for contract in contracts for asset in entity_assets(contract, partitions)]
    return Definitions(
        assets=[*topic_specs(contracts), *chains, marts, *refused_contract_specs(refused)],
        jobs=[landing_job, hourly_job, daily_job, erasure_job, maintenance_job],
        schedules=[daily_schedule, build_maintenance_schedule(maintenance_job)],
        sensors=sensors,
        resources=dict(resources or resources_from_env()),
        # One process per run: the embedded Spark server and the imports are paid once, not per step.
        executor=in_process_executor,
    )


def load_code_location() -> Definitions:
    """The code location as the Dagster tools load it: secrets, settings and resources from the environment."""
    load_secrets_into_environment()
    settings = PlatformSettings.from_env()
    contracts, refused = read_contracts(settings.contracts_dir)
    resources = resources_from_env()
    # A contract change the stored tables cannot follow is refused (alone, like any broken contract)
    # before any run, with its way forward.
    changed = {c.path: why for c in contracts if (why := contract_changes_refused(resources["lake"], c))}
    refused += [RefusedContract(path, why) for path, why in changed.items()]
    loaded = [contract for contract in contracts if contract.path not in changed]
    return build_definitions(loaded, resources, settings, refused)


defs = load_code_location()
