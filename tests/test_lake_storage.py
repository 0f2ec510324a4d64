"""The lake on object stores: S3 (a local moto server) and Azure Blob Storage (Azurite), through the same
`LakeResource.from_env()` a production process uses, with delta-rs for every table operation and Sail for
the `current` MERGE; plus the Spark settings and the ADLS provisioning plan, which need no server.

The emulators are started by the tests and must start: a missing Azurite (`npm ci --prefix .ci`) or
moto is a failure, not a skip.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from resources.lake import LakeResource, spark_conf_for_root, storage_options_from_env

REPO = Path(__file__).resolve().parents[1]
AZURITE = REPO / ".ci" / "node_modules" / ".bin" / "azurite-blob"
MOTO = Path(sys.executable).with_name("moto_server")
BUCKET = CONTAINER = "lake"
# Azurite's account and key: public, the same in every installation (documented by Microsoft).
EMULATOR_ACCOUNT = "devstoreaccount1"
EMULATOR_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SECRET = "s3cr3t-value-that-must-not-leak"
HOUR = datetime(2026, 1, 1, 3, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def emulator(name: str, command: list[str], port: int, log: Path, timeout_s: float = 60.0) -> Iterator[None]:
    """Run an emulator until the block ends; fail (never skip) when it does not listen in time."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=log.parent)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{name} did not start ({' '.join(command)}):\n{log.read_text()[-3000:]}")
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory) -> Iterator[str]:
    """A local S3 (moto server) with the bucket `lake`."""
    import boto3

    if not MOTO.exists():
        pytest.fail(f"{MOTO} is missing: moto[server] is in the dev dependencies, run `uv sync --frozen`")
    port = free_port()
    command = [str(MOTO), "-H", "127.0.0.1", "-p", str(port)]
    with emulator("moto_server", command, port, tmp_path_factory.mktemp("moto") / "moto.log"):
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=BUCKET)
        yield endpoint


@pytest.fixture(scope="module")
def azurite_url(tmp_path_factory) -> Iterator[str]:
    """Azurite's Blob service with the container `lake` (Azurite has no DFS endpoint)."""
    from azure.storage.blob import BlobServiceClient

    if not AZURITE.exists():
        pytest.fail(f"{AZURITE} is missing: install the pinned Azurite with `npm ci --prefix .ci`")
    port = free_port()
    workdir = tmp_path_factory.mktemp("azurite")
    command = [
        str(AZURITE),
        *("--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(workdir)),
        *("--skipApiVersionCheck", "--loose", "--disableTelemetry"),
    ]
    with emulator("azurite-blob", command, port, workdir / "azurite.log"):
        url = f"http://127.0.0.1:{port}"
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={EMULATOR_ACCOUNT};AccountKey={EMULATOR_KEY};"
            f"BlobEndpoint={url}/{EMULATOR_ACCOUNT};"
        )
        BlobServiceClient.from_connection_string(connection).create_container(CONTAINER)
        yield url


def s3_environment(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET,
    }


def azurite_environment(url: str) -> dict[str, str]:
    return {
        "AZURE_STORAGE_USE_EMULATOR": "true",
        "AZURE_STORAGE_ACCOUNT_NAME": EMULATOR_ACCOUNT,
        "AZURITE_BLOB_STORAGE_URL": url,
    }


@pytest.fixture
def object_lake(request, monkeypatch) -> LakeResource:
    """`LakeResource.from_env()` on a fresh path of one object store, as a production process builds it."""
    store = request.param
    path = f"lake-{uuid.uuid4().hex[:8]}"
    if store == "s3":
        environment = s3_environment(request.getfixturevalue("moto_endpoint"))
        root = f"s3://{BUCKET}/{path}"
    else:
        environment = azurite_environment(request.getfixturevalue("azurite_url"))
        # Both spellings reach the same Blob API; abfss:// is the production form.
        host = f"{EMULATOR_ACCOUNT}.dfs.core.windows.net"
        root = f"az://{CONTAINER}/{path}" if store == "azure-az" else f"abfss://{CONTAINER}@{host}/{path}"
    for name, value in {**environment, "PLATFORM_LAKE_ROOT": root}.items():
        monkeypatch.setenv(name, value)
    lake = LakeResource.from_env()
    assert lake.resolved_root == root
    return lake


STORES = ["s3", "azure-abfss", "azure-az"]
LANDING_LIKE = pa.schema([("topic", pa.string()), ("offset", pa.int64()), ("value", pa.binary())])
HOURLY = pa.schema([("_event_hour", pa.timestamp("us", "UTC")), ("id", pa.string()), ("v", pa.int64())])


def batch(topic: str, offsets: range) -> pa.Table:
    return pa.Table.from_pylist(
        [{"topic": topic, "offset": o, "value": f"record {o}".encode()} for o in offsets], LANDING_LIKE
    )


def hour_rows(hour: datetime, ids: list[str], version: int) -> pa.Table:
    return pa.Table.from_pylist([{"_event_hour": hour, "id": i, "v": version} for i in ids], HOURLY)


def hour_predicate(hour: datetime) -> str:
    end = hour + timedelta(hours=1)
    return f"_event_hour >= '{hour:%Y-%m-%dT%H:%M:%SZ}' AND _event_hour < '{end:%Y-%m-%dT%H:%M:%SZ}'"


@pytest.mark.parametrize("object_lake", STORES, indirect=True)
def test_every_lake_operation_on_the_object_store(object_lake: LakeResource):
    lake = object_lake
    assert lake.table("landing", "things") is None
    assert lake.read("landing", "things", schema=LANDING_LIKE).num_rows == 0
    with pytest.raises(FileNotFoundError):
        lake.read("landing", "things")

    # Exactly-once landing: each append records the last landed offset in the same commit.
    app = "landing:things:t:0"
    assert lake.transaction_version("landing", "things", app) is None
    lake.append("landing", "things", batch("t", range(10)), app_transactions={app: 9})
    assert lake.transaction_version("landing", "things", app) == 9
    lake.append("landing", "things", batch("t", range(10, 25)), app_transactions={app: 24})
    assert lake.transaction_version("landing", "things", app) == 24
    assert lake.version("landing", "things") == 1
    tail = lake.read("landing", "things", pc.field("offset") >= 20)
    assert sorted(tail.column("offset").to_pylist()) == [20, 21, 22, 23, 24]
    assert lake.read("landing", "things").num_rows == 25

    # Hourly replaceWhere: a rerun of an hour replaces that hour only.
    other = HOUR + timedelta(hours=1)
    lake.replace_where("raw", "things", hour_rows(HOUR, ["a", "b"], 1), hour_predicate(HOUR))
    lake.replace_where("raw", "things", hour_rows(other, ["c"], 1), hour_predicate(other))
    lake.replace_where("raw", "things", hour_rows(HOUR, ["a"], 2), hour_predicate(HOUR))
    rows = sorted((r["id"], r["v"]) for r in lake.read("raw", "things").to_pylist())
    assert rows == [("a", 2), ("c", 1)]

    # create_if_missing: an empty, partitioned table once; later calls leave it alone.
    lake.create_if_missing("current", "things", HOURLY, partition_by=["id"])
    lake.create_if_missing("current", "things", HOURLY, partition_by=["id"])
    created = lake.table("current", "things")
    assert created is not None and created.version() == 0
    assert created.metadata().partition_columns == ["id"]
    assert lake.read("current", "things").schema == HOURLY


@pytest.mark.parametrize("object_lake", ["s3", "azure-abfss"], indirect=True)
def test_concurrent_appends_all_land(object_lake: LakeResource):
    """Commits are put-if-absent on the store: when two writers race for a version, the store refuses the
    second put (moto 412, Azurite 409 in their logs) and delta-rs retries on top of the winner instead of
    overwriting its commit. The race is not forced: this checks that nothing is ever lost."""
    lake, errors = object_lake, []
    lake.append("landing", "things", batch("t", range(1)))

    def writer(first: int) -> None:
        try:
            for start in range(first, first + 40, 10):
                lake.append("landing", "things", batch("t", range(start, start + 10)))
        except Exception as error:  # reported below, with the rows that went missing
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(first,)) for first in (100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    offsets = sorted(lake.read("landing", "things").column("offset").to_pylist())
    assert not errors and offsets == [0, *range(100, 140), *range(200, 240)], errors
    assert lake.version("landing", "things") == 8


def test_storage_options_hold_settings_never_credentials():
    environment = {
        **s3_environment("http://127.0.0.1:9000"),
        "AWS_SESSION_TOKEN": SECRET,
        "AZURE_STORAGE_ACCOUNT_NAME": "acct",
        "AZURE_STORAGE_ACCOUNT_KEY": SECRET,
        "AZURE_CLIENT_SECRET": SECRET,
        "AZURE_STORAGE_SAS_KEY": SECRET,
    }
    s3 = storage_options_from_env("s3://bucket/lake", environment)
    assert s3 == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
    azure = storage_options_from_env("abfss://lake@acct.dfs.core.windows.net/cdp", environment)
    assert azure == {"azure_storage_account_name": "acct"}
    assert storage_options_from_env("az://lake/cdp", {"AZURE_STORAGE_USE_EMULATOR": "true"}) == {
        "azure_storage_use_emulator": "true"
    }
    assert SECRET not in json.dumps([s3, azure])
    # A local root keeps working exactly as before: no options at all.
    assert storage_options_from_env("/data/lake", environment) == {}


def test_from_env_on_a_local_root_is_unchanged(monkeypatch, tmp_path):
    monkeypatch.setenv("PLATFORM_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    lake = LakeResource.from_env()
    assert lake.root == str(tmp_path / "lake") and lake.storage_options == {}


def test_spark_conf_names_secrets_only_as_environment_references():
    s3 = spark_conf_for_root("s3://bucket/lake", {**s3_environment("http://minio:9000"), "AWS_SESSION_TOKEN": SECRET})
    assert s3["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert s3["spark.hadoop.fs.s3a.endpoint"] == "http://minio:9000"
    assert s3["spark.hadoop.fs.s3a.endpoint.region"] == "us-east-1"
    assert s3["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert s3["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    irsa = spark_conf_for_root("s3://bucket/lake", {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token"})
    assert irsa["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith("WebIdentityTokenFileCredentialsProvider")

    root = "abfss://lake@acct.dfs.core.windows.net/cdp"
    host = "acct.dfs.core.windows.net"
    keyed = spark_conf_for_root(root, {"AZURE_STORAGE_ACCOUNT_KEY": SECRET})
    assert keyed == {
        f"spark.hadoop.fs.azure.account.auth.type.{host}": "SharedKey",
        f"spark.hadoop.fs.azure.account.key.{host}": "${env.AZURE_STORAGE_ACCOUNT_KEY}",
    }
    workload = spark_conf_for_root(
        root, {"AZURE_FEDERATED_TOKEN_FILE": "/var/run/token", "AZURE_CLIENT_ID": "id", "AZURE_TENANT_ID": "t"}
    )
    assert workload[f"spark.hadoop.fs.azure.account.auth.type.{host}"] == "OAuth"
    assert workload[f"spark.hadoop.fs.azure.account.oauth.provider.type.{host}"].endswith(
        "WorkloadIdentityTokenProvider"
    )
    assert workload[f"spark.hadoop.fs.azure.account.oauth2.token.file.{host}"] == "${env.AZURE_FEDERATED_TOKEN_FILE}"
    principal = spark_conf_for_root(root, {"AZURE_CLIENT_SECRET": SECRET, "AZURE_CLIENT_ID": "id"})
    assert principal[f"spark.hadoop.fs.azure.account.oauth2.client.secret.{host}"] == "${env.AZURE_CLIENT_SECRET}"
    assert SECRET not in json.dumps([s3, irsa, keyed, workload, principal])

    assert spark_conf_for_root("/data/lake", {}) == {}
    with pytest.raises(ValueError, match="abfss://"):
        spark_conf_for_root("az://lake/cdp", {})


def test_adls_plan_gives_readers_read_only_access_to_the_published_layers():
    from resources.adls import layer_acls, merge_acl, parse_lake_root

    readers = "11111111-2222-3333-4444-555555555555"
    plan = layer_acls(readers)
    assert set(plan) >= {"landing", "quarantine", "raw", "current", "history", "marts", "snapshot"}
    for layer, acl in plan.items():
        entries = acl.split(",")
        assert {"user::rwx", "group::---", "other::---", "default:other::---"} <= set(entries), layer
        if layer in ("current", "history", "marts"):
            assert f"group:{readers}:r-x" in entries and f"default:group:{readers}:r-x" in entries
            assert "mask::r-x" in entries and "default:mask::r-x" in entries
        else:
            assert readers not in acl, f"{layer} holds PII in clear or unnamed fields: no readers"
    assert (
        merge_acl("user::rwx,group::r-x,other::---", [f"group:{readers}:--x"])
        == f"user::rwx,group::r-x,group:{readers}:--x,mask::r-x,other::---"
    )
    assert parse_lake_root("abfss://lake@acct.dfs.core.windows.net/a/b").path == "a/b"
    with pytest.raises(ValueError):
        layer_acls(readers, readable_layers=["gold"])
    with pytest.raises(ValueError):
        parse_lake_root("s3://bucket/lake")


def test_adls_provisioning_creates_each_layer_once_and_sets_its_acl():
    """Against a recording stand-in for the SDK client; the real DFS endpoint is not emulated anywhere."""
    from azure.core.exceptions import ResourceExistsError

    from resources.adls import layer_acls, parse_lake_root, provision_lake

    class Directory:
        def __init__(self, store: Service, path: str):
            self.store, self.path = store, path

        def create_directory(self, **kwargs: Any) -> None:
            if self.path in self.store.acls:
                raise ResourceExistsError("exists")
            self.store.acls[self.path] = "user::rwx,group::r-x,other::---"

        def get_access_control(self) -> dict[str, str]:
            return {"acl": self.store.acls[self.path]}

        def set_access_control(self, acl: str) -> None:
            self.store.acls[self.path] = acl

    class Service:
        def __init__(self) -> None:
            self.acls: dict[str, str] = {"/": "user::rwx,group::r-x,other::---"}
            self.file_systems: list[str] = []

        def get_file_system_client(self, name: str) -> Service:
            self.file_systems.append(name)
            return self

        def create_file_system(self) -> None:
            if len(self.file_systems) > 1:
                raise ResourceExistsError("exists")

        def get_directory_client(self, path: str) -> Directory:
            return Directory(self, path)

    readers = "readers-oid"
    location = parse_lake_root("abfss://lake@acct.dfs.core.windows.net/platform/cdp")
    service = Service()
    first = provision_lake(service, location, layer_acls(readers), [readers])
    again = provision_lake(service, location, layer_acls(readers), [readers])
    assert [d.path for d in first if d.created] == [d.path for d in first]
    assert not any(d.created for d in again)
    assert service.acls["platform/cdp/current"] == layer_acls(readers)["current"]
    for traversed in ("/", "platform", "platform/cdp"):
        assert f"group:{readers}:--x" in service.acls[traversed].split(",")
        assert "default:" not in service.acls[traversed]


@contextmanager
def sail_session() -> Iterator[Any]:
    """A Spark Connect session on a Sail server of its own, started after the storage environment is set."""
    from pysail.spark import SparkConnectServer
    from pyspark.sql import SparkSession

    from resources.spark import use_client_only_spark_home

    use_client_only_spark_home()
    server = SparkConnectServer("127.0.0.1", 0)
    server.start(background=True)
    try:
        _, port = server.listening_address
        spark = SparkSession.builder.remote(f"sc://127.0.0.1:{port}").create()
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        try:
            yield spark
        finally:
            spark.stop()
    finally:
        server.stop()


@pytest.mark.parametrize("object_lake", ["s3", "azure-abfss"], indirect=True)
def test_landing_raw_and_current_round_trip_on_the_object_store(object_lake: LakeResource, broker):
    """The real assets: landing from the broker, raw decoding, then the current MERGE on Sail."""
    from confluent_kafka import Producer
    from dagster import AssetKey, DagsterInstance, materialize

    from platform_assets.current import merge_spec
    from platform_assets.landing import app_id, build_landing_asset
    from platform_assets.lib.contract import parse_contract
    from platform_assets.lib.tables import current_schema
    from platform_assets.raw import build_raw_assets
    from resources.kafka import KafkaResource
    from resources.schema_registry import SchemaRegistryResource
    from simulator.service import ensure_topics
    from spark.cdc import changes_between, merge_into_current

    lake, suffix = object_lake, uuid.uuid4().hex[:6]
    topics = {"create": f"obj-create-{suffix}", "update": f"obj-update-{suffix}", "delete": f"obj-delete-{suffix}"}
    contract = parse_contract(
        {
            "name": "things",
            "source": {"format": "json", "topics": topics},
            "key": ["id"],
            "sequence": "v",
            "event_time": "ts",
            "fields": {"id": {"nullable": False}, "colour": {}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
            "quality": {"max_quarantine_rate": 0.5},
        }
    )
    ensure_topics(broker, topics.values())
    producer = Producer({"bootstrap.servers": broker})
    events: list[tuple[str, str, int, str | None]] = [
        ("create", "a", 1, "red"),
        ("create", "b", 1, "blue"),
        ("update", "a", 2, "green"),
        ("delete", "b", 2, None),
    ]
    for minute, (operation, key, version, colour) in enumerate(events):
        value = {"id": key, "colour": colour, "ts": f"2026-01-01T03:{minute:02d}:00Z", "v": version}
        producer.produce(topics[operation], key=key.encode(), value=json.dumps(value).encode())
    producer.produce(topics["update"], key=b"c", value=b"{not json", timestamp=int(HOUR.timestamp() * 1000) + 1)
    assert producer.flush(30) == 0

    def resources(group: str) -> dict[str, Any]:
        kafka = KafkaResource(bootstrap_servers=broker, group_prefix=f"{group}-{suffix}")
        return {"kafka": kafka, "lake": lake, "schema_registry": SchemaRegistryResource()}

    instance = DagsterInstance.ephemeral()
    landing = build_landing_asset(contract)
    assert materialize([landing], instance=instance, resources=resources("first")).success
    landed = lake.read("landing", "things")
    assert landed.num_rows == 5
    assert lake.transaction_version("landing", "things", app_id("things", topics["update"], 0)) == 1
    # A consumer group that never committed resumes from the Delta log's app transactions: nothing twice.
    again = materialize([landing], instance=instance, resources=resources("second"))
    assert again.success
    [landing_run] = again.asset_materializations_for_node(landing.op.name)
    assert landing_run.metadata["records"].value == 0
    assert lake.read("landing", "things").num_rows == 5

    result = materialize(
        [build_raw_assets(contract)], instance=instance, resources=resources("first"), partition_key="2026-01-01-03:00"
    )
    assert result.success
    raw = lake.read("raw", "things").to_pylist()
    assert sorted((r["_op"], r["id"], r["v"]) for r in raw) == [
        ("create", "a", 1),
        ("create", "b", 1),
        ("delete", "b", 2),
        ("update", "a", 2),
    ]
    [quarantined] = lake.read("quarantine", "things").to_pylist()
    assert quarantined["value"] == b"{not json" and quarantined["reason"]
    metadata = {m.asset_key: m.metadata for m in result.asset_materializations_for_node("raw_things")}
    assert metadata[AssetKey(["raw", "things"])]["records_in"].value == 5

    layers = ("current", "current_tombstones")
    for layer in layers:
        lake.create_if_missing(layer, "things", current_schema(contract))
    with sail_session() as spark:
        for _ in range(2):  # a re-applied hour changes nothing
            changes = changes_between(spark, lake.uri("raw", "things"), HOUR, HOUR + timedelta(hours=1))
            merge_into_current(spark, changes, *(lake.uri(layer, "things") for layer in layers), merge_spec(contract))
    current = {r["id"]: (r["colour"], r["v"]) for r in lake.read("current", "things").to_pylist()}
    assert current == {"a": ("green", 2)}
    tombstones = {r["id"]: r["v"] for r in lake.read("current_tombstones", "things").to_pylist()}
    assert tombstones == {"b": 2}
