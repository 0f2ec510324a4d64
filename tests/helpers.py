"""Helpers shared by the tests (fixtures live in conftest.py)."""

import json
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pyarrow as pa
from confluent_kafka import Producer

from platform_assets.lib.contract import Contract, parse_contract
from platform_assets.partitions import range_tags
from simulator.service import ensure_topics


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler for the tests' HTTP stand-ins: JSON answers, no request log."""

    content_type = "application/json"

    def answer(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        encoded = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {**(headers or {}), "Content-Type": self.content_type}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, format: str, *args: object) -> None:
        return


SAIL_LOCAL_CLUSTER = {
    "SAIL_MODE": "local-cluster",
    "SAIL_CLUSTER__WORKER_INITIAL_COUNT": "2",
    "SAIL_CLUSTER__WORKER_MAX_COUNT": "2",
    "SAIL_EXECUTION__DEFAULT_PARALLELISM": "4",
}


def listening_sockets() -> int:
    """TCP sockets this process listens on: Sail's Connect server, and in cluster mode its driver and workers."""
    own = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            own.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            count += fields[3] == "0A" and fields[9] in own  # state LISTEN
    return count


@contextmanager
def sail_local_cluster(worker_task_slots: int = 8) -> Iterator[str]:
    """A Sail Spark Connect server in local-cluster mode (a driver and two workers that split every stage
    and shuffle over gRPC, as a cluster does), in this process; yields its `sc://` address.

    Sail schedules a task region (stages pipelined together) only when the cluster has a slot for each
    of its tasks at once: a scan of N files needs N slots. Size `worker_task_slots` for the widest
    region the test builds, as a production cluster must be sized for the files of its widest merge."""
    from resources.spark import SparkResource, start_sail_server, stop_session

    before = listening_sockets()
    server = start_sail_server({**SAIL_LOCAL_CLUSTER, "SAIL_CLUSTER__WORKER_TASK_SLOTS": str(worker_task_slots)})
    remote = f"sc://127.0.0.1:{server.listening_address[1]}"
    try:
        session = SparkResource(remote=remote).session()
        assert session.range(100).selectExpr("sum(id)").collect()[0][0] == 4950
        # The Connect server, the driver and one server per worker: the cluster really has its two workers.
        assert listening_sockets() - before >= 4, "Sail did not start a local cluster with two workers"
        yield remote
    finally:
        stop_session(remote)
        server.stop()


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


def mart_rows(lake, mart: str, sql: str = "select * from marts") -> list[tuple]:
    """Rows (tuples, in the model's column order) of a published mart, the Delta table `<lake>/marts/<mart>`,
    queried as `marts`."""
    table = lake.select("marts", mart, sql)
    assert table is not None, f"mart {mart} is not published in {lake.uri('marts', mart)}"
    return [tuple(row.values()) for row in pa.table(table).to_pylist()]


def json_entity_on_new_topic(broker: str, name: str, event_times: list, timestamp_ms: int = 0) -> Contract:
    """A JSON contract `name` (key `id`, sequence `v`, event time `ts`) on a new topic that holds one
    record per event time, keyed k0, k1, ...; `timestamp_ms` is their Kafka timestamp (0: now)."""
    topic = f"{name}-{uuid.uuid4().hex[:6]}"
    ensure_topics(broker, [topic])
    producer = Producer({"bootstrap.servers": broker, "batch.num.messages": 1})
    for i, event_time in enumerate(event_times):
        value = json.dumps({"id": f"k{i}", "ts": event_time, "v": i}).encode()
        producer.produce(topic, key=f"k{i}".encode(), value=value, timestamp=timestamp_ms)
    assert producer.flush(30) == 0
    return parse_contract(
        {
            "name": name,
            "source": {"format": "json", "topic": topic},
            "key": ["id"],
            "sequence": "v",
            "event_time": "ts",
            "fields": {"id": {"nullable": False}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
        }
    )


@contextmanager
def loaded_location(instance, module: str = "daemon_location") -> Iterator[Any]:
    """tests/<module>.py loaded as the daemon loads a code location (configured by the environment)."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

    # Dagster reuses a module it already imported from the same file, which would keep the contract
    # and settings another test configured: each test loads the location afresh from its environment.
    sys.modules.pop(module, None)
    root = Path(__file__).resolve().parents[1]
    target = LoadableTargetOrigin(
        python_file=str(root / "tests" / f"{module}.py"), attribute="defs", working_directory=str(root)
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


def accessor_columns(messages: list[Any]) -> tuple[list[Any], ...]:
    """A batch of confluent-kafka messages' columns as the accessor methods give them, in the order of
    `platform_native.message_columns`."""
    return (
        [message.topic() for message in messages],
        [message.partition() for message in messages],
        [message.offset() for message in messages],
        [message.timestamp()[1] for message in messages],
        [message.key() for message in messages],
        [message.value() for message in messages],
        [message.headers() for message in messages],
    )
