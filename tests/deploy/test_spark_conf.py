"""The Spark Connect server settings for a lake root come from one function (`python -m cli spark-conf`),
and the deployment values files hold exactly what it gives."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli.spark_conf import spark_conf_for_root

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAMES = ("AZURE_STORAGE_ACCOUNT_KEY", "AZURE_CLIENT_SECRET", "AWS_SECRET_ACCESS_KEY")


def test_secrets_appear_only_as_environment_references():
    s3 = spark_conf_for_root("s3://bucket/lake", "keys", endpoint="http://minio:9000")
    assert s3["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert s3["spark.hadoop.fs.s3a.endpoint"] == "http://minio:9000"
    assert s3["spark.hadoop.fs.s3a.endpoint.region"] == "${env.AWS_REGION}"
    assert s3["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert s3["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert (
        spark_conf_for_root("s3://bucket/lake", "keys", region="eu-west-1")["spark.hadoop.fs.s3a.endpoint.region"]
        == "eu-west-1"
    )
    irsa = spark_conf_for_root("s3://bucket/lake", "irsa")
    assert irsa["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith("WebIdentityTokenFileCredentialsProvider")

    root = "abfss://lake@acct.dfs.core.windows.net/cdp"
    host = "acct.dfs.core.windows.net"
    assert spark_conf_for_root(root, "account-key") == {
        f"spark.hadoop.fs.azure.account.auth.type.{host}": "SharedKey",
        f"spark.hadoop.fs.azure.account.key.{host}": "${env.AZURE_STORAGE_ACCOUNT_KEY}",
    }
    workload = spark_conf_for_root(root, "workload-identity")
    assert workload[f"spark.hadoop.fs.azure.account.auth.type.{host}"] == "OAuth"
    assert workload[f"spark.hadoop.fs.azure.account.oauth.provider.type.{host}"].endswith(
        "WorkloadIdentityTokenProvider"
    )
    assert workload[f"spark.hadoop.fs.azure.account.oauth2.token.file.{host}"] == "${env.AZURE_FEDERATED_TOKEN_FILE}"
    principal = spark_conf_for_root(root, "service-principal")
    assert principal[f"spark.hadoop.fs.azure.account.oauth2.client.secret.{host}"] == "${env.AZURE_CLIENT_SECRET}"
    managed = spark_conf_for_root(root, "managed-identity")
    assert managed[f"spark.hadoop.fs.azure.account.oauth.provider.type.{host}"].endswith("MsiTokenProvider")
    rendered = json.dumps([s3, irsa, workload, principal, managed, spark_conf_for_root(root, "account-key")])
    for name in SECRET_NAMES:  # only ever `${env.NAME}`, never a value
        assert re.findall(rf"[^{{.]{name}", rendered) == []

    assert spark_conf_for_root("/data/lake", "keys") == {}
    with pytest.raises(ValueError, match="abfss://"):
        spark_conf_for_root("az://lake/cdp", "account-key")
    with pytest.raises(ValueError, match="does not apply"):
        spark_conf_for_root(root, "irsa")


@pytest.mark.parametrize("values_file", sorted((ROOT / "deploy" / "values").glob("*.yaml")), ids=lambda p: p.name)
def test_values_files_hold_what_the_command_gives(values_file: Path):
    text = values_file.read_text()
    [command] = re.findall(r"# Generated, do not edit: python -m cli spark-conf (.+)", text)
    values = yaml.safe_load(text)
    arguments = command.replace("<platform.lakeRoot>", values["platform"]["lakeRoot"]).split()
    printed = subprocess.run(
        [sys.executable, "-m", "cli", "spark-conf", *arguments], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert yaml.safe_load(printed)["sparkConnect"]["conf"] == values["sparkConnect"]["conf"]
