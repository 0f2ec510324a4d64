"""The lake: one Delta table per `<layer>/<entity>` under `PLATFORM_LAKE_ROOT`.

A local path by default (`.data/lake`), `abfss://container@account.dfs.core.windows.net/path` for ADLS
Gen2 or `s3://bucket/path` for S3 in production. `LakeResource.from_env()` turns the non-secret
storage settings of the environment (endpoint, region, account name, emulator, locking) into delta-rs
storage options; credentials are never copied into them (resource config is visible in the Dagster
UI): delta-rs reads `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, IRSA, and
`AZURE_STORAGE_ACCOUNT_KEY`/`AZURE_CLIENT_*`/workload identity from the environment itself.
`python -m cli spark-conf` gives the matching settings for a JVM Spark Connect server (S3A, ABFS).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from dagster import ConfigurableResource
from deltalake import CommitProperties, DeltaTable, QueryBuilder, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

LAYERS = (
    "landing",
    "quarantine",
    "raw",
    "current",
    "current_tombstones",
    "history",
    "history_tombstones",
    "marts",
    "erasure",
    "audit",
)
DEFAULT_LAKE_ROOT = ".data/lake"


def resolve_root(root: str) -> str:
    """A local root becomes absolute, so Spark, dbt and Python all address the same files."""
    if "://" in root:
        return root.rstrip("/")
    return str(Path(root).expanduser().resolve())


S3_SCHEMES = ("s3", "s3a")
AZURE_SCHEMES = ("abfss", "abfs", "az", "azure")

# Environment variable -> delta-rs storage option, first listed wins for the same option. Settings only:
# a secret (access keys, session tokens, client secrets, SAS) must never be added here.
S3_ENV_OPTIONS = (
    ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL"),
    ("AWS_ENDPOINT", "AWS_ENDPOINT_URL"),
    ("AWS_REGION", "AWS_REGION"),
    ("AWS_DEFAULT_REGION", "AWS_REGION"),
    ("AWS_ALLOW_HTTP", "AWS_ALLOW_HTTP"),
    ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "AWS_VIRTUAL_HOSTED_STYLE_REQUEST"),
    # No locking provider: delta-rs 1.x commits with S3 conditional writes (put-if-absent) and has dropped
    # the DynamoDB log store (it only logs an error when AWS_S3_LOCKING_PROVIDER=dynamodb is set).
)
AZURE_ENV_OPTIONS = (
    ("AZURE_STORAGE_ACCOUNT_NAME", "azure_storage_account_name"),
    # Azurite: the blob endpoint then comes from AZURITE_BLOB_STORAGE_URL (default http://127.0.0.1:10000),
    # which delta-rs reads from the environment itself; there is no storage option for it.
    ("AZURE_STORAGE_USE_EMULATOR", "azure_storage_use_emulator"),
    ("AZURE_STORAGE_ENDPOINT", "azure_storage_endpoint"),
    ("AZURE_ENDPOINT", "azure_storage_endpoint"),
    ("AZURE_ALLOW_HTTP", "azure_allow_http"),
)


def scheme(root: str) -> str:
    """The URI scheme of a lake root (`s3`, `abfss`, ...), or `file` for a local path."""
    return root.split("://", 1)[0].lower() if "://" in root else "file"


def storage_options_from_env(root: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """delta-rs storage options for `root` from the environment: settings only, never a credential."""
    env = os.environ if environ is None else environ
    kind = scheme(root)
    pairs = S3_ENV_OPTIONS if kind in S3_SCHEMES else AZURE_ENV_OPTIONS if kind in AZURE_SCHEMES else ()
    options: dict[str, str] = {}
    for variable, option in pairs:
        if env.get(variable) and option not in options:
            options[option] = env[variable]
    return options


# A Delta checkpoint every this many commits: readers then start from it instead of replaying every
# commit, which keeps the cost of reading one partition flat however long the table's history grows.
CHECKPOINT_EVERY = 10
# Reads of a table whose files a concurrent vacuum removed start again this many times in all.
READ_ATTEMPTS = 3


class LakeCommitConflictError(RuntimeError):
    """A commit lost to a concurrent writer that recorded one of the same app transactions after the
    version this writer read: what it wrote from is stale; read the table again and redo the work."""


class LakeResource(ConfigurableResource):
    """Addresses and reads/writes the Delta tables of the lake."""

    root: str = DEFAULT_LAKE_ROOT
    storage_options: dict[str, str] = {}

    @classmethod
    def from_env(cls) -> LakeResource:
        root = resolve_root(os.environ.get("PLATFORM_LAKE_ROOT", DEFAULT_LAKE_ROOT))
        return cls(root=root, storage_options=storage_options_from_env(root))

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
        """Read a table (optionally filtered); a table not written yet reads as empty with `schema`.

        An erasure vacuums with retention 0, so the files of the version this read loaded can vanish before
        they are read; the read then starts again from the newest version, as a read started a moment
        later would (an erasure removes a person for every reader that starts after it).
        """
        attempts_left = READ_ATTEMPTS
        while True:
            table = self.table(layer, entity)
            if table is None:
                if schema is None:
                    raise FileNotFoundError(f"Delta table {self.uri(layer, entity)} does not exist yet")
                return schema.empty_table()
            try:
                return table.to_pyarrow_dataset().to_table(filter=filter)
            except FileNotFoundError:
                attempts_left -= 1
                if not attempts_left:
                    raise

    def append(
        self,
        layer: str,
        entity: str,
        data: pa.Table,
        app_transactions: dict[str, int] | None = None,
        read: DeltaTable | None = None,
    ) -> None:
        """Append in one Delta commit; `app_transactions` records (app id -> version) in that same commit.

        `read` is the table as the writer read it when it decided what to write (e.g. where to resume):
        the commit is then checked against every commit made since that version, and fails with
        `LakeCommitConflictError` when one of them recorded any of the same app ids (the Delta protocol's
        transaction conflict, enforced by delta-rs). `read` then holds the version just committed.
        """
        transactions = [Transaction(app_id, version) for app_id, version in (app_transactions or {}).items()]
        before = self.version(layer, entity)
        try:
            write_deltalake(
                read if read is not None else self.uri(layer, entity),
                data,
                mode="append",
                storage_options=self._options(),
                commit_properties=CommitProperties(app_transactions=transactions) if transactions else None,
            )
        except CommitFailedError as error:
            if not transactions:
                raise
            raise LakeCommitConflictError(
                f"{self.uri(layer, entity)}: another writer recorded {sorted(app_transactions or {})} first ({error})"
            ) from error
        self.checkpoint_if_due(layer, entity, before)

    def select(self, layer: str, entity: str, sql: str) -> pa.Table | None:
        """Run a SQL query over one table, named `<layer>` in the query; None when the table does not exist."""
        table = self.table(layer, entity)
        return None if table is None else _query(table, layer, sql)

    def delete_where(self, layer: str, entity: str, predicate: str) -> int:
        """Delete the rows matching `predicate` in one commit; returns how many there were.

        Not `DeltaTable.delete`: delta-rs rewrites the surviving rows of touched files with `string_view`
        columns, and readers that filter through pyarrow (dbt-duckdb's delta plugin) then fail to compare
        them with the table's `string` type. An overwrite by the same predicate with no rows keeps the types.
        """
        table = self.table(layer, entity)
        if table is None:
            return 0
        matching = _query(table, layer, f"select count(*) as n from {layer} where {predicate}").column("n")[0].as_py()
        if matching:
            self.replace_where(layer, entity, table.to_pyarrow_dataset().schema.empty_table(), predicate)
        return matching

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

    @contextmanager
    def checkpointing(self, layers: tuple[str, ...], entity: str) -> Iterator[None]:
        """Around writes by an engine that does not checkpoint (Spark): checkpoint each table when due."""
        versions_before = {layer: self.version(layer, entity) for layer in layers}
        yield
        for layer, version_before in versions_before.items():
            self.checkpoint_if_due(layer, entity, version_before)

    def create_if_missing(
        self, layer: str, entity: str, schema: pa.Schema, partition_by: list[str] | None = None
    ) -> None:
        """Create an empty table with an explicit, all-nullable schema before any engine writes to it."""
        if self.table(layer, entity) is None:
            try:
                write_deltalake(
                    self.uri(layer, entity),
                    schema.empty_table(),
                    mode="ignore",
                    partition_by=partition_by,
                    storage_options=self._options(),
                )
            except CommitFailedError:
                if self.table(layer, entity) is None:
                    raise  # not a concurrent writer that created it first

    def transaction_version(self, layer: str, entity: str, app_id: str) -> int | None:
        table = self.table(layer, entity)
        return None if table is None else table.transaction_version(app_id)

    def version(self, layer: str, entity: str) -> int | None:
        table = self.table(layer, entity)
        return None if table is None else table.version()


def _query(table: DeltaTable, name: str, sql: str) -> pa.Table:
    return QueryBuilder().register(name, table).execute(sql).read_all()
