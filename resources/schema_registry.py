"""Confluent schema registry lookups for Avro sources (`SCHEMA_REGISTRY_URL`; `mock://name` in tests).

Credentials and TLS are the client's own settings from `SCHEMA_REGISTRY_<SETTING>` variables or mounted
`…_FILE`s (resources/client_settings.py): `basic.auth.user.info` (`user:password`), or
`bearer.auth.credentials.source` with `bearer.auth.token` and `bearer.auth.logical.cluster`, and
`ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`. Secrets never appear in the
resource's configuration.
"""

from __future__ import annotations

import json
import os
import ssl
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

from resources.client_settings import ClientConfigurationError, SecuredClientResource

VARIABLE_PREFIX = "SCHEMA_REGISTRY_"
SECURITY_PREFIXES = ("ssl.", "basic.auth.", "bearer.auth.")


@cache
def _client(config: tuple[tuple[str, str], ...]) -> Any:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient.new_client(dict(config))


@dataclass(frozen=True)
class RegisteredSchema:
    """One version of a subject: its number, its schema id and the schema's text."""

    subject: str
    version: int
    schema_id: int
    schema: str


class SchemaRegistryResource(SecuredClientResource):
    variable_prefix: ClassVar[str] = VARIABLE_PREFIX
    setting_prefixes: ClassVar[tuple[str, ...]] = SECURITY_PREFIXES

    url: str | None = None

    @classmethod
    def from_env(cls) -> SchemaRegistryResource:
        return cls(url=os.environ.get("SCHEMA_REGISTRY_URL") or None, **cls.security_fields_from_env())

    def client(self) -> Any:
        if self.url is None:
            raise RuntimeError("SCHEMA_REGISTRY_URL is not set; Avro contracts need a schema registry")
        # One client per distinct configuration: a rotated secret gets a new one.
        return _client(tuple(sorted({"url": self.url, **self.client_settings.client_config()}.items())))

    def lookup(self) -> Any:
        """A schema-id -> parsed Avro schema function for decoding, or None without a registry."""
        if self.url is None:
            return None
        import fastavro

        client = self.client()
        self._check_access(client)

        @cache
        def parsed(schema_id: int) -> Any:
            return fastavro.parse_schema(json.loads(client.get_schema(schema_id).schema_str))

        return parsed

    def latest_schema(self, subject: str) -> RegisteredSchema | None:
        """The newest version registered for `subject` (None when the registry has no such subject), asked
        of the registry every time: the client's `get_latest_version` keeps its first answer for ever."""
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            registered = self.client().get_version(subject, "latest")
        except SchemaRegistryError as error:
            if error.http_status_code == 404:
                return None
            raise
        return RegisteredSchema(subject, registered.version, registered.schema_id, registered.schema.schema_str)

    def _check_access(self, client: Any) -> None:
        """Fail here, once, naming the variables to fix, when the registry rejects the credentials or its
        certificate is not trusted; otherwise every schema lookup would fail and every Avro record would be
        quarantined as having an unknown schema. A refusal to list subjects (403) means the credentials
        were accepted, and an unreachable registry is left to the lookups, as before."""
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        settings = self.client_settings
        try:
            client.get_subjects()
        except SchemaRegistryError as error:
            if error.http_status_code == 401:
                named = [
                    settings.source(s) for s in settings.configured if s.startswith(("basic.auth.", "bearer.auth."))
                ]
                fix = ", ".join(named) or f"set {VARIABLE_PREFIX}BASIC_AUTH_USER_INFO or {VARIABLE_PREFIX}BEARER_AUTH_*"
                raise ClientConfigurationError(
                    f"the schema registry at {self.url} rejected the credentials ({error}); check {fix}"
                ) from error
        except Exception as error:  # the HTTP library's error; the TLS failure is in its chain
            if _caused_by_untrusted_certificate(error):
                named = [settings.source(s) for s in settings.configured if s.startswith("ssl.")]
                fix = ", ".join(named) or f"set {VARIABLE_PREFIX}SSL_CA_LOCATION to the registry's CA"
                raise ClientConfigurationError(
                    f"the schema registry at {self.url} has a certificate that is not trusted ({error}); check {fix}"
                ) from error


def _caused_by_untrusted_certificate(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, ssl.SSLCertVerificationError):
            return True
        error = error.__cause__ or error.__context__
    return False
