"""Shared fixtures: the real tansu broker, an embedded Sail server and lake roots on disk.

Environment defaults are set before any platform module is imported, because the Dagster code
location reads its configuration from the environment when it loads.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="platform-tests-"))
os.environ["PLATFORM_MODE"] = "dev"
os.environ["RUST_LOG"] = "warn"
os.environ["PLATFORM_LAKE_ROOT"] = str(_SESSION_DIR / "lake")
os.environ["DAGSTER_HOME"] = str(_SESSION_DIR / "dagster")
(_SESSION_DIR / "dagster").mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """A real Kafka-protocol broker (tansu, in-memory storage) on a free loopback port."""
    from devstack.broker import start_broker

    running = start_broker(log_path=_SESSION_DIR / "tansu.log")
    previous = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = running.bootstrap
    yield running.bootstrap
    running.stop()
    if previous is None:
        os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", None)


@pytest.fixture(scope="session")
def spark():
    """A SparkSession on the embedded Sail Spark Connect server, shared by the whole session."""
    from resources.spark import SparkResource

    return SparkResource().session()


@pytest.fixture
def lake(tmp_path: Path):
    from resources.lake import LakeResource

    return LakeResource(root=str(tmp_path / "lake"))


@pytest.fixture(scope="module")
def platform_stack(broker, tmp_path_factory):
    """Builds the whole code location for the shipped contracts on private topics, lake and instance."""
    import dataclasses
    import uuid
    from types import SimpleNamespace

    from dagster import DagsterInstance

    from platform_assets.definitions import build_definitions
    from platform_assets.lib.contract import load_contracts
    from platform_assets.marts import dbt_resource
    from resources.kafka import KafkaResource
    from resources.lake import LakeResource
    from resources.schema_registry import SchemaRegistryResource
    from resources.spark import SparkResource
    from resources.warehouse import WarehouseResource
    from simulator.service import Publisher, ensure_topics
    from simulator.source import SourceSystem

    def build(rates, seed: int):
        suffix = uuid.uuid4().hex[:6]
        contracts = []
        for contract in load_contracts():
            source = contract.source
            renamed = dataclasses.replace(
                source,
                topics_by_operation={op: f"{t}-{suffix}" for op, t in source.topics_by_operation.items()},
                topic=f"{source.topic}-{suffix}" if source.topic else None,
            )
            contracts.append(dataclasses.replace(contract, source=renamed))
        root = tmp_path_factory.mktemp(f"stack-{suffix}")
        resources = {
            "kafka": KafkaResource(bootstrap_servers=broker, group_prefix=f"stack-{suffix}"),
            "lake": LakeResource(root=str(root / "lake")),
            "spark": SparkResource(),
            "schema_registry": SchemaRegistryResource(),
            "warehouse": WarehouseResource(path=str(root / "warehouse.duckdb")),
            "dbt": dbt_resource(),
        }
        ensure_topics(broker, {t for c in contracts for t in c.source.topics})

        def publish(events) -> None:
            Publisher(broker).publish(dataclasses.replace(e, topic=f"{e.topic}-{suffix}") for e in events)

        return SimpleNamespace(
            defs=build_definitions(contracts, resources),
            resources=resources,
            lake=resources["lake"],
            source=SourceSystem(seed=seed, rates=rates),
            publish=publish,
            instance=DagsterInstance.ephemeral(),
            contracts=contracts,
        )

    return build
