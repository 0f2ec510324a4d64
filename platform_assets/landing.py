"""Landing: each Kafka record of an entity appended exactly once to `landing/<entity>`.

The cycle is consume a batch -> append it to Delta in one commit that also records, per topic
partition, the last landed offset as a Delta app transaction -> commit the offsets to Kafka. After a
crash anywhere in that cycle the next run resumes after the offsets the Delta log says were landed,
so a batch written but not committed to Kafka is never landed twice, and nothing is skipped.
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from operator import itemgetter
from typing import Any, NoReturn

import platform_native
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, MetadataValue, asset
from deltalake import DeltaTable

from platform_assets import checks
from platform_assets.entity import asset_key, ensure_tables, entity_asset_properties, lake_pool
from platform_assets.erasure import erased_landing_test
from platform_assets.lib import columns
from platform_assets.lib.archive import (
    ERASURE_GENERATION,
    OPAQUE_LANDING_COLUMNS,
    UNIQUE_LANDING_COLUMNS,
    app_id,
    landing_rows,
    offset_spans,
)
from platform_assets.lib.collector import collector_paused
from platform_assets.lib.contract import Contract
from platform_assets.lib.decode import SchemaLookup
from platform_assets.lib.records import LandingBatch
from platform_assets.partitions import DEFAULT_PARTITIONS, Partitions, hour_key
from platform_assets.retries import retry_transient_failures
from resources.kafka import KafkaResource, KafkaUnavailableError
from resources.lake import LakeCommitConflictError, LakeResource
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
    # `topic[partition]` -> [first, last] offset that Kafka retention deleted before they were landed.
    expired: dict[str, list[int]] = field(default_factory=dict)
    # Records consumed but not archived because an erasure list names their key.
    erased_at_landing: int = 0

    @property
    def expired_before_landing(self) -> int:
        return sum(last - first + 1 for first, last in self.expired.values())


def _consume(contract: Contract, consumer: Consumer, batch_records: int) -> LandingBatch | None:
    """The next batch of records as columns (None when the broker had nothing within a second).

    The `Message` objects are dropped here, before the batch is landed: they are containers that the
    cyclic collector tracks, and alive when it runs they count towards its walks of the whole heap.
    """
    messages = consumer.consume(batch_records, timeout=1.0)
    if not messages:
        return None
    return _consumed(contract, messages)


def _at_or_after(
    records: LandingBatch, positions: dict[tuple[str, int], int]
) -> tuple[LandingBatch, dict[tuple[str, int], tuple[int, int]]]:
    """The records at or after each partition's position, with their `offset_spans`: never one fetched
    before a reassignment moved its partition past it, or one that another run landed meanwhile."""
    spans = offset_spans(records)
    if all(first >= positions[position] for position, (first, _) in spans.items()):
        return records, spans
    records = records.only(
        [
            offset >= positions[position]
            for position, offset in zip(
                zip(records.topics, records.partitions, strict=True), records.offsets, strict=True
            )
        ]
    )
    return records, offset_spans(records)


def _consumed(contract: Contract, messages: list[Message]) -> LandingBatch:
    """The messages as columns (see `LandingBatch`), read from the messages' fields in C; a message with
    an error raises it. Where `platform_native` does not know the messages' layout (another
    confluent-kafka), a `map` of each accessor method per column: that loop runs in C too, but its call
    per message and column was 9-10 ms of each 25k-record batch, against 2-3 ms."""
    read = platform_native.message_columns(messages)
    if isinstance(read, int):
        _raise_for(contract, messages[read])
    if read is None:
        for message in messages:
            if message.error() is not None:
                _raise_for(contract, message)
        read = (
            list(map(Message.topic, messages)),  # type: ignore[arg-type]
            list(map(Message.partition, messages)),  # type: ignore[arg-type]
            list(map(Message.offset, messages)),  # type: ignore[arg-type]
            list(map(itemgetter(1), map(Message.timestamp, messages))),
            list(map(Message.key, messages)),
            list(map(Message.value, messages)),
            list(map(Message.headers, messages)),
        )
    topics, partitions, offsets, timestamps_ms, keys, values, headers = read
    return LandingBatch(topics, partitions, offsets, timestamps_ms, keys, values, _headers(headers))


def _headers(headers: list[Any]) -> list[tuple[tuple[str, bytes | None], ...]]:
    """Each message's headers as (name, bytes) pairs; most records have none. What a consumer returns
    (lists of name and bytes pairs, or None) is taken as it is, found so by C-level passes: a generator
    per header and record took 4 s of a million records with two headers each.

    Equal header lists become one shared tuple (a producer sets the same few headers on record after
    record): a batch then keeps a tuple per distinct list, not three per record for the collector to
    walk, and `archive.landing_rows` builds each distinct list once by its identity."""
    if not any(headers):
        return [()] * len(headers)
    if set(map(type, headers)) <= {list, tuple, type(None)}:
        values = map(itemgetter(1), chain.from_iterable(filter(None, headers)))
        if str not in set(map(type, values)):
            shared: dict[tuple[tuple[str, bytes | None], ...], tuple[tuple[str, bytes | None], ...]] = {(): ()}
            return [shared.setdefault(pairs, pairs) for pairs in map(tuple, map(_or_empty, headers))]
    return [
        tuple((name, value.encode() if isinstance(value, str) else value) for name, value in _pairs(record_headers))
        for record_headers in headers
    ]


def _or_empty(headers: list[Any] | tuple[Any, ...] | None) -> list[Any] | tuple[Any, ...]:
    return headers or ()


def _pairs(headers: Any) -> Any:
    return () if not headers else headers.items() if isinstance(headers, dict) else headers


def _resume_offsets(
    contract: Contract,
    kafka: KafkaResource,
    archive: DeltaTable,
    consumer: Consumer,
    partitions: list[TopicPartition],
    report: LandingReport,
) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
    """Where to resume each partition: after the last offset the landing table's Delta log says it holds;
    and the partition's end offset, as the broker answers it now.

    The Kafka commit can lag behind the Delta commit (a crash between the two), never lead it, so the
    Delta log decides; records that retention deleted before they were landed are reported, not hidden.
    """
    committed = kafka.committed(consumer, partitions)
    watermarks = kafka.watermarks(consumer, partitions)
    positions, ends = {}, {}
    for tp in partitions:
        position = (tp.topic, tp.partition)
        landed = archive.transaction_version(app_id(contract.name, tp.topic, tp.partition))
        resume = max(committed[position] or 0, landed + 1 if landed is not None else 0)
        earliest, ends[position] = watermarks[position]
        if earliest > resume:
            report.expired[f"{tp.topic}[{tp.partition}]"] = [resume, earliest - 1]
            resume = earliest
        positions[position] = resume
    return positions, ends


def _follow_other_writers(
    contract: Contract, archive: DeltaTable, positions: dict[tuple[str, int], int], consumer: Consumer
) -> bool:
    """Move every partition that another landing run advanced in `archive` to after what that run landed.

    Afterwards each position is right after the offset `archive`'s version records for its partition
    (or nothing is recorded there yet), which is what a commit read from that version may build on.
    Returns whether a position moved (the consumer is then reassigned to the new positions).
    """
    moved = False
    for (topic, partition), position in positions.items():
        landed = archive.transaction_version(app_id(contract.name, topic, partition))
        if landed is not None and landed + 1 > position:
            positions[(topic, partition)] = landed + 1
            moved = True
    if moved:
        consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in positions.items()])
    return moved


def drain_to_landing(
    contract: Contract,
    kafka: KafkaResource,
    lake: LakeResource,
    schema_lookup: SchemaLookup | None = None,
    batch_records: int = 25_000,
    max_records: int = 5_000_000,
    on_stage: Callable[[str], None] = lambda stage: None,
    on_batch: Callable[[LandingReport], None] = lambda report: None,
    first_hour: datetime = DEFAULT_PARTITIONS.first_hour,
) -> LandingReport:
    """Land batch after batch until the topics are drained (or `max_records`); return what was landed.

    Several runs of one entity may land at once (CLI, UI, sensor, a retry). Each batch is committed
    against `archive`, the table version its positions were derived from: a run that another run
    overtook on one of the batch's partitions fails that commit (Delta transaction conflict), drops
    the batch, moves to after what the other run landed and consumes again.

    A batch's Delta write runs in a thread while the next batch is consumed and turned into rows
    against the positions after it; its offsets go to Kafka only after its Delta commit, as before.

    A batch of `batch_records`: the first batch is consumed and the last one written while nothing else
    runs, and at 25k records a 200k-record drain took 0.52 s against 0.56 s at 50k (the same 2.3 s for
    a million records, whose commits are twice as many).

    `on_stage` is called at each step of a batch's cycle (tests crash or interleave runs there);
    `on_batch` with the report so far after each batch has landed (the asset logs it: a long drain
    shows its progress, in one event per batch rather than one per step).
    """
    report = LandingReport()
    consumer = kafka.consumer(contract.name)
    try:
        partitions = kafka.partitions(consumer, contract.source.topics)
        if not partitions:
            return report
        ensure_tables(lake, contract, ("landing",))
        archive = lake.table("landing", contract.name)
        assert archive is not None
        generation = archive.transaction_version(ERASURE_GENERATION)  # before the lists: see erasure._fence_landing
        is_erased = erased_landing_test(lake, contract, schema_lookup)
        positions, ends = _resume_offsets(contract, kafka, archive, consumer, partitions, report)
        consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in positions.items()])

        def batch_size(at: dict[tuple[str, int], int]) -> int:
            """Records to consume after the positions `at`: a consume asked for more than are left waits
            its whole timeout (a second) for the rest, as the last batch of every drain did."""
            return max(1, min(batch_records, kafka.left_after(consumer, at, ends)))

        def prepared(consumed: LandingBatch, at: dict[tuple[str, int], int]) -> _Prepared | None:
            """The records at or after the positions `at`, minus erased ones, as landing rows (None: none left)."""
            records, spans = _at_or_after(consumed, at)
            if not records.size:
                return None
            on_stage("consumed")
            kept = (
                records if is_erased is None else records.only([not is_erased(record) for record in records.records()])
            )
            table = landing_rows(contract, kept, schema_lookup, datetime.now(UTC), first_hour)
            return _Prepared(dict(at), records, spans, kept, table)

        # The next batch, consumed and prepared against the positions after the last one while that was written.
        ahead: LandingBatch | None = None
        ahead_prepared: _Prepared | None = None
        drained = False  # the broker had nothing more within a second
        landed_partitions: set[tuple[str, int]] = set()
        with ThreadPoolExecutor(1, thread_name_prefix="landing-write") as writer:
            while not drained and report.records < max_records and not kafka.caught_up(consumer, positions):
                with collector_paused():  # a batch's messages, columns and payloads hold no cycle (see `_consume`)
                    if ahead is None:
                        ahead = _consume(contract, consumer, batch_size(positions))
                        if ahead is None:
                            break
                    reusable = ahead_prepared is not None and ahead_prepared.positions == positions
                    batch = ahead_prepared if reusable else prepared(ahead, positions)
                    ahead = ahead_prepared = None
                if batch is None:
                    continue
                records, spans, kept, table = batch.records, batch.spans, batch.kept, batch.table
                last = {position: last for position, (_, last) in spans.items()}
                landed = {app_id(contract.name, t, p): offset for (t, p), offset in last.items()}
                read_version = archive.version()
                written = writer.submit(
                    lake.append,
                    "landing",
                    contract.name,
                    table,
                    app_transactions={**landed, ERASURE_GENERATION: -1 if generation is None else generation},
                    read=archive,
                    unique_columns=UNIQUE_LANDING_COLUMNS,
                    opaque_columns=OPAQUE_LANDING_COLUMNS,
                )
                # delta-rs writes outside the GIL: meanwhile the next batch is consumed and turned into rows.
                after = {**positions, **{position: offset + 1 for position, offset in last.items()}}
                if report.records + kept.size < max_records and not kafka.caught_up(consumer, after):
                    with collector_paused():
                        ahead = _consume(contract, consumer, batch_size(after))
                        ahead_prepared = None if ahead is None else prepared(ahead, after)
                    drained = ahead is None
                try:
                    written.result()
                except LakeCommitConflictError:
                    # The batch taken meanwhile follows one that did not land: dropped, and consumed again
                    # from the positions the consumer is reassigned to here.
                    ahead, ahead_prepared, drained = None, None, False
                    archive = lake.table("landing", contract.name)
                    assert archive is not None
                    moved = _follow_other_writers(contract, archive, positions, consumer)
                    if archive.transaction_version(ERASURE_GENERATION) != generation:
                        generation = archive.transaction_version(ERASURE_GENERATION)
                        is_erased = erased_landing_test(lake, contract, schema_lookup)
                        consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in positions.items()])
                    elif not moved:
                        raise  # the conflict was not about these partitions or erasures: nothing safe to retry
                    continue
                on_stage("written")
                kafka.commit_queued(consumer, [TopicPartition(t, p, o + 1) for (t, p), o in last.items()])
                landed_partitions.update(last)
                on_stage("committed")
                for (t, p), offset in last.items():
                    span = report.offsets.setdefault(f"{t}[{p}]", [positions[(t, p)], offset])
                    span[1] = offset
                    positions[(t, p)] = offset + 1
                # Runs that committed between `archive`'s old version and ours may have landed other partitions
                # (asked only when there are such commits: a partition's check costs 1-2 ms, and a 1M-record
                # hour has 48 partitions in 22 batches).
                if archive.version() != read_version + 1:
                    _follow_other_writers(contract, archive, positions, consumer)
                report.records += kept.size
                report.erased_at_landing += records.size - kept.size
                report.bytes += sum(pc.sum(pc.binary_length(table[column])).as_py() or 0 for column in ("key", "value"))
                report.event_hours.update(map(hour_key, columns.datetimes(pc.unique(table["_event_hour"]))))
                on_batch(report)
        if landed_partitions:  # the positions after all this run landed, taken after the queued commits
            kafka.commit(consumer, [TopicPartition(t, p, positions[(t, p)]) for t, p in sorted(landed_partitions)])
        report.lag_after = kafka.left_after(consumer, positions)
        return report
    finally:
        consumer.close()


@dataclass(frozen=True)
class _Prepared:
    """A consumed batch ready to be written: its records at or after `positions`, their offset spans,
    the records kept (not erased) and their landing rows."""

    positions: dict[tuple[str, int], int]
    records: LandingBatch
    spans: dict[tuple[str, int], tuple[int, int]]
    kept: LandingBatch
    table: pa.Table


def _raise_for(contract: Contract, message: Message) -> NoReturn:
    error = message.error()
    assert error is not None
    if error.code() == KafkaError.OFFSET_OUT_OF_RANGE:
        raise LandingConflictError(
            f"landing/{contract.name} resumes {message.topic()}[{message.partition()}] after offsets that the "
            "broker no longer has: the topic was recreated, or PLATFORM_LAKE_ROOT belongs to another Kafka "
            "cluster. Point KAFKA_BOOTSTRAP_SERVERS and PLATFORM_LAKE_ROOT at matching systems, or archive "
            "the landing table before landing the new topic."
        )
    raise KafkaUnavailableError(f"Kafka error while landing {contract.name}: {error}")


def build_landing_asset(contract: Contract, partitions: Partitions = DEFAULT_PARTITIONS):
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
        check_specs=[checks.spec(asset_key("landing", contract), checks.NOTHING_EXPIRED_BEFORE_LANDING)],
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
                on_batch=lambda report: context.log.debug(
                    f"landed {report.records} records of {contract.name} so far, up to offsets {report.offsets}"
                ),
                first_hour=partitions.first_hour,
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
                "erased_at_landing": report.erased_at_landing,
                "duration_s": round(time.monotonic() - started, 3),
                "table_version": lake.version("landing", contract.name) or 0,
            },
            check_results=[checks.expired_before_landing(asset_key("landing", contract), report.expired)],
        )

    return landing_asset
