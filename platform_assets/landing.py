"""Landing: each Kafka record of an entity appended exactly once to `landing/<entity>`.

The cycle is consume a batch -> append it to Delta in one commit that also records, per topic
partition, the last landed offset as a Delta app transaction -> commit the offsets to Kafka. After a
crash anywhere in that cycle the next run resumes after the offsets the Delta log says were landed,
so a batch written but not committed to Kafka is never landed twice, and nothing is skipped.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow.compute as pc
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, MetadataValue, asset

from platform_assets.entity import asset_key, entity_asset_properties, lake_pool
from platform_assets.lib.archive import app_id, landing_rows, last_offsets
from platform_assets.lib.contract import Contract
from platform_assets.lib.decode import SchemaLookup
from platform_assets.lib.records import LandingRecord
from platform_assets.partitions import hour_key
from platform_assets.retries import retry_transient_failures
from resources.kafka import KafkaResource, KafkaUnavailableError
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource

LANDING_KINDS = {"kafka", "delta"}


def topic_key(topic: str) -> AssetKey:
    return AssetKey(["kafka", topic])


def topic_specs(contracts: list[Contract]) -> list[AssetSpec]:
    """The Kafka topics as external assets, so the lineage of every mart reaches back to its topics."""
    owners: dict[str, str] = {}
    for contract in contracts:
        for topic in contract.source.topics:
            owners.setdefault(topic, contract.owner)
    return [
        AssetSpec(
            topic_key(topic),
            description=f"Kafka topic `{topic}` (published by {owner or 'its source service'}).",
            kinds={"kafka"},
            owners=[f"team:{owner}"] if owner else None,
            group_name="kafka_topics",
        )
        for topic, owner in sorted(owners.items())
    ]


class LandingConflictError(RuntimeError):
    """The landing archive and the broker disagree about which records exist; landing would lose data."""


@dataclass
class LandingReport:
    records: int = 0
    bytes: int = 0
    offsets: dict[str, list[int]] = field(default_factory=dict)
    event_hours: set[str] = field(default_factory=set)
    lag_after: int = 0
    expired_before_landing: int = 0


def _to_record(message: Message) -> LandingRecord:
    headers = message.headers()
    if isinstance(headers, dict):
        headers = list(headers.items())
    return LandingRecord(
        str(message.topic()),
        int(message.partition() or 0),
        int(message.offset() or 0),
        message.timestamp()[1],
        message.key(),
        message.value(),
        tuple((name, value.encode() if isinstance(value, str) else value) for name, value in headers)
        if headers
        else (),
    )


def _resume_offsets(
    contract: Contract, kafka: KafkaResource, lake: LakeResource, consumer: Consumer, report: LandingReport
) -> dict[tuple[str, int], int]:
    """Where to resume each partition: after the last offset the landing table's Delta log says it holds.

    The Kafka commit can lag behind the Delta commit (a crash between the two), never lead it, so the
    Delta log decides; records that retention deleted before they were landed are reported, not hidden.
    """
    partitions = kafka.partitions(consumer, contract.source.topics)
    committed = kafka.committed(consumer, partitions)
    positions = {}
    for tp in partitions:
        position = (tp.topic, tp.partition)
        landed = lake.transaction_version("landing", contract.name, app_id(contract.name, tp.topic, tp.partition))
        resume = max(committed[position] or 0, landed + 1 if landed is not None else 0)
        earliest, _ = kafka.watermarks(consumer, tp)
        if earliest > resume:
            report.expired_before_landing += earliest - resume
            resume = earliest
        positions[position] = resume
    return positions


def drain_to_landing(
    contract: Contract,
    kafka: KafkaResource,
    lake: LakeResource,
    schema_lookup: SchemaLookup | None = None,
    batch_records: int = 50_000,
    max_records: int = 5_000_000,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> LandingReport:
    """Land batch after batch until the topics are drained (or `max_records`); return what was landed."""
    report = LandingReport()
    consumer = kafka.consumer(contract.name)
    try:
        positions = _resume_offsets(contract, kafka, lake, consumer, report)
        if not positions:
            return report
        consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in positions.items()])
        while report.records < max_records and not kafka.caught_up(consumer, positions):
            messages = consumer.consume(batch_records, timeout=1.0)
            if not messages:
                break
            records = [_to_record(m) for m in messages if _checked(contract, m)]
            on_stage("consumed")
            table = landing_rows(contract, records, schema_lookup, datetime.now(UTC))
            last = last_offsets(table)
            lake.append(
                "landing",
                contract.name,
                table,
                app_transactions={app_id(contract.name, t, p): offset for (t, p), offset in last.items()},
            )
            on_stage("written")
            kafka.commit(consumer, [TopicPartition(t, p, o + 1) for (t, p), o in last.items()])
            on_stage("committed")
            for (t, p), offset in last.items():
                span = report.offsets.setdefault(f"{t}[{p}]", [positions[(t, p)], offset])
                span[1] = offset
                positions[(t, p)] = offset + 1
            report.records += len(records)
            report.bytes += sum(pc.sum(pc.binary_length(table[column])).as_py() or 0 for column in ("key", "value"))
            report.event_hours.update(hour_key(h) for h in pc.unique(table["_event_hour"]).to_pylist())
        report.lag_after = sum(lag.lag for lag in kafka.lag(contract.name, contract.source.topics))
        return report
    finally:
        consumer.close()


def _checked(contract: Contract, message: Message) -> bool:
    error = message.error()
    if error is None:
        return True
    if error.code() == KafkaError.OFFSET_OUT_OF_RANGE:
        raise LandingConflictError(
            f"landing/{contract.name} resumes {message.topic()}[{message.partition()}] after offsets that the "
            "broker no longer has: the topic was recreated, or PLATFORM_LAKE_ROOT belongs to another Kafka "
            "cluster. Point KAFKA_BOOTSTRAP_SERVERS and PLATFORM_LAKE_ROOT at matching systems, or archive "
            "the landing table before landing the new topic."
        )
    raise KafkaUnavailableError(f"Kafka error while landing {contract.name}: {error}")


def build_landing_asset(contract: Contract):
    @asset(
        key=asset_key("landing", contract),
        description=(
            f"Exact copies of the Kafka records of {contract.name} ({', '.join(contract.source.topics)}): "
            "topic, partition, offset, timestamp, key, value bytes, headers. Append-only archive that "
            "every rebuild replays; each record lands exactly once."
        ),
        **entity_asset_properties(contract, "landing"),
        kinds=LANDING_KINDS,
        deps=[topic_key(topic) for topic in contract.source.topics],
        pool=lake_pool(contract, "landing"),
    )
    def landing_asset(
        context: AssetExecutionContext,
        kafka: KafkaResource,
        lake: LakeResource,
        schema_registry: SchemaRegistryResource,
    ) -> MaterializeResult:
        started = time.monotonic()
        with retry_transient_failures():
            report = drain_to_landing(
                contract,
                kafka,
                lake,
                schema_registry.lookup(),
                on_stage=lambda stage: context.log.debug(stage),
            )
        context.log.info(f"landed {report.records} records of {contract.name} ({report.bytes} bytes)")
        return MaterializeResult(
            metadata={
                "records": report.records,
                "bytes": report.bytes,
                "offsets": MetadataValue.json(report.offsets),
                "event_hours": MetadataValue.json(sorted(report.event_hours)),
                "lag_after": report.lag_after,
                "expired_before_landing": report.expired_before_landing,
                "duration_s": round(time.monotonic() - started, 3),
                "table_version": lake.version("landing", contract.name) or 0,
            }
        )

    return landing_asset
