"""Landing holds each Kafka record exactly once, whatever point of the cycle a crash hits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from resources.lake import LakeResource
from simulator.service import ensure_topics

pytestmark = pytest.mark.broker

WORKER = Path(__file__).with_name("landing_crash_worker.py")
PRODUCED = 400


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
    ensure_topics(broker, topics.values())
    producer = Producer({"bootstrap.servers": broker, "batch.num.messages": 1})
    for i in range(PRODUCED):
        value = {"id": f"k{i % 37}", "ts": f"2026-01-01T{i % 24:02d}:00:00Z", "v": i}
        producer.produce(topics["create" if i % 3 else "update"], key=b"k", value=json.dumps(value).encode())
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
    positions = sorted((row["topic"], row["offset"]) for row in landed)
    assert len(positions) == PRODUCED
    assert len(set(positions)) == PRODUCED, "a record was landed twice"
    for topic in topics.values():
        offsets = [offset for t, offset in positions if t == topic]
        assert offsets == list(range(len(offsets))), f"gap in {topic}"
    # A crash after the Delta commit but before the Kafka commit left Kafka behind; Delta decided.
    again = run("none", 0)
    assert json.loads(again.stdout.strip().splitlines()[-1]) == {"records": 0}
