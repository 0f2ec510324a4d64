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


def test_a_batch_consumed_while_a_refused_batch_was_written_lands_after_it(broker, tmp_path):
    """Landing takes the next batch from the consumer while it writes one. When that write is refused (an
    erasure changed the lists it was filtered with), the batch taken meanwhile must not land ahead of the
    refused one: both are consumed again, in order, so no record is skipped."""
    contract = json_entity_on_new_topic(broker, "people", ["2026-01-01T10:00:00Z"] * 10)
    kafka = KafkaResource(bootstrap_servers=broker, group_prefix=f"erase-landing-{uuid.uuid4().hex[:6]}")
    lake = LakeResource(root=str(tmp_path / "lake"))
    audits: list[dict] = []

    def erase_while_in_flight(stage: str) -> None:
        if stage == "consumed" and not audits:  # the first batch, k0 to k2, is refused; k3 on are taken meanwhile
            audits.append(erase(contract, ["k1"], lake, [contract]))

    report = drain_to_landing(contract, kafka, lake, batch_records=3, on_stage=erase_while_in_flight)

    assert audits[0]["verified"]
    offsets = sorted(row["offset"] for row in lake.read("landing", "people").to_pylist())
    assert offsets == [i for i in range(10) if i != 1]
    assert report.records == 9 and report.erased_at_landing == 1
