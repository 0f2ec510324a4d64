"""An erasure that runs while a landing run is between consuming and committing leaves nothing behind."""

from __future__ import annotations

import uuid

import pytest
from helpers import json_entity_on_new_topic

from platform_assets.erasure import erase
from platform_assets.landing import drain_to_landing
from resources.kafka import KafkaResource
from resources.lake import LakeResource

pytestmark = pytest.mark.broker


def test_a_record_of_a_key_erased_while_landing_is_in_flight_never_reaches_the_archive(broker, tmp_path):
    contract = json_entity_on_new_topic(broker, "people", ["2026-01-01T10:00:00Z"] * 10)
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
