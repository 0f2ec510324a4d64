"""Storage options come from the environment's settings, never its credentials."""

from __future__ import annotations

import json

import pytest
from emulators import SECRET, s3_environment

from resources.lake import LakeResource, storage_options_from_env

pytestmark = pytest.mark.unit


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
