"""The images agree with the locked Python environment: the Spark Connect server is not older than the
pinned client, its Delta jars are built for its Spark, every deployment tags the image it builds, and
the code image holds the dbt adapter of the profile that production runs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SPARK_DOCKERFILE = ROOT / "helm" / "spark-connect" / "Dockerfile"
VALUES_FILES = [
    ROOT / "helm" / "change-data-platform" / "values.yaml",
    *sorted((ROOT / "deploy" / "values").glob("*.yaml")),
]

# The Spark version that Delta's `delta-spark_<scala>` artifact (no Spark version in its name, the one the
# image fetches) is built for, by Delta minor version: from the Delta release notes ("backward-compatibility
# artifacts ... default to Spark X"). A new Delta release is added here after reading its notes.
DELTA_DEFAULT_SPARK = {"4.0": "4.0", "4.1": "4.1", "4.2": "4.1", "4.3": "4.1", "4.4": "4.2"}


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def minor(text: str) -> str:
    return ".".join(text.split(".")[:2])


def dockerfile_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", SPARK_DOCKERFILE.read_text(), flags=re.MULTILINE))


def locked_version(package: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    [locked] = [p["version"] for p in lock["package"] if p["name"] == package]
    return locked


def spark_image_version() -> str:
    image = dockerfile_args()["SPARK_IMAGE"]
    match = re.fullmatch(r"apache/spark:(\d+\.\d+\.\d+)(-.*)?", image)
    assert match, f"{SPARK_DOCKERFILE}: ARG SPARK_IMAGE={image} is not apache/spark:<x.y.z>[-variant]"
    return match.group(1)


def test_the_spark_connect_server_is_not_older_than_the_pinned_client():
    server, client = spark_image_version(), locked_version("pyspark-client")
    assert version(server) >= version(client), (
        f"{SPARK_DOCKERFILE} builds Spark {server}, older than pyspark-client {client} in uv.lock: raise "
        "ARG SPARK_IMAGE (and DELTA_VERSION, HADOOP_VERSION with it) or lower the client pin"
    )


def test_the_delta_jars_are_built_for_the_images_spark():
    delta, spark = dockerfile_args()["DELTA_VERSION"], spark_image_version()
    assert minor(delta) in DELTA_DEFAULT_SPARK, (
        f"{SPARK_DOCKERFILE}: Delta {delta} is not in DELTA_DEFAULT_SPARK; add the Spark version its release notes "
        "give for the delta-spark artifact without a Spark version in its name"
    )
    assert DELTA_DEFAULT_SPARK[minor(delta)] == minor(spark), (
        f"{SPARK_DOCKERFILE}: delta-spark {delta} is built for Spark {DELTA_DEFAULT_SPARK[minor(delta)]}, the image "
        f"runs Spark {spark}; pick the Delta release for Spark {minor(spark)}"
    )


@pytest.mark.parametrize("values_file", VALUES_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_deployment_runs_the_image_the_dockerfile_builds(values_file: Path):
    args = dockerfile_args()
    tag = (yaml.safe_load(values_file.read_text()).get("sparkConnect") or {}).get("image", {}).get("tag")
    if tag is not None:
        assert tag == f"{spark_image_version()}-delta{args['DELTA_VERSION']}", (
            f"{values_file}: sparkConnect.image.tag {tag} is not the image {SPARK_DOCKERFILE} builds"
        )


def test_the_code_image_holds_the_dbt_adapter_of_every_profile_target():
    """The image installs the project's dependencies without the dev group (`uv sync --frozen --no-dev`)."""
    assert "uv sync --frozen --no-dev" in (ROOT / "Dockerfile").read_text()
    runtime = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = {re.split(r"[=<>~!; \[]", requirement, maxsplit=1)[0] for requirement in runtime}
    profiles = yaml.safe_load((ROOT / "dbt" / "profiles.yml").read_text())
    adapters = {f"dbt-{output['type']}" for output in profiles["platform_marts"]["outputs"].values()}
    assert adapters == {"dbt-sail"}
    assert adapters <= pinned, f"pyproject.toml [project] dependencies lack {adapters - pinned}"
    for adapter in adapters:
        assert locked_version(adapter)
