"""Helpers shared by the tests (fixtures live in conftest.py)."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from platform_assets.partitions import range_tags


def run(defs, instance, job: str, first: str, last: str):
    """Run a job over a partition range in one run (as a single-run backfill does)."""
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=range_tags(first, last), raise_on_error=False
    )


# The hour that `good_and_bad_records` fills.
RECORDS_HOUR = "2026-03-02-10:00"


def good_and_bad_records(broker: str, tmp_path, name: str, quality: dict) -> tuple[dict, dict]:
    """A JSON entity on a fresh topic holding, in RECORDS_HOUR, one good record and one that goes to
    quarantine (its sequence is not a number): its contract document and the resources to land it."""
    import json
    import uuid
    from datetime import UTC, datetime

    from confluent_kafka import Producer

    from resources.kafka import KafkaResource
    from resources.lake import LakeResource
    from resources.schema_registry import SchemaRegistryResource
    from simulator.service import ensure_topics

    suffix = uuid.uuid4().hex[:8]
    topic = f"{name}-{suffix}"
    document = {
        "name": name,
        "source": {"format": "json", "topic": topic, "operation_field": "op"},
        "key": ["id"],
        "sequence": "v",
        "event_time": "ts",
        "fields": {"id": {}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
        "quality": quality,
    }
    ensure_topics(broker, [topic])
    # One message per batch: the embedded broker reports end offsets correctly only then.
    producer = Producer({"bootstrap.servers": broker, "batch.num.messages": 1})
    moment = datetime.strptime(RECORDS_HOUR, "%Y-%m-%d-%H:%M").replace(minute=15, tzinfo=UTC).isoformat()
    for key, version in (("a", 1), ("b", "x")):
        value = {"id": key, "ts": moment, "v": version, "op": "c"}
        producer.produce(topic, key=key.encode(), value=json.dumps(value).encode())
    assert producer.flush(30) == 0
    resources = {
        "kafka": KafkaResource(bootstrap_servers=broker, group_prefix=f"{name}-{suffix}"),
        "lake": LakeResource(root=str(tmp_path / "lake")),
        "schema_registry": SchemaRegistryResource(),
    }
    return document, resources


@contextmanager
def loaded_location(instance) -> Iterator[Any]:
    """tests/daemon_location.py loaded as the daemon loads a code location (configured by the environment)."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

    root = Path(__file__).resolve().parents[1]
    target = LoadableTargetOrigin(
        python_file=str(root / "tests" / "daemon_location.py"), attribute="defs", working_directory=str(root)
    )
    origin = InProcessCodeLocationOrigin(target, location_name="daemon_test")
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as workspace:
        yield workspace


def tick(workspace, when) -> None:
    """One iteration of the sensor daemon at `when` (a frozen clock passes the sensors' intervals)."""
    from dagster._core.test_utils import freeze_time
    from dagster._daemon.sensor import execute_sensor_iteration

    with freeze_time(when):
        list(execute_sensor_iteration(workspace, logging.getLogger("sensors"), None, None))
