"""Kafka access for landing and the lag sensor (confluent-kafka; any Kafka-protocol broker).

The platform's consumer group per entity is `<group_prefix>-<entity>`; its committed offsets are a
hint for where to resume, while the landing table's Delta app transactions are the source of truth.

Security: every librdkafka `security.*`, `sasl.*` and `ssl.*` setting comes from the variable named
`KAFKA_` + the setting in capitals with `_` for `.` (`sasl.password` <- `KAFKA_SASL_PASSWORD`), or from
the file named by that variable + `_FILE` (a mounted secret). Secret settings (passwords, client
secrets, private keys) are read when a client is built: the resource's configuration, which the
Dagster UI shows, holds only the variable's name or the file's path.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from dagster import ConfigurableResource
from pydantic import field_validator

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
SECURITY_PREFIXES = ("security.", "sasl.", "ssl.", "https.", "enable.ssl.", "enable.sasl.")
SECRET_WORDS = ("password", "secret", "key.pem", "sasl.oauthbearer.config")
# What librdkafka reports (and then retries forever) on a rejected login or TLS handshake, and the
# settings each is about.
RELATED_SETTINGS = {KafkaError._AUTHENTICATION: ("sasl.",), KafkaError._SSL: ("ssl.", "enable.ssl.")}


def setting_variable(setting: str) -> str:
    """The environment variable of a librdkafka setting: `sasl.password` -> `KAFKA_SASL_PASSWORD`."""
    return "KAFKA_" + setting.upper().replace(".", "_")


def is_secret(setting: str) -> bool:
    return any(word in setting for word in SECRET_WORDS)


@dataclass(frozen=True)
class KafkaSecurity:
    """librdkafka security settings: plain values (shown in the UI) and where each secret is read from."""

    settings: dict[str, str]
    secrets_from_env: dict[str, str]
    secrets_from_files: dict[str, str]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSecurity:
        environ = os.environ if environ is None else environ
        settings: dict[str, str] = {}
        from_env: dict[str, str] = {}
        from_files: dict[str, str] = {}
        for variable, value in environ.items():
            if not variable.startswith("KAFKA_") or not value:
                continue
            name = variable.removeprefix("KAFKA_").removesuffix("_FILE").lower().replace("_", ".")
            if not name.startswith(SECURITY_PREFIXES):
                continue
            if variable.endswith("_FILE"):
                from_files[name] = value
            elif is_secret(name):
                from_env[name] = variable
            else:
                settings[name] = value
        return cls(settings, from_env, from_files)

    def client_config(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Every setting with its secrets read now, so a rotated secret is used by the next client."""
        environ = os.environ if environ is None else environ
        config = dict(self.settings)
        for setting, variable in self.secrets_from_env.items():
            if variable not in environ:
                raise KafkaConfigurationError(f"{variable} is not set; it holds the Kafka setting `{setting}`")
            config[setting] = environ[variable]
        for setting, path in self.secrets_from_files.items():
            try:
                config[setting] = Path(path).read_text().strip()
            except OSError as error:
                raise KafkaConfigurationError(
                    f"{setting_variable(setting)}_FILE names {path}, which cannot be read ({error.strerror}); "
                    f"it holds the Kafka setting `{setting}`"
                ) from error
        return config

    def source(self, setting: str) -> str:
        """Where an operator fixes a setting: its variable, or its variable for the file that holds it."""
        if setting in self.secrets_from_files:
            return f"{setting_variable(setting)}_FILE ({self.secrets_from_files[setting]})"
        return setting_variable(setting)


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


class KafkaConfigurationError(RuntimeError):
    """The client's settings or credentials are wrong; retrying cannot help. Names the setting to fix."""


class PlatformConsumer(Consumer):
    """A consumer that keeps the authentication and TLS errors librdkafka reports (and retries forever)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.security_errors: list[KafkaError] = []
        super().__init__({**config, "error_cb": self._on_error})

    def _on_error(self, error: KafkaError) -> None:
        if error.code() in RELATED_SETTINGS:
            self.security_errors.append(error)


class KafkaResource(ConfigurableResource):
    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    group_prefix: str = "platform-landing"
    session_timeout_ms: int = 6000
    request_timeout_s: float = 30.0
    extra_config: dict[str, str] = {}
    # Security (see the module docstring): values that are not secret, and the variable or mounted file
    # each secret is read from when a client is built.
    security: dict[str, str] = {}
    secrets_from_env: dict[str, str] = {}
    secrets_from_files: dict[str, str] = {}

    @field_validator("extra_config", "security")
    @classmethod
    def _no_secret_values(cls, settings: dict[str, str]) -> dict[str, str]:
        """A secret given as a value would be shown in the Dagster UI: name where it is read from instead.

        Not a ValueError: pydantic would quote the offending input, the secret, in its message."""
        for setting in settings:
            if is_secret(setting):
                raise KafkaConfigurationError(
                    f"`{setting}` is a secret: set {setting_variable(setting)} (or {setting_variable(setting)}_FILE "
                    f"for a mounted file) instead of giving its value in the resource's configuration"
                )
        return settings

    @classmethod
    def from_env(cls) -> KafkaResource:
        security = KafkaSecurity.from_env()
        return cls(
            bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP),
            security=security.settings,
            secrets_from_env=security.secrets_from_env,
            secrets_from_files=security.secrets_from_files,
        )

    @property
    def _security(self) -> KafkaSecurity:
        return KafkaSecurity(self.security, self.secrets_from_env, self.secrets_from_files)

    def group_id(self, entity: str) -> str:
        return f"{self.group_prefix}-{entity}"

    def client_config(self) -> dict[str, Any]:
        """The broker address and security settings (secrets read now) every client of the platform uses."""
        return {"bootstrap.servers": self.bootstrap_servers, **self._security.client_config(), **self.extra_config}

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
        }
        try:
            return PlatformConsumer(config)
        except KafkaException as error:
            raise KafkaConfigurationError(self._explain(error.args[0])) from error

    def _explain(self, error: KafkaError) -> str:
        """The error with the variables that set what it is about (never their values)."""
        security = self._security
        configured = sorted({*security.settings, *security.secrets_from_env, *security.secrets_from_files})
        related = RELATED_SETTINGS.get(error.code(), ("security.", "sasl.", "ssl."))
        named = [s for s in configured if s in error.str()] or [s for s in configured if s.startswith(related)]
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
                    raise KafkaConfigurationError(self._explain(rejected[-1])) from error
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
