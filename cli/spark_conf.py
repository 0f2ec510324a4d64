"""The Spark Connect server settings for a lake root: the one source of the chart's `sparkConnect.conf`.

    python -m cli spark-conf --lake-root abfss://lake@acct.dfs.core.windows.net/cdp --auth workload-identity

prints the `sparkConnect.conf` block of a Helm values file (deploy/values/*.yaml record the command that
made theirs, and a test holds them equal). Hadoop's filesystems (hadoop-aws, hadoop-azure) read
`spark.hadoop.*` when the server starts, so these belong in spark-defaults.conf, not in a session.
Secrets appear only as `${env.NAME}`, which Hadoop expands from the environment of the driver and of
each executor: the same Kubernetes Secret (or workload identity) must reach both. Embedded Sail and
delta-rs ignore these keys: they read the same `AWS_*` / `AZURE_*` environment variables themselves.
"""

from __future__ import annotations

import argparse
from urllib.parse import urlsplit

import yaml

from resources.lake import AZURE_SCHEMES, S3_SCHEMES, scheme

S3_AUTH = ("keys", "irsa")
AZURE_AUTH = ("account-key", "workload-identity", "service-principal", "managed-identity")


def spark_conf_for_root(root: str, auth: str, region: str | None = None, endpoint: str | None = None) -> dict[str, str]:
    """Settings a JVM Spark Connect server (hadoop-aws / hadoop-azure, delta-spark) needs to use `root`.

    `auth` is how the server authenticates: for S3 `keys` (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from
    the environment, S3A's default chain) or `irsa`; for ADLS `account-key`, `workload-identity` (AKS),
    `service-principal` or `managed-identity`. A local root needs nothing.
    """
    kind = scheme(root)
    if kind == "file":
        return {}
    if kind in S3_SCHEMES:
        _check(auth, S3_AUTH, root)
        return _s3a_conf(auth, region, endpoint)
    if kind in ("abfss", "abfs"):
        parts = urlsplit(root)
        if not parts.hostname or not parts.username:
            raise ValueError(f"expected abfss://<container>@<account>.dfs.core.windows.net/<path>, not {root}")
        _check(auth, AZURE_AUTH, root)
        return _abfs_conf(parts.hostname, auth)
    if kind in AZURE_SCHEMES:
        raise ValueError(
            f"Spark (hadoop-azure) cannot open `{kind}://` paths, and every table URI is handed to Spark as is: "
            "set PLATFORM_LAKE_ROOT=abfss://<container>@<account>.dfs.core.windows.net/<path> for a JVM Spark "
            "server (az:// works for delta-rs and embedded Sail only)"
        )
    raise ValueError(f"unsupported lake root scheme `{kind}://` in {root}: use a local path, s3:// or abfss://")


def _check(auth: str, choices: tuple[str, ...], root: str) -> None:
    if auth not in choices:
        raise ValueError(f"--auth `{auth}` does not apply to {root}; use one of {', '.join(choices)}")


def _s3a_conf(auth: str, region: str | None, endpoint: str | None) -> dict[str, str]:
    prefix = "spark.hadoop.fs.s3a."
    conf = {
        # s3:// table URIs go to S3A (Hadoop has no other s3 filesystem).
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.AbstractFileSystem.s3.impl": "org.apache.hadoop.fs.s3a.S3A",
        # Default: the region of the server's environment, as delta-rs reads it.
        prefix + "endpoint.region": region or "${env.AWS_REGION}",
    }
    if endpoint:  # an S3-compatible store (MinIO, ...) addressed by path
        conf[prefix + "endpoint"] = endpoint
        conf[prefix + "path.style.access"] = "true"
        if endpoint.startswith("http://"):
            conf[prefix + "connection.ssl.enabled"] = "false"
    if auth == "irsa":  # a projected web identity token (EKS): S3A's default chain does not read it
        conf[prefix + "aws.credentials.provider"] = (
            "software.amazon.awssdk.auth.credentials.WebIdentityTokenFileCredentialsProvider"
        )
    # Commits: Delta Spark's default S3 log store is safe for one driver only and does not use S3 conditional
    # writes, so it does not coordinate with delta-rs; keep one writer per table at a time (Dagster pools).
    return conf


def _abfs_conf(host: str, auth: str) -> dict[str, str]:
    """ABFS settings scoped to one account (`<account>.dfs.core.windows.net`)."""
    account = f"spark.hadoop.fs.azure.account.{{}}.{host}"
    oauth = f"spark.hadoop.fs.azure.account.oauth2.{{}}.{host}"
    if auth == "account-key":
        return {account.format("auth.type"): "SharedKey", account.format("key"): "${env.AZURE_STORAGE_ACCOUNT_KEY}"}
    conf = {account.format("auth.type"): "OAuth"}
    if auth == "workload-identity":  # the AKS webhook injects these variables
        conf[account.format("oauth.provider.type")] = (
            "org.apache.hadoop.fs.azurebfs.oauth2.WorkloadIdentityTokenProvider"
        )
        conf[oauth.format("msi.tenant")] = "${env.AZURE_TENANT_ID}"
        conf[oauth.format("client.id")] = "${env.AZURE_CLIENT_ID}"
        conf[oauth.format("token.file")] = "${env.AZURE_FEDERATED_TOKEN_FILE}"
    elif auth == "service-principal":
        conf[account.format("oauth.provider.type")] = "org.apache.hadoop.fs.azurebfs.oauth2.ClientCredsTokenProvider"
        conf[oauth.format("client.endpoint")] = "https://login.microsoftonline.com/${env.AZURE_TENANT_ID}/oauth2/token"
        conf[oauth.format("client.id")] = "${env.AZURE_CLIENT_ID}"
        conf[oauth.format("client.secret")] = "${env.AZURE_CLIENT_SECRET}"
    else:  # the managed identity of the node (or the one named by AZURE_CLIENT_ID)
        conf[account.format("oauth.provider.type")] = "org.apache.hadoop.fs.azurebfs.oauth2.MsiTokenProvider"
        conf[oauth.format("client.id")] = "${env.AZURE_CLIENT_ID}"
    return conf


def values_block(conf: dict[str, str]) -> str:
    """The conf as the `sparkConnect.conf` block of a Helm values file."""
    return yaml.safe_dump({"sparkConnect": {"conf": conf}}, sort_keys=True, default_flow_style=False, width=200)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lake-root", required=True, help="PLATFORM_LAKE_ROOT of the deployment")
    parser.add_argument("--auth", required=True, choices=[*S3_AUTH, *AZURE_AUTH], help="how Spark authenticates")
    parser.add_argument("--region", help="S3: the bucket's region (default: AWS_REGION of the server)")
    parser.add_argument("--endpoint", help="S3: an S3-compatible endpoint URL")


def run(args: argparse.Namespace) -> None:
    print(values_block(spark_conf_for_root(args.lake_root, args.auth, args.region, args.endpoint)), end="")
