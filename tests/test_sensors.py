"""The lag sensor and the history sensor against the real broker and a real Dagster instance."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer
from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    FloatMetadataValue,
    SensorResult,
    SkipReason,
    build_sensor_context,
    materialize,
)
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._core.test_utils import create_run_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from platform_assets.current import build_current_asset
from platform_assets.entity import asset_key
from platform_assets.history import build_history_asset
from platform_assets.landing import build_landing_asset
from platform_assets.lib.contract import parse_contract
from platform_assets.partitions import RANGE_END_TAG as RANGE_END
from platform_assets.partitions import RANGE_START_TAG as RANGE_START
from platform_assets.raw import build_raw_assets
from platform_assets.sensors import build_history_sensor, build_lag_sensor
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource
from resources.spark import SparkResource
from simulator.service import ensure_topics

pytestmark = [pytest.mark.broker, pytest.mark.spark]


@pytest.fixture
def setup(broker, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    contract = parse_contract(
        {
            "name": "widgets",
            "source": {"format": "json", "topic": f"widgets-{suffix}", "operation_field": "op"},
            "key": ["id"],
            "sequence": "v",
            "event_time": "ts",
            "fields": {"id": {}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
        }
    )
    ensure_topics(broker, contract.source.topics)
    resources = {
        "kafka": KafkaResource(bootstrap_servers=broker, group_prefix=f"test-{suffix}"),
        "lake": LakeResource(root=str(tmp_path / "lake")),
        "schema_registry": SchemaRegistryResource(),
        "spark": SparkResource(),
    }
    return contract, resources, DagsterInstance.ephemeral()


def produce(broker: str, topic: str, events: list[tuple[str, datetime, int]]) -> None:
    # One message per batch: the embedded broker reports end offsets correctly only then.
    producer = Producer({"bootstrap.servers": broker, "batch.num.messages": 1})
    for key, moment, version in events:
        value = {"id": key, "ts": moment.isoformat(), "v": version, "op": "c" if version == 1 else "u"}
        producer.produce(topic, key=key.encode(), value=json.dumps(value).encode())
    assert producer.flush(30) == 0


def evaluate(sensor, instance, cursor, resources=None):
    context = build_sensor_context(instance=instance, cursor=cursor, resources=resources or {})
    return sensor(context)


def test_lag_sensor_requests_landing_then_the_hours_landing_touched(setup, broker):
    contract, resources, instance = setup
    topic = contract.source.topics[0]
    now = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
    produce(broker, topic, [(f"w{i}", now, 1) for i in range(5)] + [("late", now - timedelta(hours=27), 2)])
    sensor = build_lag_sensor(contract, lag_threshold=3, max_delay_s=3600)
    kafka = resources["kafka"]

    first = evaluate(sensor, instance, None, {"kafka": kafka})
    assert isinstance(first, SensorResult)
    [landing_request] = first.run_requests
    assert landing_request.asset_selection == [asset_key("landing", contract)]
    assert landing_request.tags["lag"] == "6"
    # The sensor commits nothing: the group still has no committed offsets.
    assert all(p.committed_offset is None for p in kafka.lag(contract.name, contract.source.topics))

    landing = build_landing_asset(contract)
    assert materialize([landing], instance=instance, resources=resources).success

    # After a restart the daemon hands the stored cursor to a fresh evaluation.
    second = evaluate(sensor, instance, first.cursor, {"kafka": kafka})
    assert isinstance(second, SensorResult)
    # One range run over the touched hours, the late one included, behind manual runs in the queue.
    [hourly_request] = second.run_requests
    assert hourly_request.tags[RANGE_START] == "2026-03-01-07:00"
    assert hourly_request.tags[RANGE_END] == "2026-03-02-10:00"
    assert hourly_request.tags["dagster/priority"] == "-1" and landing_request.tags["dagster/priority"] == "-1"
    assert hourly_request.asset_selection == [
        asset_key("raw", contract),
        asset_key("quarantine", contract),
        asset_key("current", contract),
        asset_key("scd2", contract),
    ]

    third = evaluate(sensor, instance, second.cursor, {"kafka": kafka})
    assert not third.run_requests
    assert third.skip_reason.skip_message == f"{contract.name}: nothing to land (lag 0)"
    # Every tick records lag and delay on landing as numbers, which the asset's page plots over time.
    assert [lag_of(result) for result in (first, second, third)] == [6, 0, 0]
    assert first.asset_events[0].asset_key == asset_key("landing", contract)
    assert isinstance(first.asset_events[0].metadata["oldest_pending_age_s"], FloatMetadataValue)

    # Below both limits the skip reason names the rule and the numbers.
    produce(broker, topic, [("w8", now, 2)])
    below_limits = build_lag_sensor(contract, lag_threshold=100, max_delay_s=3600)
    waiting = evaluate(below_limits, instance, third.cursor, {"kafka": kafka})
    assert not waiting.run_requests and lag_of(waiting) == 1
    assert re.fullmatch(
        rf"{contract.name}: lag 1 below threshold 100 and oldest pending \d+ s below 3600 s",
        waiting.skip_reason.skip_message,
    )

    # Below the threshold, a pending record older than the maximum delay still triggers landing.
    produce(broker, topic, [("w9", now, 2)])
    patient = build_lag_sensor(contract, lag_threshold=100, max_delay_s=0)
    fourth = evaluate(patient, instance, second.cursor, {"kafka": kafka})
    assert isinstance(fourth, SensorResult)
    assert [r.asset_selection for r in fourth.run_requests] == [[asset_key("landing", contract)]]

    # While that landing run is in flight, the sensor waits for it and says so.
    in_flight = queue_run(instance, "landing_job", {"entity": contract.name, "layer": "landing"})
    fifth = evaluate(patient, instance, fourth.cursor, {"kafka": kafka})
    assert not fifth.run_requests
    assert "landing run in flight (lag 2" in fifth.skip_reason.skip_message
    report(instance, in_flight, DagsterEventType.RUN_SUCCESS)
    assert evaluate(patient, instance, fourth.cursor, {"kafka": kafka}).run_requests


def lag_of(result: SensorResult) -> int:
    [observation] = result.asset_events
    return observation.metadata["consumer_lag"].value


def queue_hourly_run(instance, contract, first: str, last: str):
    """An hourly run of the entity waiting in the queue."""
    return queue_run(
        instance, "hourly_job", {"entity": contract.name, "layer": "current", RANGE_START: first, RANGE_END: last}
    )


def queue_run(instance, job_name: str, tags: dict[str, str]):
    """A run waiting in the queue, as the queue daemon would see it."""
    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="platform_assets.definitions"))
    origin = RemoteRepositoryOrigin(location, "__repository__").get_job_origin(job_name)
    run = create_run_for_test(instance, job_name=job_name, tags=tags, remote_job_origin=origin)
    report(instance, run, DagsterEventType.RUN_ENQUEUED)
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.QUEUED
    return run


def report(instance, run, event_type: DagsterEventType) -> None:
    event = DagsterEvent(event_type_value=event_type.value, job_name=run.job_name)
    instance.report_dagster_event(event, run_id=run.run_id)


def test_lag_sensor_keeps_one_pending_hourly_run_and_skips_hours_a_run_will_read(setup, broker):
    contract, resources, instance = setup
    topic = contract.source.topics[0]
    landing = build_landing_asset(contract)
    sensor = build_lag_sensor(contract, lag_threshold=10**6, max_delay_s=3600)
    kafka = {"kafka": resources["kafka"]}
    queued = queue_hourly_run(instance, contract, "2026-03-02-09:00", "2026-03-02-10:00")
    produce(broker, topic, [("a", datetime(2026, 3, 2, 10, 5, tzinfo=UTC), 1)])
    produce(broker, topic, [("b", datetime(2026, 3, 2, 12, 5, tzinfo=UTC), 1)])
    assert materialize([landing], instance=instance, resources=resources).success

    # Hour 10 is read by the queued run; hour 12 waits, because one run of the entity already waits.
    held = evaluate(sensor, instance, None, kafka)
    assert not held.run_requests
    assert set(json.loads(held.cursor)["pending_hours"]) == {"2026-03-02-12:00"}

    # More hours land while the run still waits: merged into the same pending set.
    produce(broker, topic, [("c", datetime(2026, 3, 2, 14, 5, tzinfo=UTC), 1)])
    assert materialize([landing], instance=instance, resources=resources).success
    merged = evaluate(sensor, instance, held.cursor, kafka)
    assert not merged.run_requests
    assert set(json.loads(merged.cursor)["pending_hours"]) == {"2026-03-02-12:00", "2026-03-02-14:00"}

    # The queued run starts: now the held hours go out as one range run.
    report(instance, queued, DagsterEventType.RUN_START)
    released = evaluate(sensor, instance, merged.cursor, kafka)
    [request] = released.run_requests
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == ("2026-03-02-12:00", "2026-03-02-14:00")
    assert json.loads(released.cursor)["pending_hours"] == {}

    # Hour 10 lands again after the running run started, which may have read that hour already: it is
    # requested again rather than skipped.
    produce(broker, topic, [("d", datetime(2026, 3, 2, 10, 40, tzinfo=UTC), 1)])
    assert materialize([landing], instance=instance, resources=resources).success
    [again] = evaluate(sensor, instance, released.cursor, kafka).run_requests
    assert (again.tags[RANGE_START], again.tags[RANGE_END]) == ("2026-03-02-10:00", "2026-03-02-10:00")


def test_history_sensor_requests_late_days_onward(setup, broker):
    contract, resources, instance = setup
    topic = contract.source.topics[0]
    produce(
        broker, topic, [("a", datetime(2026, 1, 3, 5, tzinfo=UTC), 1), ("b", datetime(2026, 1, 1, 5, tzinfo=UTC), 1)]
    )
    assets = [build_landing_asset(contract), build_raw_assets(contract), build_current_asset(contract)]
    assert materialize(assets[:1], instance=instance, resources=resources).success
    hourly = [asset_key(layer, contract) for layer in ("raw", "quarantine", "current")]
    for hour in ("2026-01-03-05:00", "2026-01-01-05:00"):
        assert materialize(assets, instance=instance, resources=resources, partition_key=hour, selection=hourly).success
    result = evaluate(build_history_sensor(contract), instance, None)
    assert isinstance(result, SensorResult)
    [request] = result.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2026-01-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-01-03"
    assert isinstance(evaluate(build_history_sensor(contract), instance, result.cursor), SkipReason)

    # current counts its whole table under its own names; `dagster/row_count` stays a partition's count.
    merged = instance.get_latest_materialization_event(asset_key("current", contract)).asset_materialization
    assert merged.metadata["table_live_rows"].value == 2 and "dagster/row_count" not in merged.metadata

    # History already runs up to day 5; a late event for day 2 must recompute days 2..5.
    history = build_history_asset(contract)
    assert materialize([history], instance=instance, resources=resources, partition_key="2026-01-05").success
    day = instance.get_latest_materialization_event(asset_key("history", contract)).asset_materialization
    # A one-day run: the count of that day.
    assert day.metadata["dagster/row_count"].value == day.metadata["live_rows_per_day"].value["2026-01-05"]
    produce(broker, topic, [("c", datetime(2026, 1, 2, 8, tzinfo=UTC), 1)])
    assert materialize(assets[:1], instance=instance, resources=resources).success
    assert materialize(
        assets, instance=instance, resources=resources, partition_key="2026-01-02-08:00", selection=hourly
    ).success
    late = evaluate(build_history_sensor(contract), instance, result.cursor)
    assert isinstance(late, SensorResult)
    [request] = late.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2026-01-02"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-01-05"
