"""The lake: one Delta table per `<layer>/<entity>` under `PLATFORM_LAKE_ROOT`.

A local path by default (`.data/lake`), `abfss://container@account.dfs.core.windows.net/path` for ADLS
Gen2 or `s3://bucket/path` for S3 in production. `LakeResource.from_env()` turns the non-secret
storage settings of the environment (endpoint, region, account name, emulator, locking) into delta-rs
storage options; credentials are never copied into them (resource config is visible in the Dagster
UI): delta-rs reads `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, IRSA, and
`AZURE_STORAGE_ACCOUNT_KEY`/`AZURE_CLIENT_*`/workload identity from the environment itself.
`spark_conf_for_root()` gives the matching settings for a JVM Spark Connect server (S3A, ABFS).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
from dagster import ConfigurableResource
from deltalake import CommitProperties, DeltaTable, QueryBuilder, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError

LAYERS = (
    "landing",
    "quarantine",
    "raw",
    "current",
    "current_tombstones",
    "history",
    "history_tombstones",
    "marts",
    "snapshot",
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


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def spark_conf_for_root(root: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Settings a JVM Spark Connect server (hadoop-aws / hadoop-azure, delta-spark) needs to use `root`.

    For the server's spark-defaults.conf (the chart's `sparkConnect.conf`), not for a session: Hadoop
    filesystems read `spark.hadoop.*` when the server starts. Secrets appear only as `${env.NAME}`, which
    Hadoop's Configuration expands from the environment of the driver and of each executor, so the same
    Kubernetes Secret (or workload identity) must reach both. Embedded Sail ignores these keys: it reads
    the same `AWS_*` / `AZURE_*` environment variables as delta-rs. A local root needs nothing.
    """
    env = os.environ if environ is None else environ
    kind = scheme(root)
    if kind in S3_SCHEMES:
        return _s3a_conf(env)
    if kind in ("abfss", "abfs"):
        parts = urlsplit(root)
        if not parts.hostname or not parts.username:
            raise ValueError(f"expected abfss://<container>@<account>.dfs.core.windows.net/<path>, not {root}")
        return _abfs_conf(parts.hostname, env)
    if kind in AZURE_SCHEMES:
        raise ValueError(
            f"Spark (hadoop-azure) cannot open `{kind}://` paths, and every table URI is handed to Spark as is: "
            "set PLATFORM_LAKE_ROOT=abfss://<container>@<account>.dfs.core.windows.net/<path> for a JVM Spark "
            "server (az:// works for delta-rs and embedded Sail only)"
        )
    if kind == "file":
        return {}
    raise ValueError(f"unsupported lake root scheme `{kind}://` in {root}: use a local path, s3:// or abfss://")


def _s3a_conf(env: Mapping[str, str]) -> dict[str, str]:
    prefix = "spark.hadoop.fs.s3a."
    conf = {
        # s3:// table URIs go to S3A (Hadoop has no other s3 filesystem).
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.AbstractFileSystem.s3.impl": "org.apache.hadoop.fs.s3a.S3A",
    }
    options = storage_options_from_env("s3://", env)
    if region := options.get("AWS_REGION"):
        conf[prefix + "endpoint.region"] = region
    if endpoint := options.get("AWS_ENDPOINT_URL"):
        conf[prefix + "endpoint"] = endpoint
        if not _is_true(options.get("AWS_VIRTUAL_HOSTED_STYLE_REQUEST")):
            conf[prefix + "path.style.access"] = "true"
        if endpoint.startswith("http://"):
            conf[prefix + "connection.ssl.enabled"] = "false"
    # Credentials: S3A's default chain already reads AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN;
    # IRSA (a projected web identity token) needs its provider named.
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and not env.get("AWS_ACCESS_KEY_ID"):
        conf[prefix + "aws.credentials.provider"] = (
            "software.amazon.awssdk.auth.credentials.WebIdentityTokenFileCredentialsProvider"
        )
    # Commits: Delta Spark's default S3 log store is safe for one driver only and does not use S3 conditional
    # writes, so it does not coordinate with delta-rs; keep one writer per table at a time (Dagster pools).
    return conf


def _abfs_conf(host: str, env: Mapping[str, str]) -> dict[str, str]:
    """ABFS settings scoped to one account (`<account>.dfs.core.windows.net`)."""
    account = f"spark.hadoop.fs.azure.account.{{}}.{host}"
    oauth = f"spark.hadoop.fs.azure.account.oauth2.{{}}.{host}"
    if env.get("AZURE_STORAGE_ACCOUNT_KEY"):
        return {
            account.format("auth.type"): "SharedKey",
            account.format("key"): "${env.AZURE_STORAGE_ACCOUNT_KEY}",
        }
    conf = {account.format("auth.type"): "OAuth"}
    if env.get("AZURE_FEDERATED_TOKEN_FILE"):  # AKS workload identity (deploy/values/aks-adls.yaml)
        conf[account.format("oauth.provider.type")] = (
            "org.apache.hadoop.fs.azurebfs.oauth2.WorkloadIdentityTokenProvider"
        )
        conf[oauth.format("msi.tenant")] = "${env.AZURE_TENANT_ID}"
        conf[oauth.format("client.id")] = "${env.AZURE_CLIENT_ID}"
        conf[oauth.format("token.file")] = "${env.AZURE_FEDERATED_TOKEN_FILE}"
    elif env.get("AZURE_CLIENT_SECRET"):  # a service principal
        conf[account.format("oauth.provider.type")] = "org.apache.hadoop.fs.azurebfs.oauth2.ClientCredsTokenProvider"
        conf[oauth.format("client.endpoint")] = "https://login.microsoftonline.com/${env.AZURE_TENANT_ID}/oauth2/token"
        conf[oauth.format("client.id")] = "${env.AZURE_CLIENT_ID}"
        conf[oauth.format("client.secret")] = "${env.AZURE_CLIENT_SECRET}"
    else:  # the managed identity of the node (or the one named by AZURE_CLIENT_ID)
        conf[account.format("oauth.provider.type")] = "org.apache.hadoop.fs.azurebfs.oauth2.MsiTokenProvider"
        if env.get("AZURE_CLIENT_ID"):
            conf[oauth.format("client.id")] = "${env.AZURE_CLIENT_ID}"
    return conf


# A Delta checkpoint every this many commits: readers then start from it instead of replaying every
# commit, which keeps the cost of reading one partition flat however long the table's history grows.
CHECKPOINT_EVERY = 10


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


def _query(table: DeltaTable, name: str, sql: str) -> pa.Table:
    return QueryBuilder().register(name, table).execute(sql).read_all()
