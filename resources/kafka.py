"""Kafka access for landing and the lag sensor (confluent-kafka; any Kafka-protocol broker).

The platform's consumer group per entity is `<group_prefix>-<entity>`; its committed offsets are a
hint for where to resume, while the landing table's Delta app transactions are the source of truth.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition
from dagster import ConfigurableResource

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    end_offset: int
    committed_offset: int | None

    @property
    def lag(self) -> int:
        return max(0, self.end_offset - (self.committed_offset or 0))


class KafkaUnavailableError(RuntimeError):
    """The broker did not answer; a transient failure that a retry may fix."""


class KafkaResource(ConfigurableResource):
    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    group_prefix: str = "platform-landing"
    session_timeout_ms: int = 6000
    request_timeout_s: float = 30.0
    extra_config: dict[str, str] = {}

    @classmethod
    def from_env(cls) -> KafkaResource:
        return cls(bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP))

    def group_id(self, entity: str) -> str:
        return f"{self.group_prefix}-{entity}"

    def consumer(self, entity: str) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "group.id": self.group_id(entity),
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                # Landing assigns explicit offsets; an offset the broker does not have is an error to report,
                # never a silent jump to another position.
                "auto.offset.reset": "error",
                "session.timeout.ms": self.session_timeout_ms,
                "enable.partition.eof": False,
                **self.extra_config,
            }
        )

    def partitions(self, consumer: Consumer, topics: tuple[str, ...]) -> list[TopicPartition]:
        """Every partition of the topics; a topic that does not exist yet has none."""
        try:
            metadata = consumer.list_topics(timeout=self.request_timeout_s)
        except KafkaException as error:
            raise KafkaUnavailableError(f"Kafka at {self.bootstrap_servers} did not answer: {error}") from error
        found: list[TopicPartition] = []
        for topic in topics:
            described = metadata.topics.get(topic)
            if described is None or described.error is not None:
                continue
            found.extend(TopicPartition(topic, p) for p in sorted(described.partitions))
        return found

    def watermarks(self, consumer: Consumer, tp: TopicPartition) -> tuple[int, int]:
        """(earliest offset still held, end offset) of a partition."""
        try:
            return consumer.get_watermark_offsets(tp, timeout=self.request_timeout_s, cached=False)
        except KafkaException as error:
            raise KafkaUnavailableError(f"Kafka at {self.bootstrap_servers} did not answer: {error}") from error

    def caught_up(self, consumer: Consumer, positions: dict[tuple[str, int], int]) -> bool:
        """Whether every partition's next position reached the end offset its last fetch reported.

        The consumer's cached watermark comes with each fetch response, so it is never behind the way a
        fresh end-offset query can be right after a produce (tansu); unknown until a partition was fetched.
        """
        for (topic, partition), position in positions.items():
            _, end = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            if end < 0 or position < end:
                return False
        return True

    def committed(self, consumer: Consumer, partitions: list[TopicPartition]) -> dict[tuple[str, int], int | None]:
        if not partitions:
            return {}
        try:
            answered = consumer.committed(partitions, timeout=self.request_timeout_s)
        except KafkaException as error:
            raise KafkaUnavailableError(f"Kafka at {self.bootstrap_servers} did not answer: {error}") from error
        return {(tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None) for tp in answered}

    def lag(self, entity: str, topics: tuple[str, ...]) -> list[PartitionLag]:
        """End offset minus committed offset of the entity's group, per partition; commits nothing."""
        consumer = self.consumer(entity)
        try:
            partitions = self.partitions(consumer, topics)
            committed = self.committed(consumer, partitions)
            return [
                PartitionLag(
                    tp.topic,
                    tp.partition,
                    self.watermarks(consumer, tp)[1],
                    committed[(tp.topic, tp.partition)],
                )
                for tp in partitions
            ]
        finally:
            consumer.close()

    def oldest_pending_age_s(self, entity: str, lags: list[PartitionLag]) -> float:
        """Age in seconds of the oldest record not yet committed (0 when nothing is pending)."""
        pending = [lag for lag in lags if lag.lag > 0]
        if not pending:
            return 0.0
        consumer = self.consumer(entity)
        try:
            consumer.assign([TopicPartition(lag.topic, lag.partition, lag.committed_offset or 0) for lag in pending])
            oldest = None
            deadline = time.monotonic() + 5
            seen: set[tuple[str, int]] = set()
            while len(seen) < len(pending) and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is None or message.error():
                    continue
                seen.add((str(message.topic()), int(message.partition() or 0)))
                stamp = message.timestamp()[1] / 1000
                oldest = stamp if oldest is None else min(oldest, stamp)
            return 0.0 if oldest is None else max(0.0, time.time() - oldest)
        finally:
            consumer.close()
