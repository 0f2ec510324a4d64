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
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse
from urllib.request import url2pathname

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pa_dataset
from dagster import ConfigurableResource
from deltalake import (
    ColumnProperties,
    CommitProperties,
    DeltaTable,
    PostCommitHookProperties,
    QueryBuilder,
    Transaction,
    WriterProperties,
    write_deltalake,
)
from deltalake import Field as DeltaField
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.fs import DeltaStorageHandler
from pyarrow.fs import FileSystem, FileType, LocalFileSystem, PyFileSystem, SubTreeFileSystem

from platform_assets.lib.columns import datetimes
from platform_assets.lib.tables import partitions_predicate

LAYERS = (
    "landing",
    "quarantine",
    "raw",
    "raw_keys",
    "current",
    "current_tombstones",
    "history",
    "history_tombstones",
    "scd2",
    "scd2_tombstones",
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


def is_widening(stored: pa.DataType, wanted: pa.DataType) -> bool:
    """Whether every value of `stored` fits `wanted` exactly (a wider integer, float or decimal)."""
    if pa.types.is_integer(stored) and pa.types.is_integer(wanted):
        return pa.types.is_signed_integer(stored) == pa.types.is_signed_integer(wanted) and (
            wanted.bit_width > stored.bit_width
        )
    if pa.types.is_floating(stored) and pa.types.is_floating(wanted):
        return wanted.bit_width > stored.bit_width
    if pa.types.is_decimal(stored) and pa.types.is_decimal(wanted):
        return wanted.scale >= stored.scale and wanted.precision - wanted.scale >= stored.precision - stored.scale
    return False


@dataclass(frozen=True)
class SchemaChange:
    """How a stored table differs from the layout it should have now."""

    added: tuple[pa.Field, ...] = ()
    widened: tuple[tuple[pa.Field, pa.Field], ...] = ()  # (stored, wanted)
    incompatible: tuple[tuple[pa.Field, pa.Field], ...] = ()  # (stored, wanted)
    kept: tuple[pa.Field, ...] = ()  # stored columns the layout no longer names: kept, no longer filled

    @property
    def in_place(self) -> bool:
        return not self.incompatible


def schema_change(stored: pa.Schema, wanted: pa.Schema) -> SchemaChange:
    stored_types = {field.name: field for field in stored}
    wanted_names = set(wanted.names)
    return SchemaChange(
        added=tuple(field for field in wanted if field.name not in stored_types),
        widened=tuple(
            (stored_types[f.name], f)
            for f in wanted
            if f.name in stored_types
            and stored_types[f.name].type != f.type
            and is_widening(stored_types[f.name].type, f.type)
        ),
        incompatible=tuple(
            (stored_types[f.name], f)
            for f in wanted
            if f.name in stored_types
            and stored_types[f.name].type != f.type
            and not is_widening(stored_types[f.name].type, f.type)
        ),
        kept=tuple(field for field in stored if field.name not in wanted_names),
    )


class IncompatibleSchemaError(ValueError):
    """A stored table cannot take a new layout in place; the message names the columns."""


def stored_schema(table: DeltaTable) -> pa.Schema:
    return pa.schema(table.schema().to_arrow())


# A Delta checkpoint every this many commits: readers then start from it instead of replaying every
# commit, which keeps the cost of reading one partition flat however long the table's history grows.
CHECKPOINT_EVERY = 10
# Rows per row group of a compacted file. A reader of one hour skips the row groups whose statistics
# exclude it; with delta-rs's default (about a million rows), one compacted file was one row group and
# a read of one landing hour after upkeep read the whole month (0.19 s against 0.017 s before upkeep,
# 30 days of 500 events an hour); 32k rows still read 0.05 s, 8k rows 0.017 s.
COMPACTED_ROW_GROUP_ROWS = 8 * 1024


def lake_files(
    max_row_group_size: int | None = None, column_properties: dict[str, ColumnProperties] | None = None
) -> WriterProperties:
    """How the lake's files are written, by every write and by compaction: ZSTD at level 1. A 25k-record
    landing batch of JSON payloads took 0.17 MB against 0.81 MB with SNAPPY (delta-rs's default), written
    in the same 21 ms and read back in the same 40 ms; the landing archive is kept for ever."""
    return WriterProperties(
        max_row_group_size=max_row_group_size,
        column_properties=column_properties,
        compression="ZSTD",
        compression_level=1,
    )


LAKE_FILES = lake_files()
# How compaction writes: in row groups of that size (delta-rs compacts uncompressed by default: a month of
# landing grew from 14 MB to 84 MB on upkeep).
COMPACTED_FILES = lake_files(max_row_group_size=COMPACTED_ROW_GROUP_ROWS)
# The lake's appends and replaces leave expired log entries to upkeep (`maintain` drops them daily):
# after every commit delta-rs otherwise lists the whole log to find them, 9 ms of a 23 ms write of one
# raw hour at 800 commits, against 1 ms at 50.
WRITE_HOOKS = PostCommitHookProperties(cleanup_expired_logs=False)
# Reads of a table whose files a concurrent vacuum removed start again this many times in all.
READ_ATTEMPTS = 3


def _encodings(unique_columns: tuple[str, ...], opaque_columns: tuple[str, ...]) -> WriterProperties:
    """How `LakeResource.append` writes: as every write of the lake, unique and opaque columns as that
    method says."""
    unique = ColumnProperties(dictionary_enabled=False)
    opaque = ColumnProperties(dictionary_enabled=False, statistics_enabled="NONE")
    return lake_files(
        column_properties={**dict.fromkeys(unique_columns, unique), **dict.fromkeys(opaque_columns, opaque)}
    )


def vacuum(table: DeltaTable, retention_hours: int) -> list[str]:
    """Delete the files no version younger than `retention_hours` needs, whatever the table's own retention
    says; returns them named relative to the table, as delta-rs names them.

    On a local lake the files a dry run names are unlinked here. delta-rs's own vacuum deletes each one
    through its object store and then commits twice: 0.15 ms a file, against 0.02 ms for an unlink, and a
    week of upkeep leaves about 850 removed files in an entity's tables, which every erasure deletes again
    (a file already gone counts as deleted). Object stores keep delta-rs's batched deletes.
    """
    root = _local_root(table)
    if root is None:
        return table.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False)
    unneeded = table.vacuum(retention_hours=retention_hours, dry_run=True, enforce_retention_duration=False)
    for name in unneeded:
        (root / name).unlink(missing_ok=True)
    return unneeded


def _local_root(table: DeltaTable) -> Path | None:
    """The directory of a table on a local lake (its URI is percent-encoded; the names of its files below
    it are their own names), None on an object store."""
    uri = urlparse(table.table_uri)
    return Path(url2pathname(uri.path)) if uri.scheme == "file" else None


def _file_system(table: DeltaTable, storage_options: dict[str, str] | None) -> FileSystem:
    """A table's files as pyarrow reads them, named relative to the table. A local lake through pyarrow's
    own file system: through delta-rs's handler every range read calls back into Python (16 ms against
    3 ms to filter a 14k-row file of `current`)."""
    root = _local_root(table)
    if root is None:
        return PyFileSystem(DeltaStorageHandler(table.table_uri, storage_options))
    return SubTreeFileSystem(str(root), LocalFileSystem())


@dataclass(frozen=True)
class _LoadedTable:
    """A table loaded inside `LakeResource.reusing_tables`, with the storage of its files."""

    table: DeltaTable
    files: DeltaStorageHandler

    def newest(self) -> DeltaTable:
        """The table brought to its newest version. Versions are numbered without gaps, so the table is
        up to date unless the commit after its version exists: one look-up, where catching up lists the
        whole log (3 ms at 800 commits against 0.6 ms at 50)."""
        [next_commit] = self.files.get_file_info([f"_delta_log/{self.table.version() + 1:020}.json"])
        if next_commit.type != FileType.NotFound:
            self.table.update_incremental()
        return self.table


# The tables loaded inside `LakeResource.reusing_tables`, by URI (None outside one).
_REUSED_TABLES: ContextVar[dict[str, _LoadedTable] | None] = ContextVar("reused_lake_tables", default=None)


class FileHours(NamedTuple):
    """What a table's log says of the event hours of its files (`LakeResource.file_hours`)."""

    spans: dict[str, tuple[datetime, datetime]] | None  # path -> first and last hour; None: a file's unknown
    rows: dict[datetime, int] | None  # rows per hour; None: not partitioned by `_event_hour`, or unknown


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
        """The newest version of a table; None when it does not exist yet. Inside `reusing_tables`, the
        object loaded first, brought up to date (the same version a new load would give)."""
        uri = self.uri(layer, entity)
        reused = _REUSED_TABLES.get()
        if reused is not None and (loaded := reused.get(uri)) is not None:
            return loaded.newest()
        try:
            table = DeltaTable(uri, storage_options=self._options())
        except TableNotFoundError:
            return None
        if reused is not None:
            reused[uri] = _LoadedTable(table, DeltaStorageHandler(table.table_uri, self._options()))
        return table

    def table_as_of(self, layer: str, entity: str, version: int) -> DeltaTable:
        """An older version of a table, loaded apart from the tables `reusing_tables` shares."""
        return DeltaTable(self.uri(layer, entity), version=version, storage_options=self._options())

    @contextmanager
    def reusing_tables(self) -> Iterator[None]:
        """Load each table once in the block, and bring that object up to date at each later use.

        A load reads the log's newest checkpoint, one entry per file of the table, so it costs as the table
        grows (raw keeps a file per hour: 22 ms at 720 files, 6 ms at 24), and a step that loads a table
        ten times pays that ten times; catching up a loaded table reads only the commits since.
        For one thread's work, never across a `yield`: the scope is a context variable of that thread.
        """
        if _REUSED_TABLES.get() is not None:
            yield  # already inside one
            return
        token = _REUSED_TABLES.set({})
        try:
            yield
        finally:
            _REUSED_TABLES.reset(token)

    def read(
        self,
        layer: str,
        entity: str,
        filter: pc.Expression | None = None,
        schema: pa.Schema | None = None,
        files_where: str | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table:
        """Read a table (optionally filtered, and only `columns` of it when named: the others are not
        decoded); a table not written yet reads as empty with `schema`.

        `files_where` (a Delta SQL predicate) chooses the files to open by partition values and file
        statistics inside delta-rs; without it, pyarrow is handed every file of the table, one Python
        object each, so a read of one hour costs as the table grows.

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
                empty = pa.Table.from_batches([], schema=schema)  # `empty_table()` imports pandas
                return empty if columns is None else empty.select(columns)
            try:
                dataset = table.to_pyarrow_dataset(file_pruning_predicate=files_where)
                return dataset.to_table(columns=columns, filter=filter)
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
        unique_columns: tuple[str, ...] = (),
        opaque_columns: tuple[str, ...] = (),
    ) -> None:
        """Append in one Delta commit; `app_transactions` records (app id -> version) in that same commit.

        `unique_columns` hold a different value in almost every row (a record's offset): they are written
        without a dictionary, which the Parquet writer otherwise builds for every column and drops once a
        page fills. `opaque_columns` are unique too, and bytes no reader filters on (a record's key and
        payload): also without statistics. A landing batch of 25k records wrote in 8.5 ms and 0.81 MB
        this way, against 13.1 ms and 0.96 MB.

        `read` is the table as the writer read it when it decided what to write (e.g. where to resume):
        the commit is then checked against every commit made since that version, and fails with
        `LakeCommitConflictError` when one of them recorded any of the same app ids (the Delta protocol's
        transaction conflict, enforced by delta-rs). `read` then holds the version just committed.
        """
        transactions = [Transaction(app_id, version) for app_id, version in (app_transactions or {}).items()]
        stored = read if read is not None else self.table(layer, entity)
        before = None if stored is None else stored.version()
        try:
            write_deltalake(
                self.uri(layer, entity) if stored is None else stored,
                data if stored is None else conform(data, stored_schema(stored)),
                mode="append",
                storage_options=self._options(),
                commit_properties=CommitProperties(app_transactions=transactions) if transactions else None,
                post_commithook_properties=WRITE_HOOKS,
                writer_properties=_encodings(unique_columns, opaque_columns),
            )
        except CommitFailedError as error:
            if not transactions:
                raise
            raise LakeCommitConflictError(
                f"{self.uri(layer, entity)}: another writer recorded {sorted(app_transactions or {})} first ({error})"
            ) from error
        self._checkpoint_if_due(layer, entity, stored, before)

    def select(self, layer: str, entity: str, sql: str, joined: tuple[str, ...] = ()) -> pa.Table | None:
        """Run a SQL query over one table, named `<layer>` in the query, and the entity's tables of the
        layers in `joined`, each named by its layer; None when one of them does not exist."""
        names = (layer, *joined)
        tables = {name: table for name in names if (table := self.table(name, entity)) is not None}
        return _query(tables, sql) if len(tables) == len(names) else None

    def file_hours(self, layer: str, entity: str) -> FileHours:
        """What a table's log says of the event hours of its newest version's files (no data file is
        opened): each file's first and last hour, from its `_event_hour` partition value or its
        statistics of that column, and the rows of each hour where the table is partitioned by it.

        Two such looks, taken before and after some work, name the hours whose files changed between them.
        """
        table = self.table(layer, entity)
        if table is None:
            return FileHours({}, {})
        by_hour = table.metadata().partition_columns == ["_event_hour"]
        actions = pa.table(table.get_add_actions(flatten=True))
        if not actions.num_rows:
            return FileHours({}, {} if by_hour else None)
        if by_hour:
            first = last = actions.column("partition._event_hour")
        elif "min._event_hour" in actions.column_names:
            first, last = actions.column("min._event_hour"), actions.column("max._event_hour")
        else:
            return FileHours(None, None)
        if first.null_count or last.null_count:
            return FileHours(None, None)
        # Each hour made a datetime by arithmetic: `to_pylist` builds every one through the time zone
        # database, 6 ms of each look at a month of hourly partitions, which an erasure takes six times.
        firsts = datetimes(first)
        spans = dict(zip(actions.column("path").to_pylist(), zip(firsts, datetimes(last), strict=True), strict=True))
        rows = actions.column("num_records")
        if not by_hour or rows.null_count:
            return FileHours(spans, None)
        counts: dict[datetime, int] = {}
        for hour, count in zip(firsts, rows.to_pylist(), strict=True):
            counts[hour] = counts.get(hour, 0) + count
        return FileHours(spans, counts)

    def read_retained(
        self,
        layer: str,
        entity: str,
        filter: pc.Expression,
        gone: Collection[str] = (),
        columns: list[str] | None = None,
    ) -> pa.Table:
        """The rows matching `filter` in the files that only older versions of a table still hold: those
        the current version no longer names and no vacuum has deleted yet (the retention keeps them).
        `gone`: files (as a vacuum names them) known deleted, not looked up again: a look-up per file
        removed within the log's tombstone retention is this read's cost. `columns` as for `read_files`."""
        table = self.table(layer, entity)
        if table is None:
            return pa.table({})
        files = _file_system(table, self._options())
        removed = table.vacuum(retention_hours=0, dry_run=True, enforce_retention_duration=False)
        unknown = [path for path in removed if path not in gone]
        retained = [info.path for info in files.get_file_info(unknown) if info.type == FileType.File]
        return self.read_files(layer, entity, retained, filter, columns)

    def file_paths(self, layer: str, entity: str) -> frozenset[str]:
        """The files of a table's newest version, named relative to the table as its log names them."""
        table = self.table(layer, entity)
        if table is None:
            return frozenset()
        return frozenset(pa.table(table.get_add_actions(flatten=False)).column("path").to_pylist())

    def read_files(
        self,
        layer: str,
        entity: str,
        paths: Collection[str],
        filter: pc.Expression,
        columns: list[str] | None = None,
    ) -> pa.Table:
        """The rows matching `filter` in the named files of a table (as its log or a vacuum names them),
        whichever versions hold them; `filter` may not name a partition column (the files do not hold
        them). Read in the table's layout: a file written before a column was added reads it as null.
        `columns`: only those are decoded besides the filter's (`[]`: the rows are only counted)."""
        table = self.table(layer, entity)
        if table is None or not paths:
            return pa.table({})
        partitions = set(table.metadata().partition_columns)
        layout = pa.schema([field for field in stored_schema(table) if field.name not in partitions])
        dataset = pa_dataset.dataset(
            list(paths), schema=layout, format="parquet", filesystem=_file_system(table, self._options())
        )
        return dataset.to_table(columns=columns, filter=filter)

    def delete_where(self, layer: str, entity: str, predicate: str) -> int:
        """Delete the rows matching `predicate` in one commit; returns how many there were.

        Not `DeltaTable.delete`: delta-rs rewrites the surviving rows of touched files with `string_view`
        columns, and readers that filter through pyarrow (dbt-duckdb's delta plugin) then fail to compare
        them with the table's `string` type. An overwrite by the same predicate with no rows keeps the types.
        The count names the partitions that hold the rows, and the overwrite opens only theirs: a month of
        daily history is otherwise read twice to delete one person's rows of a day. A row a commit adds
        after the count in another partition is left, as one added after the overwrite always was.
        """
        table = self.table(layer, entity)
        if table is None:
            return 0
        partitions = table.metadata().partition_columns
        by = ", ".join(partitions)
        counting = f"select count(*) as n from {layer} where {predicate}"
        if partitions:
            counting = f"select {by}, count(*) as n from {layer} where {predicate} group by {by}"
        counted = _query({layer: table}, counting)
        matching = sum(counted.column("n").to_pylist())
        if matching:
            where = predicate
            if partitions:
                where = f"({partitions_predicate(counted.select(partitions).to_pylist())}) AND ({predicate})"
            self.replace_where(layer, entity, stored_schema(table).empty_table(), where)
        return matching

    def replace_where(self, layer: str, entity: str, data: pa.Table, predicate: str) -> None:
        """Atomically replace the rows matching `predicate` by `data` (Delta `replaceWhere`)."""
        table = self.table(layer, entity)
        before = None if table is None else table.version()
        if table is None:
            write_deltalake(
                self.uri(layer, entity),
                data,
                mode="append",
                storage_options=self._options(),
                writer_properties=LAKE_FILES,
            )
        else:
            write_deltalake(
                table,
                conform(data, stored_schema(table)),
                mode="overwrite",
                predicate=predicate,
                post_commithook_properties=WRITE_HOOKS,
                writer_properties=LAKE_FILES,
            )
        self._checkpoint_if_due(layer, entity, table, before)

    def checkpoint_if_due(self, layer: str, entity: str, version_before: int | None) -> None:
        """Checkpoint when the commits since `version_before` crossed a multiple of CHECKPOINT_EVERY."""
        self._checkpoint_if_due(layer, entity, None, version_before)

    def _checkpoint_if_due(
        self, layer: str, entity: str, written: DeltaTable | None, version_before: int | None
    ) -> None:
        """`checkpoint_if_due`; `written`: the object a write went through, which holds its commit."""
        table = written if written is not None else self.table(layer, entity)
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
        self,
        layer: str,
        entity: str,
        schema: pa.Schema,
        partition_by: list[str] | None = None,
        rows: pa.Table | None = None,
        app_transactions: dict[str, int] | None = None,
    ) -> None:
        """Create a table with an explicit, all-nullable schema before any engine writes to it: empty, or
        holding `rows` from the commit that creates it, which records `app_transactions` (app id ->
        version): what only that commit can say (table properties of other names than Delta's own are
        refused in it). Of writers that create it at once, one does; the others find it created."""
        transactions = [Transaction(app_id, version) for app_id, version in (app_transactions or {}).items()]
        if self.table(layer, entity) is None:
            try:
                write_deltalake(
                    self.uri(layer, entity),
                    # `empty_table()` imports pandas: ~1 s per process
                    pa.Table.from_batches([], schema=schema) if rows is None else rows,
                    # Only as version 0, or not at all: with retries, delta-rs commits a creation that lost the
                    # race for version 0 as version 1, whose new metadata fails every append that read version
                    # 0; and mode "ignore" finding the table made an empty commit.
                    mode="error",
                    partition_by=partition_by,
                    commit_properties=CommitProperties(app_transactions=transactions or None, max_commit_retries=0),
                    storage_options=self._options(),
                    writer_properties=LAKE_FILES,
                )
            except (CommitFailedError, DeltaError):
                if self.table(layer, entity) is None:
                    raise  # not a concurrent writer that created it first

    def evolve(self, layer: str, entity: str, schema: pa.Schema, partition_by: list[str] | None = None) -> SchemaChange:
        """Create the table with `schema`, or bring a stored one to it in place: new columns are added
        (existing rows read null), widened columns are rewritten with every value preserved, and columns
        `schema` no longer has are kept (no longer filled), so readers' queries do not break. A change
        that would lose or reinterpret values raises `IncompatibleSchemaError` and touches nothing."""
        table = self.table(layer, entity)
        if table is None:
            self.create_if_missing(layer, entity, schema, partition_by)
            return SchemaChange()
        change = schema_change(stored_schema(table), schema)
        if change.incompatible:
            columns = ", ".join(f"`{old.name}` {old.type} -> {new.type}" for old, new in change.incompatible)
            raise IncompatibleSchemaError(f"{self.uri(layer, entity)}: {columns} cannot change in place")
        if change.added:
            table.alter.add_columns([DeltaField.from_arrow(field.with_nullable(True)) for field in change.added])
        if change.widened:
            self._widen(layer, entity, change)
        return change

    def _widen(self, layer: str, entity: str, change: SchemaChange) -> None:
        """Rewrite the table with its widened columns in one commit (readers see the old or the new version)."""
        table = self.table(layer, entity)
        assert table is not None
        widened = {new.name: new.type for _, new in change.widened}
        target = pa.schema([f.with_type(widened.get(f.name, f.type)) for f in stored_schema(table)])
        batches = (batch.cast(target) for batch in table.to_pyarrow_dataset().to_batches())
        write_deltalake(
            self.uri(layer, entity),
            pa.RecordBatchReader.from_batches(target, batches),
            mode="overwrite",
            schema_mode="overwrite",
            partition_by=table.metadata().partition_columns or None,
            storage_options=self._options(),
            writer_properties=LAKE_FILES,
        )

    def publish(self, layer: str, entity: str, source: DeltaTable | None) -> int:
        """Replace the table by the contents and layout of `source` (a table built elsewhere) in one commit,
        so readers see the old version or the new one, never a mix; returns the rows published."""
        if source is None:
            return 0
        schema = stored_schema(source)
        rows = source.to_pyarrow_dataset().count_rows()
        write_deltalake(
            self.uri(layer, entity),
            pa.RecordBatchReader.from_batches(schema, source.to_pyarrow_dataset().to_batches()),
            mode="overwrite",
            schema_mode="overwrite",
            partition_by=source.metadata().partition_columns or None,
            storage_options=self._options(),
            writer_properties=LAKE_FILES,
        )
        return rows

    def maintain(
        self, layer: str, entity: str, retention_hours: int, cluster_by: tuple[str, ...] = ()
    ) -> dict[str, int]:
        """Keep a table fast however long it lives: rewrite its small files into large ones (clustered by
        `cluster_by`, the columns its readers select on, so file statistics still prune; a partition
        column prunes by itself and is not clustered), checkpoint the log, delete files no version
        younger than `retention_hours` needs, and drop log entries past the table's log retention.
        Compaction commits with dataChange=false: rows and app transactions are unchanged, and a
        concurrent append does not conflict with it."""
        table = self.table(layer, entity)
        if table is None:
            return {}
        files_before = len(table.file_uris())
        clustered = [column for column in cluster_by if column not in table.metadata().partition_columns]
        if files_before > 1:
            if clustered:
                table.optimize.z_order(clustered, writer_properties=COMPACTED_FILES)
            else:
                table.optimize.compact(writer_properties=COMPACTED_FILES)
        table.create_checkpoint()
        removed = vacuum(table, retention_hours)
        table.cleanup_metadata()
        return {"files_before": files_before, "files_after": len(table.file_uris()), "files_deleted": len(removed)}

    def properties(self, layer: str, entity: str) -> dict[str, str]:
        table = self.table(layer, entity)
        return {} if table is None else dict(table.metadata().configuration)

    def set_properties(self, layer: str, entity: str, properties: dict[str, str]) -> None:
        """Set table properties; no commit when the table holds them already (every raw run sets them)."""
        table = self.table(layer, entity)
        if table is not None and properties.items() - table.metadata().configuration.items():
            table.alter.set_table_properties(properties, raise_if_not_exists=False)

    def transaction_version(self, layer: str, entity: str, app_id: str) -> int | None:
        table = self.table(layer, entity)
        return None if table is None else table.transaction_version(app_id)

    def version(self, layer: str, entity: str) -> int | None:
        table = self.table(layer, entity)
        return None if table is None else table.version()


def conform(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """`data` in a stored table's layout: columns the table kept from an older layout read null."""
    if data.schema == schema:
        return data
    unknown = set(data.column_names) - set(schema.names)
    if unknown:
        raise IncompatibleSchemaError(f"columns {sorted(unknown)} are not in the stored table; evolve it first")
    columns = [
        data.column(f.name).cast(f.type) if f.name in data.column_names else pa.nulls(data.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _query(tables: dict[str, DeltaTable], sql: str) -> pa.Table:
    builder = QueryBuilder()
    for name, table in tables.items():
        builder.register(name, table)
    return pa.table(builder.execute(sql).read_all())
