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
