"""An erasure that runs while a landing run is between consuming and committing leaves nothing behind."""

from __future__ import annotations

import json
import uuid

import pytest
from confluent_kafka import Producer

from platform_assets.erasure import erase
from platform_assets.landing import drain_to_landing
from platform_assets.lib.contract import parse_contract
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from simulator.service import ensure_topics

pytestmark = pytest.mark.broker


def test_a_record_of_a_key_erased_while_landing_is_in_flight_never_reaches_the_archive(broker, tmp_path):
    topic = f"erase-landing-{uuid.uuid4().hex[:6]}"
    contract = parse_contract(
        {
            "name": "people",
            "source": {"format": "json", "topic": topic},
            "key": ["id"],
            "sequence": "v",
            "event_time": "ts",
            "fields": {"id": {"nullable": False}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
        }
    )
    ensure_topics(broker, [topic])
    producer = Producer({"bootstrap.servers": broker, "batch.num.messages": 1})
    for i in range(10):
        value = json.dumps({"id": f"k{i}", "ts": "2026-01-01T10:00:00Z", "v": i}).encode()
        producer.produce(topic, key=f"k{i}".encode(), value=value)
    assert producer.flush(30) == 0
    kafka = KafkaResource(bootstrap_servers=broker, group_prefix=f"erase-landing-{uuid.uuid4().hex[:6]}")
    lake = LakeResource(root=str(tmp_path / "lake"))
    audits: list[dict] = []

    def erase_while_in_flight(stage: str) -> None:
        if stage == "consumed" and not audits:  # k7 is consumed, not yet written: the erasure's scan misses it
            audits.append(erase(contract, ["k7"], lake, [contract]))

    report = drain_to_landing(contract, kafka, lake, on_stage=erase_while_in_flight)

    assert audits[0]["verified"]
    landed = sorted(row["key"] for row in lake.read("landing", "people").to_pylist())
    assert landed == [f"k{i}".encode() for i in range(10) if i != 7]
    assert report.records == 9 and report.erased_at_landing == 1
    assert drain_to_landing(contract, kafka, lake).records == 0, "the erased record's position was passed"
