"""A landed Kafka record, what decoding makes of it, and who it is about.

Shared by landing (which writes records), decoding (which turns them into changes), and erasure (which
finds the records that name a person), so each of them reads the same model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import compress
from operator import itemgetter
from typing import Any, NamedTuple

from platform_assets.lib.contract import Contract

SNAPSHOT_TOPIC_PREFIX = "_snapshot."
# The operation of a Debezium truncate in raw: no key; every key whose newest change is older than its
# source position is deleted at that position.
TRUNCATE = "truncate"


class LandingRecord(NamedTuple):
    """One Kafka record exactly as it was landed (a named tuple: landing builds one per record)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    landed_at: datetime | None = None  # when it was appended to landing; None before it is


class LandingBatch(NamedTuple):
    """Consumed records column by column (the fields of `LandingRecord` up to `landed_at`).

    Landing runs at Kafka speed: one Python object per record cost more than the rest of landing, so
    records are kept as columns from the consumer to the Arrow table, and built one by one only where a
    rule needs a whole record (see `record`).
    """

    topics: list[str]
    partitions: list[int]
    offsets: list[int]
    timestamps_ms: list[int]
    keys: list[bytes | None]
    values: list[bytes | None]
    headers: list[tuple[tuple[str, bytes | None], ...]]

    @classmethod
    def of(cls, records: Sequence[LandingRecord]) -> LandingBatch:
        return cls._make(list(map(itemgetter(column), records)) for column in range(len(cls._fields)))

    @property
    def size(self) -> int:
        return len(self.offsets)

    def record(self, index: int) -> LandingRecord:
        return self.records(slice(index, index + 1))[0]

    def records(self, where: slice = slice(None)) -> list[LandingRecord]:
        return list(map(LandingRecord, *(column[where] for column in self)))

    def only(self, kept: Sequence[bool]) -> LandingBatch:
        """The records at the positions where `kept` is true."""
        return LandingBatch._make(list(compress(column, kept)) for column in self)


@dataclass(frozen=True)
class Change:
    """A decoded, typed change: `values` holds every contract field (None where absent), `envelope`
    the envelope metadata the contract orders or times changes by, by raw column."""

    operation: str
    values: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    envelope: dict[str, Any] = field(default_factory=dict)

    def time(self, contract: Contract) -> datetime | None:
        """The change's event time, from its row or its envelope as the contract says."""
        if contract.event_time_column in self.envelope:
            moment: datetime | None = self.envelope[contract.event_time_column]
            return moment
        return self.values.get(contract.event_time)

    @property
    def is_delete(self) -> bool:
        return self.operation in ("delete", TRUNCATE)


@dataclass(frozen=True)
class Rejected:
    """A record that goes to quarantine; `error` is a stable category, `reason` says what to fix."""

    error: str
    reason: str
    event_time: datetime | None = None  # when the record still carries a readable event time


@dataclass(frozen=True)
class Skipped:
    """A record that carries no change by design: a Debezium tombstone that follows a delete, a
    heartbeat, a transaction boundary, a logical decoding message, a truncate. `kind` counts them."""

    kind: str
    reason: str


Decoded = Change | Rejected | Skipped


def hour_floor(moment: datetime) -> datetime:
    """The start of the hour that contains `moment`: the hourly partition a record belongs to."""
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class HourRange:
    """The hourly partitions a record can be filed under: from the first partition (PLATFORM_START) to
    the hour the record landed in, the newest partition that existed then (the hour in progress)."""

    first: datetime
    last: datetime

    @classmethod
    def landed(cls, first: datetime, landed_at: datetime) -> HourRange:
        return cls(first, hour_floor(landed_at))

    def __contains__(self, hour: datetime) -> bool:
        return self.first <= hour <= self.last

    def nearest(self, hour: datetime) -> datetime:
        return min(max(hour, self.first), self.last)

    def describe(self) -> str:
        return f"{self.first:%Y-%m-%d %H:00} (PLATFORM_START) to {self.last:%Y-%m-%d %H:00} UTC (when it landed)"


def kafka_time(record: LandingRecord) -> datetime:
    return kafka_moment(record.timestamp_ms)


def kafka_moment(timestamp_ms: int) -> datetime:
    """A Kafka record timestamp (milliseconds since the epoch) as a UTC datetime."""
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)


# A LandingRecord's Kafka position (topic, partition, offset), in the order records are consumed.
KAFKA_POSITION = itemgetter(0, 1, 2)

# Where raw and quarantine keep a record's Kafka position, and where landing keeps it.
KAFKA_POSITION_COLUMNS = ("_topic", "_partition", "_offset")
LANDING_POSITION_COLUMNS = ("topic", "partition", "offset")


def position_columns(record: LandingRecord, hour: datetime, kafka_timestamp: datetime | None = None) -> dict[str, Any]:
    """Where a record came from, as the platform columns of its raw or quarantine row (`kafka_timestamp`:
    its `kafka_time`, when the caller already has it)."""
    return {
        "_topic": record.topic,
        "_partition": record.partition,
        "_offset": record.offset,
        "_kafka_timestamp": kafka_time(record) if kafka_timestamp is None else kafka_timestamp,
        "_event_hour": hour,
    }


def key_string(contract: Contract, values: dict[str, Any]) -> str:
    """One string per key, the form in which erasure requests name a key (fields joined with `|`)."""
    return "|".join(str(values.get(name)) for name in contract.key)


def record_identity(contract: Contract, record: LandingRecord, decoded: Decoded) -> str | None:
    """The key a record is about: its decoded key, or its Kafka message key when it does not decode."""
    if isinstance(decoded, Change):
        return None if decoded.operation == TRUNCATE else key_string(contract, decoded.values)
    return record.key.decode("utf-8", "replace") if record.key is not None else None


def snapshot_topic(entity: str) -> str:
    """The pseudo-topic under which full snapshot loads are kept in landing."""
    return f"{SNAPSHOT_TOPIC_PREFIX}{entity}"


def is_snapshot(record: LandingRecord) -> bool:
    return is_snapshot_topic(record.topic)


def is_snapshot_topic(topic: str) -> bool:
    return topic.startswith(SNAPSHOT_TOPIC_PREFIX)
