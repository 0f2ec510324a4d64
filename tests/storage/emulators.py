"""The object-store emulators of the storage tests (a local moto S3 server and Azurite's Blob service),
and the environment a production process would have for each.

The emulators are started by the fixtures in conftest.py and must start: a missing Azurite
(`npm ci --prefix .ci`) or moto is a failure, not a skip.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AZURITE = REPO / ".ci" / "node_modules" / ".bin" / "azurite-blob"
MOTO = Path(sys.executable).with_name("moto_server")
BUCKET = CONTAINER = "lake"
# Azurite's account and key: public, the same in every installation (documented by Microsoft).
EMULATOR_ACCOUNT = "devstoreaccount1"
EMULATOR_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SECRET = "s3cr3t-value-that-must-not-leak"
STORES = ["s3", "azure-abfss", "azure-az"]


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
