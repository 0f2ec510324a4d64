"""A broker that restarts in the middle of landing, on durable storage (tansu on S3, here moto):
landing carries on or resumes, and every record is landed exactly once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import boto3
import pytest
from confluent_kafka import Producer

from devstack.broker import Broker, start_broker
from platform_assets.landing import drain_to_landing
from platform_assets.lib.contract import parse_contract
from resources.kafka import KafkaResource, KafkaUnavailableError
from resources.lake import LakeResource
from simulator.service import ensure_topics

pytestmark = [pytest.mark.storage, pytest.mark.broker]

PRODUCED = 120
BATCH = 20


class DurableBroker:
    """tansu on a bucket of its own; `crash()` SIGKILLs it, `start()` brings it back on the same port."""

    def __init__(self, endpoint: str, log_dir) -> None:
        self.bucket = f"tansu-{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=self.bucket)
        self.environment = {
            "AWS_ENDPOINT": endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        self.log = log_dir / "tansu.log"
        self.running: Broker | None = None
        self.port: int | None = None

    def start(self) -> str:
        self.running = start_broker(self.port, self.log, storage=f"s3://{self.bucket}/", environment=self.environment)
        self.port = self.running.port
        return self.running.bootstrap

    def crash(self) -> None:
        assert self.running is not None
        self.running.process.kill()
        self.running.process.wait(timeout=10)
        self.running = None

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()


@pytest.fixture
def durable_broker(moto_endpoint, tmp_path) -> Iterator[DurableBroker]:
    broker = DurableBroker(moto_endpoint, tmp_path)
    yield broker
    broker.stop()


def setup_topic(bootstrap: str, **kafka_settings):
    suffix = uuid.uuid4().hex[:8]
    contract = parse_contract(
        {
            "name": "restarted",
            "source": {"format": "json", "topic": f"restarted-{suffix}"},
            "key": ["id"],
            "sequence": "v",
            "event_time": "ts",
            "fields": {"id": {}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
        }
    )
    ensure_topics(bootstrap, contract.source.topics)
    # One message per batch: the embedded broker reports end offsets correctly only then.
    producer = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1})
    for i in range(PRODUCED):
        value = {"id": f"k{i % 17}", "ts": f"2026-01-01T{i % 24:02d}:00:00Z", "v": i}
        producer.produce(contract.source.topics[0], key=b"k", value=json.dumps(value).encode())
    assert producer.flush(30) == 0
    settings = {"request_timeout_s": 10, **kafka_settings}
    kafka = KafkaResource(bootstrap_servers=bootstrap, group_prefix=f"restart-{suffix}", **settings)
    return contract, kafka


def assert_landed_exactly_once(lake: LakeResource, contract) -> None:
    offsets = sorted(row["offset"] for row in lake.read("landing", contract.name).to_pylist())
    assert offsets == list(range(PRODUCED)), "every record exactly once, none skipped"


def test_landing_carries_on_through_a_broker_restart(durable_broker, tmp_path):
    """The broker crashes right after a batch was written to Delta and comes back before its offsets are
    committed: the same landing run commits, fetches the rest and finishes."""
    contract, kafka = setup_topic(durable_broker.start())
    lake = LakeResource(root=str(tmp_path / "lake"))
    restarts = []

    def restart_after_the_first_write(stage: str) -> None:
        if stage == "written" and not restarts:
            durable_broker.crash()
            durable_broker.start()
            restarts.append(stage)

    report = drain_to_landing(contract, kafka, lake, batch_records=BATCH, on_stage=restart_after_the_first_write)

    assert restarts and report.records == PRODUCED
    assert_landed_exactly_once(lake, contract)
    lags = kafka.lag(contract.name, contract.source.topics)
    assert [lag.committed_offset for lag in lags] == [PRODUCED], "the restarted broker kept the commits"


def test_landing_resumes_after_the_broker_was_down_between_write_and_commit(durable_broker, tmp_path):
    """The broker dies after a batch reached Delta and stays down: the run lands what it had fetched
    (its commits after each batch are queued), fails as transient when its last commit is not taken (a
    retry is due), and the next run, once the broker is back, resumes after what Delta holds."""
    contract, kafka = setup_topic(durable_broker.start())
    lake = LakeResource(root=str(tmp_path / "lake"))

    written = []

    def crash_after_the_second_write(stage: str) -> None:
        if stage == "written":
            written.append(stage)
            if len(written) == 2:
                durable_broker.crash()

    with pytest.raises(KafkaUnavailableError):
        drain_to_landing(contract, kafka, lake, batch_records=BATCH, on_stage=crash_after_the_second_write)
    landed_before = lake.read("landing", contract.name).num_rows
    assert landed_before >= 2 * BATCH, "both written batches stay landed"

    durable_broker.start()
    report = drain_to_landing(contract, kafka, lake, batch_records=BATCH)

    assert report.records == PRODUCED - landed_before, "the lost commits cost nothing: Delta decided"
    assert_landed_exactly_once(lake, contract)


def test_a_broker_gone_for_good_holds_no_call_of_landing_past_its_request_timeout(durable_broker, tmp_path):
    """librdkafka's synchronous commit waits for a group coordinator for as long as its session allows
    (minutes) and its close may wait for ever (librdkafka#3740): the landing run gives each up after
    `request_timeout_s`, fails as transient, and the next run resumes after what Delta holds."""
    contract, kafka = setup_topic(durable_broker.start(), request_timeout_s=2, session_timeout_ms=120_000)
    lake = LakeResource(root=str(tmp_path / "lake"))

    def crash_after_the_first_write(stage: str) -> None:
        if stage == "written" and durable_broker.running is not None:
            durable_broker.crash()

    with pytest.raises(KafkaUnavailableError, match="did not take the commit within 2 s"):
        drain_to_landing(contract, kafka, lake, batch_records=BATCH, on_stage=crash_after_the_first_write)
    landed_before = lake.read("landing", contract.name).num_rows
    assert landed_before >= BATCH

    durable_broker.start()
    report = drain_to_landing(contract, kafka, lake, batch_records=BATCH)
    assert report.records == PRODUCED - landed_before
    assert_landed_exactly_once(lake, contract)
