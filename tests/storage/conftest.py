"""Fixtures of the storage tests: the emulators, and a lake on a fresh path of one of them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from emulators import (
    AZURITE,
    BUCKET,
    CONTAINER,
    EMULATOR_ACCOUNT,
    EMULATOR_KEY,
    MOTO,
    azurite_environment,
    emulator,
    free_port,
    s3_environment,
)

from resources.lake import LakeResource


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
