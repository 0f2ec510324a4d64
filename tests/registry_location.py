"""The code location the daemon-level registry test loads: the Kafka topics of the contracts in
TEST_CONTRACTS_DIR and the schema registry sensor, with the registry named by SCHEMA_REGISTRY_URL."""

import os
from pathlib import Path

from dagster import Definitions

from platform_assets.landing import topic_specs
from platform_assets.lib.contract import load_contracts
from platform_assets.sensors import build_schema_registry_sensor
from resources.schema_registry import SchemaRegistryResource

contracts = load_contracts(Path(os.environ["TEST_CONTRACTS_DIR"]))
defs = Definitions(
    assets=topic_specs(contracts),
    sensors=[build_schema_registry_sensor(contracts)],
    resources={"schema_registry": SchemaRegistryResource.from_env()},
)
