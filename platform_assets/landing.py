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

import pyarrow as pa
from confluent_kafka import Message, TopicPartition
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from platform_assets.lib.contract import Contract
from platform_assets.lib.decode import LandingRecord, SchemaLookup, decode, event_hour
from platform_assets.lib.tables import LANDING_SCHEMA
from platform_assets.partitions import hour_key
from platform_assets.retries import retry_transient_failures
from resources.kafka import KafkaResource, KafkaUnavailableError
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource

LANDING_KINDS = {"kafka", "delta"}


def app_id(entity: str, topic: str, partition: int) -> str:
    return f"landing:{entity}:{topic}:{partition}"


class LandingConflictError(RuntimeError):
    """The landing archive and the broker disagree about which records exist; landing would lose data."""


@dataclass
class LandingReport:
    records: int = 0
    bytes: int = 0
    offsets: dict[str, list[int]] = field(default_factory=dict)
    event_hours: set[str] = field(default_factory=set)
    lag_after: int = 0


def _to_record(message: Message) -> LandingRecord:
    return LandingRecord(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        timestamp_ms=message.timestamp()[1],
        key=message.key(),
        value=message.value(),
        headers=tuple(message.headers() or ()),
    )


def landing_rows(
    contract: Contract, records: list[LandingRecord], schema_lookup: SchemaLookup | None, landed_at: datetime
) -> pa.Table:
    hours = [event_hour(contract, r, decode(contract, r, schema_lookup)) for r in records]
    return pa.Table.from_pydict(
        {
            "topic": [r.topic for r in records],
            "partition": [r.partition for r in records],
            "offset": [r.offset for r in records],
            "timestamp": [datetime.fromtimestamp(r.timestamp_ms / 1000, tz=UTC) for r in records],
            "key": [r.key for r in records],
            "value": [r.value for r in records],
            "headers": [[{"key": k, "value": v} for k, v in r.headers] for r in records],
            "_event_hour": hours,
            "_landed_at": [landed_at] * len(records),
        },
        schema=LANDING_SCHEMA,
    )


def drain_to_landing(
    contract: Contract,
    kafka: KafkaResource,
    lake: LakeResource,
    schema_lookup: SchemaLookup | None = None,
    batch_records: int = 50_000,
    on_stage: Callable[[str], None] = lambda stage: None,
    idle_polls: int = 3,
) -> LandingReport:
    """Land everything up to the end offsets seen at the start, batch by batch; return what was landed."""
    report = LandingReport()
    consumer = kafka.consumer(contract.name)
    try:
        partitions = kafka.partitions(consumer, contract.source.topics)
        ends = kafka.end_offsets(consumer, partitions)
        committed = kafka.committed(consumer, partitions)
        positions = {}
        for tp in partitions:
            landed = lake.transaction_version("landing", contract.name, app_id(contract.name, tp.topic, tp.partition))
            resume = max(committed[(tp.topic, tp.partition)] or 0, landed + 1 if landed is not None else 0)
            if resume > ends[(tp.topic, tp.partition)]:
                time.sleep(1.0)  # some brokers answer a stale end offset right after a produce; ask again
                ends.update(kafka.end_offsets(consumer, [tp]))
            if resume > ends[(tp.topic, tp.partition)]:
                raise LandingConflictError(
                    f"landing/{contract.name} holds {tp.topic}[{tp.partition}] up to offset {resume - 1}, but the "
                    f"topic ends at offset {ends[(tp.topic, tp.partition)]}: the topic was recreated or "
                    f"PLATFORM_LAKE_ROOT belongs to another Kafka cluster. Point KAFKA_BOOTSTRAP_SERVERS and "
                    "PLATFORM_LAKE_ROOT at matching systems, or archive the landing table before re-landing."
                )
            positions[(tp.topic, tp.partition)] = resume
        pending = [tp for tp in partitions if positions[(tp.topic, tp.partition)] < ends[(tp.topic, tp.partition)]]
        if pending:
            consumer.assign([TopicPartition(tp.topic, tp.partition, positions[(tp.topic, tp.partition)]) for tp in pending])
        idle = 0
        while pending and idle < idle_polls:
            messages = consumer.consume(batch_records, timeout=1.0)
            records = []
            for message in messages:
                if message.error():
                    raise KafkaUnavailableError(f"Kafka error while landing {contract.name}: {message.error()}")
                if message.offset() >= positions[(message.topic(), message.partition())]:
                    records.append(_to_record(message))
            idle = 0 if records else idle + 1
            if not records:
                continue
            on_stage("consumed")
            last = {}
            for record in records:
                last[(record.topic, record.partition)] = max(last.get((record.topic, record.partition), -1), record.offset)
            table = landing_rows(contract, records, schema_lookup, datetime.now(UTC))
            lake.append(
                "landing", contract.name, table,
                app_transactions={app_id(contract.name, t, p): offset for (t, p), offset in last.items()},
            )
            on_stage("written")
            consumer.commit(offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()], asynchronous=False)
            on_stage("committed")
            for (t, p), offset in last.items():
                span = report.offsets.setdefault(f"{t}[{p}]", [positions[(t, p)], offset])
                span[1] = offset
                positions[(t, p)] = offset + 1
            report.records += len(records)
            report.bytes += sum(len(r.value or b"") + len(r.key or b"") for r in records)
            report.event_hours.update(hour_key(h) for h in table.column("_event_hour").to_pylist())
            if all(positions[(tp.topic, tp.partition)] >= ends[(tp.topic, tp.partition)] for tp in pending):
                break
        report.lag_after = sum(max(0, ends[k] - positions[k]) for k in ends)
        return report
    finally:
        consumer.close()


def build_landing_asset(contract: Contract):
    @asset(
        key=AssetKey(["landing", contract.name]),
        description=(
            f"Exact copies of the Kafka records of {contract.name} ({', '.join(contract.source.topics)}): "
            "topic, partition, offset, timestamp, key, value bytes, headers. Append-only archive that "
            "every rebuild replays; each record lands exactly once."
        ),
        group_name=contract.name,
        owners=[f"team:{contract.owner}"] if contract.owner else None,
        kinds=LANDING_KINDS,
        tags={"layer": "landing", "entity": contract.name},
        pool="lake_landing_" + contract.name,
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
                contract, kafka, lake, schema_registry.lookup(), on_stage=lambda stage: context.log.debug(stage)
            )
        context.log.info(f"landed {report.records} records of {contract.name} ({report.bytes} bytes)")
        return MaterializeResult(
            metadata={
                "records": report.records,
                "bytes": report.bytes,
                "offsets": MetadataValue.json(report.offsets),
                "event_hours": MetadataValue.json(sorted(report.event_hours)),
                "lag_after": report.lag_after,
                "duration_s": round(time.monotonic() - started, 3),
                "table_version": lake.version("landing", contract.name) or 0,
            }
        )

    return landing_asset
