"""Landing holds each Kafka record exactly once, whatever point of the cycle a crash hits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from helpers import accessor_columns

from platform_assets.landing import drain_to_landing
from platform_assets.lib.contract import parse_contract
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from simulator.service import ensure_topics

pytestmark = pytest.mark.broker

WORKER = Path(__file__).with_name("landing_crash_worker.py")
PRODUCED = 400
PARTITIONS = 12  # as production topics have: one landing run drains them all
KEYS = 37


def test_sigkill_at_every_point_of_the_cycle_neither_duplicates_nor_loses(broker, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    topics = {"create": f"crash-create-{suffix}", "update": f"crash-update-{suffix}"}
    document = {
        "name": "crashy",
        "source": {"format": "json", "topics": topics},
        "key": ["id"],
        "sequence": "v",
        "event_time": "ts",
        "fields": {"id": {}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
    }
    ensure_topics(broker, topics.values(), partitions=PARTITIONS)
    producer = Producer({"bootstrap.servers": broker, "batch.num.messages": 1})
    for i in range(PRODUCED):
        key = i % KEYS
        value = {"id": f"k{key}", "ts": f"2026-01-01T{i % 24:02d}:00:00Z", "v": i}
        producer.produce(
            topics["create" if i % 3 else "update"],
            key=f"k{key}".encode(),
            value=json.dumps(value).encode(),
            partition=key % PARTITIONS,  # a key keeps to one partition, as the default partitioner does
        )
    assert producer.flush(30) == 0
    lake_root = str(tmp_path / "lake")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def run(stage: str, count: int) -> subprocess.CompletedProcess:
        arguments = [json.dumps(document), broker, f"crash-{suffix}", lake_root, stage, str(count)]
        return subprocess.run(
            [sys.executable, str(WORKER), *arguments], env=env, capture_output=True, text=True, timeout=120
        )

    kill_points = [("consumed", 1), ("written", 1), ("committed", 1), ("written", 2), ("consumed", 3), ("written", 3)]
    for stage, count in kill_points:
        killed = run(stage, count)
        assert killed.returncode == -signal.SIGKILL, (stage, count, killed.stderr[-2000:])
    finished = run("none", 0)
    assert finished.returncode == 0, finished.stderr[-2000:]

    landed = LakeResource(root=lake_root).read("landing", "crashy").to_pylist()
    positions = sorted((row["topic"], row["partition"], row["offset"]) for row in landed)
    assert len(positions) == PRODUCED
    assert len(set(positions)) == PRODUCED, "a record was landed twice"
    for topic in topics.values():
        for partition in range(PARTITIONS):
            offsets = [offset for t, p, offset in positions if (t, p) == (topic, partition)]
            assert offsets, f"nothing landed from {topic}[{partition}]"
            assert offsets == list(range(len(offsets))), f"gap in {topic}[{partition}]"
    # Each key's changes, in the order of their partition, are in the order they were produced.
    by_position = sorted(landed, key=lambda row: (row["topic"], row["partition"], row["offset"]))
    for topic in topics.values():
        for key in range(KEYS):
            versions = [
                json.loads(r["value"])["v"]
                for r in by_position
                if r["topic"] == topic and r["key"] == f"k{key}".encode()
            ]
            assert versions == sorted(versions), f"k{key} out of order in {topic}"
    # A crash after the Delta commit but before the Kafka commit left Kafka behind; Delta decided.
    again = run("none", 0)
    assert json.loads(again.stdout.strip().splitlines()[-1]) == {"records": 0}


def _many_partition_stream(broker: str, name: str, produced: int) -> dict:
    """A JSON contract on one new topic of PARTITIONS partitions holding `produced` records spread over them."""
    topic = f"{name}-{uuid.uuid4().hex[:8]}"
    ensure_topics(broker, [topic], partitions=PARTITIONS)
    producer = Producer({"bootstrap.servers": broker, "batch.num.messages": 1})
    for i in range(produced):
        value = {"id": f"k{i}", "op": "c", "ts": f"2026-01-01T{i % 24:02d}:00:00Z", "v": i}
        producer.produce(topic, key=f"k{i}".encode(), value=json.dumps(value).encode(), partition=i % PARTITIONS)
    assert producer.flush(30) == 0
    return {
        "name": name,
        "source": {"format": "json", "topic": topic, "operation_field": "op"},
        "key": ["id"],
        "sequence": "v",
        "event_time": "ts",
        "fields": {"id": {}, "op": {}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
    }


def _assert_each_record_landed_once(lake_root: str, entity: str, produced: int) -> None:
    landed = LakeResource(root=lake_root).read("landing", entity).to_pylist()
    positions = [(row["topic"], row["partition"], row["offset"]) for row in landed]
    assert len(set(positions)) == len(positions), "a record was landed twice"
    assert len(positions) == produced, "a record was skipped"
    for partition in range(PARTITIONS):
        offsets = sorted(offset for _, p, offset in positions if p == partition)
        assert offsets == list(range(len(offsets))), f"gap in partition {partition}"


def test_one_run_drains_every_partition(broker, tmp_path):
    produced = 600
    document = _many_partition_stream(broker, "drained", produced)
    kafka = KafkaResource(bootstrap_servers=broker, group_prefix=f"drained-{uuid.uuid4().hex[:8]}")
    lake = LakeResource(root=str(tmp_path / "lake"))

    progress: list[int] = []  # the records landed so far, after each batch (the asset logs it per batch)

    report = drain_to_landing(
        parse_contract(document),
        kafka,
        lake,
        batch_records=100,
        on_batch=lambda so_far: progress.append(so_far.records),
    )

    assert report.records == produced
    assert len(progress) >= produced // 100 and progress == sorted(set(progress)) and progress[-1] == produced
    assert sorted(report.offsets) == sorted(f"{document['source']['topic']}[{p}]" for p in range(PARTITIONS))
    assert report.lag_after == 0
    # The commits queued after each batch and the run's last one leave the group at every partition's end.
    assert [lag.lag for lag in kafka.lag("drained", (document["source"]["topic"],))] == [0] * PARTITIONS
    _assert_each_record_landed_once(lake.root, "drained", produced)
    # A record's key and payload are written without a dictionary or statistics, its offset and Kafka time
    # without a dictionary, the columns that repeat (topic, partition, hours) with one.
    archive = lake.table("landing", "drained")
    assert archive is not None
    metadata = pq.ParquetFile(archive.file_uris()[0].removeprefix("file://")).metadata.row_group(0)
    chunks = {metadata.column(i).path_in_schema: metadata.column(i) for i in range(metadata.num_columns)}
    assert {name for name, chunk in chunks.items() if chunk.dictionary_page_offset is None} == {
        "offset",
        "timestamp",
        "key",
        "value",
    }
    assert {name for name, chunk in chunks.items() if not chunk.is_stats_set} == {"key", "value"}
    assert {chunk.compression for chunk in chunks.values()} == {"ZSTD"}


def test_consumed_messages_are_read_from_their_fields_as_their_accessors_give_them(broker):
    """Landing reads a batch's messages from their fields in C (`platform_native.message_columns`): on
    messages of this confluent-kafka, consumed from every partition, with and without keys, payloads and
    headers (which the broker's messages hold in librdkafka's form until asked for), that reading is
    taken and gives what the accessor methods give."""
    import platform_native

    topic = f"read-{uuid.uuid4().hex[:8]}"
    ensure_topics(broker, [topic], partitions=PARTITIONS)
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 5})
    produced = 240
    for i in range(produced):
        producer.produce(
            topic,
            key=None if i % 5 == 0 else f"k{i}".encode(),
            value=None if i % 7 == 0 else f'{{"v": {i}}}'.encode(),
            headers=[("source", b"svc"), ("empty", None)] if i % 3 == 0 else None,
            partition=i % PARTITIONS,
        )
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": broker, "group.id": f"read-{uuid.uuid4().hex[:8]}"})
    try:
        consumer.assign([TopicPartition(topic, partition, 0) for partition in range(PARTITIONS)])
        messages: list = []
        while len(messages) < produced:
            messages += consumer.consume(produced, timeout=5)
        read = platform_native.message_columns(messages)
        assert read is not None, "the layout check refused this confluent-kafka's messages"
        assert read == accessor_columns(messages)
        assert sorted(set(read[1])) == list(range(PARTITIONS))
        assert read[6].count(None) == produced - produced // 3
    finally:
        consumer.close()


def test_the_watermarks_of_every_partition_asked_at_once_are_the_brokers_own(broker):
    """`KafkaResource.watermarks` asks for all partitions' earliest and end offsets in one request per end;
    they are what librdkafka's own query gives one partition at a time."""
    document = _many_partition_stream(broker, "watermarks", 300)
    topic = document["source"]["topic"]
    kafka = KafkaResource(bootstrap_servers=broker, group_prefix=f"watermarks-{uuid.uuid4().hex[:8]}")
    consumer = kafka.consumer("watermarks")
    try:
        partitions = [TopicPartition(topic, partition) for partition in range(PARTITIONS)]
        one_by_one = {
            (topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10, cached=False) for tp in partitions
        }
        assert kafka.watermarks(consumer, partitions) == one_by_one
        assert sum(end - earliest for earliest, end in one_by_one.values()) == 300
        assert kafka.watermarks(consumer, []) == {}
    finally:
        consumer.close()


def test_a_run_stopped_by_its_limit_reports_the_lag_it_left(broker, tmp_path):
    """The lag a run reports at its end is what it left unlanded, as another consumer of the group sees
    it too."""
    produced = 600
    document = _many_partition_stream(broker, "limited", produced)
    kafka = KafkaResource(bootstrap_servers=broker, group_prefix=f"limited-{uuid.uuid4().hex[:8]}")

    report = drain_to_landing(
        parse_contract(document), kafka, LakeResource(root=str(tmp_path / "lake")), batch_records=100, max_records=200
    )

    assert 200 <= report.records < produced
    assert report.lag_after == produced - report.records
    assert sum(lag.lag for lag in kafka.lag("limited", (document["source"]["topic"],))) == report.lag_after


def test_the_records_left_after_positions_are_counted_before_any_fetch_too(broker):
    """A consumer that has fetched nothing knows no end offsets from its fetches: those are asked of the
    broker, so the count is what is left, never the zero an unknown end would otherwise give."""
    produced = 120
    document = _many_partition_stream(broker, "left", produced)
    topic = document["source"]["topic"]
    kafka = KafkaResource(bootstrap_servers=broker, group_prefix=f"left-{uuid.uuid4().hex[:8]}")
    consumer = kafka.consumer("left")
    try:
        positions = {(topic, partition): 2 for partition in range(PARTITIONS)}
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), cached=True)[1] < 0  # nothing fetched
        assert kafka.left_after(consumer, positions) == produced - 2 * PARTITIONS
    finally:
        consumer.close()


def test_a_run_overtaken_by_another_run_lands_nothing_twice(broker, tmp_path):
    """Run A resumes and consumes a batch; before A writes it, run B lands everything. A's commit must
    fail (B advanced the same topic partitions since A resumed), and A must re-resume and find nothing left."""
    produced = 300
    document = _many_partition_stream(broker, "overtaken", produced)
    contract = parse_contract(document)
    kafka = KafkaResource(bootstrap_servers=broker, group_prefix=f"overtaken-{uuid.uuid4().hex[:8]}")
    lake = LakeResource(root=str(tmp_path / "lake"))
    overtaking: list[int] = []

    def overtake(stage: str) -> None:
        if stage == "consumed" and not overtaking:
            overtaking.append(drain_to_landing(contract, kafka, lake, batch_records=40).records)

    overtaken = drain_to_landing(contract, kafka, lake, batch_records=40, on_stage=overtake)

    assert overtaking == [produced]
    assert overtaken.records == 0
    _assert_each_record_landed_once(lake.root, "overtaken", produced)


def test_concurrent_landing_processes_land_each_record_exactly_once(broker, tmp_path):
    """Three landing processes of one entity at once (CLI, UI, sensor runs) share the work without
    landing a record twice or skipping one."""
    produced = 900
    document = _many_partition_stream(broker, "concurrent", produced)
    lake_root = str(tmp_path / "lake")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    arguments = [json.dumps(document), broker, f"concurrent-{uuid.uuid4().hex[:8]}", lake_root, "none", "0"]
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), *arguments],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [worker.communicate(timeout=180) for worker in workers]
    for worker, (_, stderr) in zip(workers, outcomes, strict=True):
        assert worker.returncode == 0, stderr[-2000:]
    landed_by_each = [json.loads(stdout.strip().splitlines()[-1])["records"] for stdout, _ in outcomes]
    assert sum(landed_by_each) == produced
    _assert_each_record_landed_once(lake_root, "concurrent", produced)


def test_no_consume_waits_for_more_records_than_the_partitions_hold(broker, tmp_path, monkeypatch):
    """A consume asked for more records than are left waits its whole timeout (a second) for the rest:
    each batch asks for at most what the partitions still hold, so neither the last, short batch of a
    drain nor the only batch of a run that finds fewer records than a batch waits."""
    from confluent_kafka import Consumer

    from resources.kafka import PlatformConsumer

    produced = 250
    document = _many_partition_stream(broker, "tail", produced)
    asked: list[tuple[int, int]] = []  # (records asked for, records consumed before) of the run
    consumed = [0]

    def consume(self, num_messages=1, timeout=-1):
        messages = Consumer.consume(self, num_messages, timeout)
        asked.append((num_messages, consumed[0]))
        consumed[0] += len(messages)
        return messages

    monkeypatch.setattr(PlatformConsumer, "consume", consume)
    for batch_records in (100, 1000):  # batches of 100, 100 and 50; one batch of 250
        asked.clear()
        consumed[0] = 0
        kafka = KafkaResource(bootstrap_servers=broker, group_prefix=f"tail-{uuid.uuid4().hex[:8]}")
        lake = LakeResource(root=str(tmp_path / f"lake-{batch_records}"))
        report = drain_to_landing(parse_contract(document), kafka, lake, batch_records=batch_records)

        assert report.records == produced
        assert asked and all(wanted <= produced - before for wanted, before in asked), (batch_records, asked)
