"""The lake: one Delta table per `<layer>/<entity>` under `PLATFORM_LAKE_ROOT`.

A local path by default (`.data/lake`), `abfss://container@account.dfs.core.windows.net/path` for ADLS
Gen2 or `s3://bucket/path` for S3 in production; delta-rs reads credentials from the usual
`AZURE_STORAGE_*` / `AWS_*` environment variables, and `storage_options` adds anything else.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from dagster import ConfigurableResource
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError

LAYERS = ("landing", "quarantine", "raw", "current", "history", "marts", "snapshot", "erasure", "audit")
DEFAULT_LAKE_ROOT = ".data/lake"


def resolve_root(root: str) -> str:
    """A local root becomes absolute, so Spark, dbt and Python all address the same files."""
    if "://" in root:
        return root.rstrip("/")
    return str(Path(root).expanduser().resolve())


# A Delta checkpoint every this many commits: readers then start from it instead of replaying every
# commit, which keeps the cost of reading one partition flat however long the table's history grows.
CHECKPOINT_EVERY = 10


class LakeResource(ConfigurableResource):
    """Addresses and reads/writes the Delta tables of the lake."""

    root: str = DEFAULT_LAKE_ROOT
    storage_options: dict[str, str] = {}

    @classmethod
    def from_env(cls) -> LakeResource:
        return cls(root=resolve_root(os.environ.get("PLATFORM_LAKE_ROOT", DEFAULT_LAKE_ROOT)))

    @property
    def resolved_root(self) -> str:
        return resolve_root(self.root)

    def uri(self, layer: str, entity: str) -> str:
        if layer not in LAYERS:
            raise ValueError(f"unknown lake layer `{layer}`; layers are {', '.join(LAYERS)}")
        return f"{self.resolved_root}/{layer}/{entity}"

    def _options(self) -> dict[str, str] | None:
        return dict(self.storage_options) or None

    def table(self, layer: str, entity: str) -> DeltaTable | None:
        try:
            return DeltaTable(self.uri(layer, entity), storage_options=self._options())
        except TableNotFoundError:
            return None

    def read(
        self, layer: str, entity: str, filter: pc.Expression | None = None, schema: pa.Schema | None = None
    ) -> pa.Table:
        """Read a table (optionally filtered); a table not written yet reads as empty with `schema`."""
        table = self.table(layer, entity)
        if table is None:
            if schema is None:
                raise FileNotFoundError(f"Delta table {self.uri(layer, entity)} does not exist yet")
            return schema.empty_table()
        return table.to_pyarrow_dataset().to_table(filter=filter)

    def append(self, layer: str, entity: str, data: pa.Table, app_transactions: dict[str, int] | None = None) -> None:
        """Append in one Delta commit; `app_transactions` records (app id -> version) in that same commit."""
        transactions = [Transaction(app_id, version) for app_id, version in (app_transactions or {}).items()]
        before = self.version(layer, entity)
        write_deltalake(
            self.uri(layer, entity),
            data,
            mode="append",
            storage_options=self._options(),
            commit_properties=CommitProperties(app_transactions=transactions) if transactions else None,
        )
        self.checkpoint_if_due(layer, entity, before)

    def replace_where(self, layer: str, entity: str, data: pa.Table, predicate: str) -> None:
        """Atomically replace the rows matching `predicate` by `data` (Delta `replaceWhere`)."""
        before = self.version(layer, entity)
        if before is None:
            write_deltalake(self.uri(layer, entity), data, mode="append", storage_options=self._options())
        else:
            write_deltalake(
                self.uri(layer, entity), data, mode="overwrite", predicate=predicate, storage_options=self._options()
            )
        self.checkpoint_if_due(layer, entity, before)

    def checkpoint_if_due(self, layer: str, entity: str, version_before: int | None) -> None:
        """Checkpoint when the commits since `version_before` crossed a multiple of CHECKPOINT_EVERY."""
        table = self.table(layer, entity)
        if table is None:
            return
        if version_before is None or table.version() // CHECKPOINT_EVERY > version_before // CHECKPOINT_EVERY:
            table.create_checkpoint()

    def create_if_missing(
        self, layer: str, entity: str, schema: pa.Schema, partition_by: list[str] | None = None
    ) -> None:
        """Create an empty table with an explicit, all-nullable schema before any engine writes to it."""
        if self.table(layer, entity) is None:
            write_deltalake(
                self.uri(layer, entity),
                schema.empty_table(),
                mode="ignore",
                partition_by=partition_by,
                storage_options=self._options(),
            )

    def transaction_version(self, layer: str, entity: str, app_id: str) -> int | None:
        table = self.table(layer, entity)
        return None if table is None else table.transaction_version(app_id)

    def version(self, layer: str, entity: str) -> int | None:
        table = self.table(layer, entity)
        return None if table is None else table.version()
