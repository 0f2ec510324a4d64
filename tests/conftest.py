"""Shared fixtures: the real tansu broker, an embedded Sail server and lake roots on disk.

The session's environment (dev mode, a private lake and Dagster home) is set by a fixture: nothing in
the platform reads the environment when it is imported, only when definitions or runs are built, and
subprocesses that the tests start (the demo, `dagster dev`, crash workers) inherit it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="platform-tests-"))


@pytest.fixture(scope="session", autouse=True)
def platform_environment() -> Iterator[None]:
    """Dev mode (the development PII key), a private lake and a private Dagster instance for the session."""
    (_SESSION_DIR / "dagster").mkdir(parents=True, exist_ok=True)
    settings = {
        "PLATFORM_MODE": "dev",
        "RUST_LOG": "warn",
        "PLATFORM_LAKE_ROOT": str(_SESSION_DIR / "lake"),
        "DAGSTER_HOME": str(_SESSION_DIR / "dagster"),
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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

    from platform_assets.definitions import build_definitions, platform_resources
    from platform_assets.lib.contract import load_contracts
    from resources.kafka import KafkaResource
    from resources.lake import LakeResource
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
        resources = platform_resources(
            KafkaResource(bootstrap_servers=broker, group_prefix=f"stack-{suffix}"),
            LakeResource(root=str(root / "lake")),
        )
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
