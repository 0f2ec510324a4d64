"""Kafka access for landing and the lag sensor (confluent-kafka; any Kafka-protocol broker).

The platform's consumer group per entity is `<group_prefix>-<entity>`; its committed offsets are a
hint for where to resume, while the landing table's Delta app transactions are the source of truth.

Security: every librdkafka `security.*`, `sasl.*`, `ssl.*` and `https.*` setting comes from the
variable `KAFKA_<SETTING>` or a mounted file named by `KAFKA_<SETTING>_FILE` (resources/client_settings.py);
secrets are read when a client is built and never appear in the resource's configuration.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from pydantic import field_validator

from resources.client_settings import ClientConfigurationError, SecuredClientResource, refuse_secret_values

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
VARIABLE_PREFIX = "KAFKA_"
SECURITY_PREFIXES = ("security.", "sasl.", "ssl.", "https.", "enable.ssl.", "enable.sasl.")
# What librdkafka reports (and then retries forever) on a rejected login or TLS handshake, and the
# settings each is about.
RELATED_SETTINGS = {KafkaError._AUTHENTICATION: ("sasl.",), KafkaError._SSL: ("ssl.", "enable.ssl.")}

# The times a ListOffsets request reads as a partition's earliest and latest offset (the Kafka protocol's
# EARLIEST_TIMESTAMP and LATEST_TIMESTAMP).
EARLIEST_OFFSET_SPEC = -2
LATEST_OFFSET_SPEC = -1

log = logging.getLogger(__name__)


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


class PlatformConsumer(Consumer):
    """A consumer that keeps the authentication and TLS errors librdkafka reports (and retries forever),
    and whose commit and close give up after `call_timeout_s`.

    With the broker gone, librdkafka's synchronous commit waits for a group coordinator for as long as
    the session allows (minutes), and its close may wait for ever (librdkafka#3740); neither can be
    interrupted from Python. Both therefore run in a daemon thread. A consumer whose commit was given
    up on is abandoned, never closed: destroying the client under a call still inside librdkafka is
    unsafe, and the process's exit reclaims it.
    """

    def __init__(self, config: dict[str, Any], call_timeout_s: float = 30.0) -> None:
        self.security_errors: list[KafkaError] = []
        self.call_timeout_s = call_timeout_s
        self.abandoned = False
        super().__init__({**config, "error_cb": self._on_error})

    def _on_error(self, error: KafkaError) -> None:
        if error.code() in RELATED_SETTINGS:
            self.security_errors.append(error)

    def commit_within(self, offsets: list[TopicPartition]) -> bool:
        """Commit synchronously; whether the broker answered within `call_timeout_s` (its refusal raises)."""
        answered = _returned_within(
            self.call_timeout_s, partial(Consumer.commit, self, offsets=offsets, asynchronous=False)
        )
        self.abandoned = self.abandoned or not answered
        return answered

    def close(self) -> None:
        if not self.abandoned and _returned_within(self.call_timeout_s, partial(Consumer.close, self)):
            return
        self.abandoned = True
        log.warning(
            "Kafka consumer left open after a call that did not return in %g s; the process's exit ends it",
            self.call_timeout_s,
        )


def _returned_within(timeout_s: float, call: Callable[[], Any]) -> bool:
    """Run `call` in a daemon thread (never one the interpreter waits for at exit); whether it returned
    within `timeout_s`. Its exception, if it raised in time, is raised here."""
    outcome: Future[None] = Future()

    def run() -> None:
        try:
            call()
        except BaseException as error:  # handed to the caller through the future
            outcome.set_exception(error)
        else:
            outcome.set_result(None)

    threading.Thread(target=run, name="kafka-bounded-call", daemon=True).start()
    try:
        outcome.result(timeout=timeout_s)
    except TimeoutError:
        return False
    return True


class KafkaResource(SecuredClientResource):
    variable_prefix: ClassVar[str] = VARIABLE_PREFIX
    setting_prefixes: ClassVar[tuple[str, ...]] = SECURITY_PREFIXES

    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    group_prefix: str = "platform-landing"
    session_timeout_ms: int = 6000
    request_timeout_s: float = 30.0
    extra_config: dict[str, str] = {}

    @field_validator("extra_config")
    @classmethod
    def _no_secret_extra_values(cls, settings: dict[str, str]) -> dict[str, str]:
        refuse_secret_values(VARIABLE_PREFIX, settings)
        return settings

    @classmethod
    def from_env(cls) -> KafkaResource:
        return cls(
            bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP),
            **cls.security_fields_from_env(),
        )

    def group_id(self, entity: str) -> str:
        return f"{self.group_prefix}-{entity}"

    def client_config(self) -> dict[str, Any]:
        """The broker address and security settings (secrets read now) every client of the platform uses."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            **self.client_settings.client_config(),
            **self.extra_config,
        }

    def consumer(self, entity: str) -> PlatformConsumer:
        config = {
            **self.client_config(),
            "group.id": self.group_id(entity),
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # Landing assigns explicit offsets; an offset the broker does not have is an error to report,
            # never a silent jump to another position.
            "auto.offset.reset": "error",
            "session.timeout.ms": self.session_timeout_ms,
            "enable.partition.eof": False,
            # Landing takes a batch, then lands it while librdkafka fetches ahead; when that prefetch
            # reaches its limit (64 MB), librdkafka waits this long before it fetches again (default 1 s,
            # which landing then spent waiting in its next consume).
            "fetch.queue.backoff.ms": 10,
            # A new client learns the real brokers from the bootstrap address, drops the bootstrap
            # connection, and holds back its next connection for metadata or the group coordinator by
            # half of this (default 100 ms: 50 ms, at least 11): landing asks for both before it
            # fetches, and waited 50 ms of a 0.6 s run. The reconnects to a broker that is down still
            # back off exponentially up to `reconnect.backoff.max.ms` (10 s).
            "reconnect.backoff.ms": 20,
        }
        try:
            return PlatformConsumer(config, call_timeout_s=self.request_timeout_s)
        except KafkaException as error:
            raise ClientConfigurationError(self._explain(error.args[0])) from error

    def _explain(self, error: KafkaError) -> str:
        """The error with the variables that set what it is about (never their values)."""
        security = self.client_settings
        related = RELATED_SETTINGS.get(error.code(), ("security.", "sasl.", "ssl."))
        # The settings the error names, with their siblings (`ssl.key.location` failed: `ssl.key.password`).
        groups = tuple(s.rsplit(".", 1)[0] + "." for s in security.configured if s in error.str()) or related
        named = [s for s in security.configured if s.startswith(groups)]
        fix = ", ".join(security.source(s) for s in named) or "KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_*"
        return f"Kafka at {self.bootstrap_servers}: {error.str()}; check {fix}"

    def _metadata(self, consumer: Consumer) -> Any:
        """The cluster's metadata; an authentication or TLS failure raises within seconds, naming what to fix.

        librdkafka retries a rejected login until the request times out and then reports only a transport
        failure, so the metadata is asked for in short slices with the errors it reported in between.
        """
        deadline = time.monotonic() + self.request_timeout_s
        while True:
            try:
                return consumer.list_topics(timeout=min(1.0, max(0.1, deadline - time.monotonic())))
            except KafkaException as error:
                consumer.poll(0)  # serves the error callback; nothing is assigned yet
                rejected = consumer.security_errors if isinstance(consumer, PlatformConsumer) else []
                if rejected:
                    raise ClientConfigurationError(self._explain(rejected[-1])) from error
                if time.monotonic() >= deadline:
                    protocol = self.security.get("security.protocol", "PLAINTEXT")
                    raise KafkaUnavailableError(
                        f"Kafka at {self.bootstrap_servers} did not answer: {error}; if it is up, check that "
                        f"KAFKA_SECURITY_PROTOCOL ({protocol}) is what its listener expects"
                    ) from error

    def partitions(self, consumer: Consumer, topics: tuple[str, ...]) -> list[TopicPartition]:
        """Every partition of the topics; a topic that does not exist yet has none."""
        metadata = self._metadata(consumer)
        found: list[TopicPartition] = []
        for topic in topics:
            described = metadata.topics.get(topic)
            if described is None or described.error is not None:
                continue
            found.extend(TopicPartition(topic, p) for p in sorted(described.partitions))
        return found

    def watermarks(
        self, consumer: Consumer, partitions: list[TopicPartition]
    ) -> dict[tuple[str, int], tuple[int, int]]:
        """(earliest offset still held, end offset) of each partition, asked in one ListOffsets request
        per end for all of them: the Kafka protocol reads the times -2 and -1 as a partition's earliest and
        latest offset. librdkafka's watermark query asks one partition at a time, two requests each:
        10-15 ms of every landing run at 12 partitions, and of every lag sensor tick."""
        if not partitions:
            return {}
        earliest, latest = (
            self._offsets_at(consumer, [TopicPartition(tp.topic, tp.partition, spec) for tp in partitions])
            for spec in (EARLIEST_OFFSET_SPEC, LATEST_OFFSET_SPEC)
        )
        return {position: (earliest[position], latest[position]) for position in earliest}

    def _offsets_at(self, consumer: Consumer, asked: list[TopicPartition]) -> dict[tuple[str, int], int]:
        try:
            answered = consumer.offsets_for_times(asked, timeout=self.request_timeout_s)
        except KafkaException as error:
            raise KafkaUnavailableError(f"Kafka at {self.bootstrap_servers} did not answer: {error}") from error
        failed = [tp for tp in answered if tp.error is not None]
        if failed:
            raise KafkaUnavailableError(
                f"Kafka at {self.bootstrap_servers} did not give the offsets of "
                + ", ".join(f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in failed)
            )
        return {(tp.topic, tp.partition): tp.offset for tp in answered}

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

    def left_after(
        self,
        consumer: Consumer,
        positions: dict[tuple[str, int], int],
        ends: dict[tuple[str, int], int] | None = None,
    ) -> int:
        """Records after each partition's next position, by the end offsets the consumer's last fetches
        reported (`caught_up`): what a run leaves unlanded, known without another connection to the
        broker (a second consumer's metadata, committed offsets and end offsets were 0.07 s of a 0.64 s
        landing run at 12 partitions). `ends` are end offsets asked for earlier (when a run started,
        before any fetch), taken where they are higher. A partition neither fetched yet nor in `ends`,
        which a drain does not leave, is asked for its end offset; that request waits behind the
        consumer's own fetches (about 0.5 s)."""
        left = 0
        for (topic, partition), position in positions.items():
            _, end = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            end = max(end, (ends or {}).get((topic, partition), -1))
            if end < 0:
                [(_, end)] = self.watermarks(consumer, [TopicPartition(topic, partition)]).values()
            left += max(0, end - position)
        return left

    def committed(self, consumer: Consumer, partitions: list[TopicPartition]) -> dict[tuple[str, int], int | None]:
        if not partitions:
            return {}
        try:
            answered = consumer.committed(partitions, timeout=self.request_timeout_s)
        except KafkaException as error:
            raise KafkaUnavailableError(f"Kafka at {self.bootstrap_servers} did not answer: {error}") from error
        return {(tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None) for tp in answered}

    def commit(self, consumer: PlatformConsumer, offsets: list[TopicPartition]) -> None:
        """Commit the next positions; a broker that is gone is a transient failure, since landing resumes
        from the Delta log and a lost commit only costs re-reading what is already landed."""
        try:
            answered = consumer.commit_within(offsets)
        except KafkaException as error:
            raise KafkaUnavailableError(
                f"Kafka at {self.bootstrap_servers} did not take the commit: {error}"
            ) from error
        if not answered:
            raise KafkaUnavailableError(
                f"Kafka at {self.bootstrap_servers} did not take the commit within {self.request_timeout_s:g} s"
            )

    def commit_queued(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        """Hand the next positions to librdkafka, which commits them in the background. Landing queues a
        commit after every batch and waits only for its run's last one (`commit`), which the coordinator
        takes after the queued ones: a synchronous commit per batch was 1-18 ms of each 25k-record cycle."""
        try:
            consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as error:
            raise KafkaUnavailableError(
                f"Kafka at {self.bootstrap_servers} did not take the commit: {error}"
            ) from error

    def lag(self, entity: str, topics: tuple[str, ...]) -> list[PartitionLag]:
        """End offset minus committed offset of the entity's group, per partition; commits nothing."""
        consumer = self.consumer(entity)
        try:
            partitions = self.partitions(consumer, topics)
            committed = self.committed(consumer, partitions)
            watermarks = self.watermarks(consumer, partitions)
            return [
                PartitionLag(
                    tp.topic,
                    tp.partition,
                    watermarks[(tp.topic, tp.partition)][1],
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
