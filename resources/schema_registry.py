"""Confluent schema registry lookups for Avro sources (`SCHEMA_REGISTRY_URL`; `mock://name` in tests)."""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from dagster import ConfigurableResource


@cache
def _client(url: str) -> Any:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient.new_client({"url": url})


class SchemaRegistryResource(ConfigurableResource):
    url: str | None = None

    @classmethod
    def from_env(cls) -> SchemaRegistryResource:
        return cls(url=os.environ.get("SCHEMA_REGISTRY_URL") or None)

    def client(self) -> Any:
        if self.url is None:
            raise RuntimeError("SCHEMA_REGISTRY_URL is not set; Avro contracts need a schema registry")
        return _client(self.url)

    def lookup(self) -> Any:
        """A schema-id -> parsed Avro schema function for decoding, or None without a registry."""
        if self.url is None:
            return None
        import fastavro

        client = self.client()

        @cache
        def parsed(schema_id: int) -> Any:
            return fastavro.parse_schema(json.loads(client.get_schema(schema_id).schema_str))

        return parsed
