"""The Helm chart, the images and the production Dagster config, checked offline.

The chart is rendered and linted with the Helm SDK embedded in `helm-python-sdk` (no helm binary,
no network) and every rendered manifest is validated against the Kubernetes 1.30 OpenAPI schemas
shipped with `kubernetes-validate`. The official Dagster chart is a declared dependency that
cannot be downloaded here, so renders disable it (`dagster.enabled=false`) and its values are
checked as data. Then the invariants: no secret values anywhere, requests and limits on every
container, non-root containers, pinned images, the Spark driver's RBAC.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "change-data-platform"
DEPLOY = ROOT / "deploy"
EXAMPLE_VALUES = sorted((DEPLOY / "values").glob("*.yaml"))
K8S_VERSION = "1.30.0"
RELEASE, NAMESPACE = "cdp", "data"
OFFLINE = {"dagster": {"enabled": False}}
POD_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge like Helm merges -f files and --set: mappings merge, everything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def user_values(values_file: Path | None = None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    values = load_yaml(values_file) if values_file else {}
    return merge(merge(values, OFFLINE), overrides or {})


def render(values_file: Path | None = None, overrides: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Render the chart like `helm template` and return every manifest as a dict."""
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(user_values(values_file, overrides), name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [
        document
        for path, text in sorted(rendered.items())
        if path.endswith((".yaml", ".yml"))
        for document in yaml.safe_load_all(text)
        if document
    ]


def chart_values(values_file: Path | None = None) -> dict[str, Any]:
    """The values an install would use (chart defaults coalesced with the file)."""
    with helm.Chart.load(CHART) as chart:
        return chart.merge_values(load_yaml(values_file) if values_file else {})


def find(manifests: list[dict[str, Any]], kind: str, component: str | None = None) -> list[dict[str, Any]]:
    return [
        m
        for m in manifests
        if m["kind"] == kind
        and (component is None or m["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component)
    ]


def one(manifests: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    found = find(manifests, kind, component)
    assert len(found) == 1, f"expected one {kind} ({component}), found {len(found)}"
    return found[0]


def env_of(container: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def spark_defaults(manifests: list[dict[str, Any]]) -> dict[str, str]:
    text = one(manifests, "ConfigMap", "spark-connect")["data"]["spark-defaults.conf"]
    return dict(line.split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))


def executor_pod_template(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return yaml.safe_load(one(manifests, "ConfigMap", "spark-connect")["data"]["executor.yaml"])


def run_pod_job(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """The Job the K8sRunLauncher would create for a run, built by dagster-k8s from the code server's
    DAGSTER_CURRENT_IMAGE and DAGSTER_CONTAINER_CONTEXT (as the launcher does, minus the API call)."""
    import kubernetes
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import construct_dagster_k8s_job

    server = one(manifests, "Deployment", "code-location")["spec"]["template"]["spec"]["containers"][0]
    env = env_of(server)
    context = K8sContainerContext.create_from_config(json.loads(env["DAGSTER_CONTAINER_CONTEXT"]["value"]))
    launcher = types.SimpleNamespace(  # what the Dagster chart configures on the K8sRunLauncher
        job_image=None,
        dagster_home="/opt/dagster/dagster_home",
        instance_config_map=f"{RELEASE}-dagster-instance",
        postgres_password_secret=chart_values()["global"]["postgresqlSecretName"],
    )
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image=env["DAGSTER_CURRENT_IMAGE"]["value"], run_launcher=launcher),
        args=["dagster", "api", "execute_run", "{}"],
        job_name="dagster-run-0123456789",
        pod_name="dagster-run-0123456789",
        component="run_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/run-id": "0123456789"},
    )
    manifest: dict[str, Any] = kubernetes.client.ApiClient().sanitize_for_serialization(job)
    manifest["metadata"]["namespace"] = context.namespace
    return manifest


def every_manifest(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rendered manifests plus the ones they embed: the executor pod template and a run's Job."""
    spark = [executor_pod_template(manifests)] if find(manifests, "ConfigMap", "spark-connect") else []
    return [*manifests, *spark, run_pod_job(manifests)]


def pod_specs(manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    kind = manifest["kind"]
    if kind == "Pod":
        return [manifest["spec"]]
    if kind == "CronJob":
        return [manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    if kind in POD_KINDS:
        return [manifest["spec"]["template"]["spec"]]
    return []


def containers(manifest: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    for spec in pod_specs(manifest):
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            yield spec, container


# --------------------------------------------------------------------------------------------------
# The invariant checkers (the tests below also prove they catch violations)
# --------------------------------------------------------------------------------------------------

SECRET_ENV_NAME = re.compile(r"KEY|PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL", re.IGNORECASE)
SECRET_WORDS = {"key", "password", "passwd", "pwd", "secret", "token", "credential", "credentials"}
ENV_REFERENCE = re.compile(r"^\$\{env[.:][A-Za-z_][A-Za-z0-9_]*\}$")


REFERENCE_WORDS = {"name", "ref", "file", "path", "dir"}


def words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def names_a_secret(key: str) -> bool:
    """A setting that holds a secret itself, not one that names where it is: `accountKey`,
    `postgresqlPassword`, `fs.azure.account.key.<account>` but not `secretName`, `tokenFile` or the
    `key` of a secretKeyRef."""
    parts = words(key)
    return bool(parts) and bool(set(parts) & SECRET_WORDS) and key.lower() != "key" and parts[-1] not in REFERENCE_WORDS


def is_literal(value: Any) -> bool:
    """A value that would carry a secret: a non-empty string that is not an ${env.NAME} reference."""
    return isinstance(value, str) and value.strip() != "" and not ENV_REFERENCE.match(value.strip())


def secret_values_in_values(values: Any, path: str = "") -> list[str]:
    """Keys of a values file that hold a literal secret (${env.NAME} references are fine)."""
    found = []
    if isinstance(values, Mapping):
        for key, value in values.items():
            here = f"{path}.{key}" if path else str(key)
            if names_a_secret(str(key)) and is_literal(value):
                found.append(here)
            found.extend(secret_values_in_values(value, here))
    elif isinstance(values, list):
        for index, item in enumerate(values):
            found.extend(secret_values_in_values(item, f"{path}[{index}]"))
    return found


def _embedded(value: str) -> Any:
    """Structured documents carried in strings: the container context JSON, pod templates."""
    text = value.strip()
    try:
        if text.startswith("{"):
            return json.loads(text)
        if text.startswith(("apiVersion:", "#")):
            return list(yaml.safe_load_all(text))
    except (ValueError, yaml.YAMLError):
        return None
    return None


def _literal_secret_env(node: Any, where: str) -> list[str]:
    found = []
    if isinstance(node, Mapping):
        name, value = node.get("name"), node.get("value")
        if isinstance(name, str) and SECRET_ENV_NAME.search(name) and is_literal(value):
            found.append(f"{where}: env {name} has a literal value; use valueFrom.secretKeyRef")
        for child in node.values():
            found.extend(_literal_secret_env(child, where))
    elif isinstance(node, list):
        for child in node:
            found.extend(_literal_secret_env(child, where))
    elif isinstance(node, str):
        embedded = _embedded(node)
        if embedded is not None:
            found.extend(_literal_secret_env(embedded, where))
    return found


def secret_values_in_manifests(manifests: list[dict[str, Any]]) -> list[str]:
    """Every place a rendered manifest would carry a secret value instead of a reference."""
    found = []
    for manifest in manifests:
        where = f"{manifest['kind']}/{manifest.get('metadata', {}).get('name')}"
        if manifest["kind"] == "Secret" and (manifest.get("data") or manifest.get("stringData")):
            found.append(f"{where}: a Secret with data; reference an existing Secret instead")
        if manifest["kind"] == "ConfigMap":
            for key, value in (manifest.get("data") or {}).items():
                if SECRET_ENV_NAME.search(key) and is_literal(value):
                    found.append(f"{where}: ConfigMap key {key} holds a secret")
                if key.endswith(".conf"):  # Java properties: `key value`
                    for line in str(value).splitlines():
                        parts = line.split(None, 1)
                        if len(parts) == 2 and names_a_secret(parts[0]) and is_literal(parts[1]):
                            found.append(f"{where}: {key} sets {parts[0]} to a literal")
        found.extend(_literal_secret_env(manifest, where))
    return found


def resource_violations(manifests: list[dict[str, Any]]) -> list[str]:
    found = []
    for manifest in manifests:
        for _, container in containers(manifest):
            resources = container.get("resources") or {}
            for section in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(resources.get(section) or {})
                if missing:
                    found.append(f"{manifest['kind']}/{container['name']}: no {section} for {sorted(missing)}")
    return found


def root_violations(manifests: list[dict[str, Any]]) -> list[str]:
    found = []
    for manifest in manifests:
        for spec, container in containers(manifest):
            pod, own = spec.get("securityContext") or {}, container.get("securityContext") or {}
            where = f"{manifest['kind']}/{container['name']}"
            if not (own.get("runAsNonRoot") or pod.get("runAsNonRoot")):
                found.append(f"{where}: runAsNonRoot is not set")
            if own.get("runAsUser", pod.get("runAsUser")) == 0:
                found.append(f"{where}: runs as uid 0")
            if own.get("allowPrivilegeEscalation") is not False:
                found.append(f"{where}: allowPrivilegeEscalation is not false")
            if own.get("privileged"):
                found.append(f"{where}: privileged")
    return found


def is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag.strip() != "" and tag.lower() != "latest"


def unpinned_images(manifests: list[dict[str, Any]]) -> list[str]:
    found = [
        f"{m['kind']}/{c['name']}: {c.get('image')!r}"
        for m in manifests
        for _, c in containers(m)
        if not is_pinned(str(c.get("image", "")))
    ]
    for manifest in find(manifests, "ConfigMap", "spark-connect"):
        image = spark_defaults([manifest]).get("spark.kubernetes.container.image", "")
        if not is_pinned(image):
            found.append(f"spark.kubernetes.container.image: {image!r}")
    return found


def unpinned_images_in_values(values: Any, path: str = "") -> list[str]:
    """Every `image: {repository, tag}` in a values tree (ours and the Dagster chart's) is pinned."""
    found = []
    if isinstance(values, Mapping):
        if "repository" in values and path.endswith("image"):
            tag = str(values.get("tag") or "")
            if not tag or tag.lower() == "latest":
                found.append(f"{path}: tag {tag!r}")
        for key, value in values.items():
            found.extend(unpinned_images_in_values(value, f"{path}.{key}" if path else str(key)))
    elif isinstance(values, list):
        for index, item in enumerate(values):
            found.extend(unpinned_images_in_values(item, f"{path}[{index}]"))
    return found


# --------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------

VALUE_SETS = {
    "defaults": (None, {}),
    **{f"example-{path.stem}": (path, {}) for path in EXAMPLE_VALUES},
    "external-spark": (None, {"sparkConnect": {"enabled": False}, "platform": {"sparkRemote": "sc://spark:15002"}}),
    "options": (
        None,
        {
            "imagePullSecrets": [{"name": "registry-pull"}],
            "codeLocation": {
                "extraEnv": [
                    {
                        "name": "KAFKA_SASL_PASSWORD",
                        "valueFrom": {"secretKeyRef": {"name": "kafka-credentials", "key": "password"}},
                    }
                ],
            },
            "secrets": {"lakeCredentials": {"name": ""}},
            "sparkConnect": {"executor": {"dynamicAllocation": {"enabled": False}}},
        },
    ),
}


@pytest.fixture(scope="module", params=sorted(VALUE_SETS), ids=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    values_file, overrides = VALUE_SETS[request.param]
    return every_manifest(render(values_file, overrides))


@pytest.fixture(scope="module")
def default_manifests() -> list[dict[str, Any]]:
    return render()


# --------------------------------------------------------------------------------------------------
# The chart: dependency, lint, schema validation
# --------------------------------------------------------------------------------------------------


def test_official_dagster_chart_is_a_pinned_conditional_dependency_not_vendored() -> None:
    with helm.Chart.load(CHART) as chart:
        dependencies = chart.metadata["dependencies"]
    assert dependencies == [
        {
            "name": "dagster",
            "version": "1.13.27",
            "repository": "https://dagster-io.github.io/helm",
            "condition": "dagster.enabled",
        }
    ]
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"dagster=={dependencies[0]['version']}" in pins, "the chart version must equal the dagster pin"
    # Declared, downloaded by `helm dependency update`, never copied into the repository.
    assert not (CHART / "charts" / "dagster").exists()
    assert [d["name"] for d in helm.dependency_list(CHART)] == ["dagster"]
    assert chart_values()["dagster"]["enabled"] is True


@pytest.mark.parametrize("values_file", [None, *EXAMPLE_VALUES], ids=["defaults", *[p.stem for p in EXAMPLE_VALUES]])
def test_chart_lints_clean_offline(values_file: Path | None) -> None:
    report = helm.lint(
        CHART,
        user_values(values_file),
        strict=True,
        namespace=NAMESPACE,
        kube_version=f"v{K8S_VERSION}",
    )
    assert report["total_charts_linted"] == 1
    # (Lint mode does not enforce `required`/`fail`; the render tests below do.)
    # The only finding allowed: the Dagster dependency is not downloaded (no network here).
    problems = [
        m
        for m in report["messages"]
        if m["severity"] >= 2 and m["error"] != "chart directory is missing these dependencies: dagster"
    ]
    assert problems == [], problems


def test_every_manifest_is_valid_kubernetes(rendered: list[dict[str, Any]]) -> None:
    kinds = set()
    for manifest in rendered:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
        kinds.add(manifest["kind"])
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount", "Job"} <= kinds


def test_kubernetes_validation_rejects_a_broken_manifest(default_manifests: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(one(default_manifests, "Deployment", "code-location"))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "grpc"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


# --------------------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------------------


def test_no_secret_values_in_any_values_file() -> None:
    files = [CHART / "values.yaml", *EXAMPLE_VALUES]
    assert len(files) >= 3
    for path in files:
        assert secret_values_in_values(load_yaml(path)) == [], path
    # The Dagster chart's default literal password is blanked, and its Secret is never generated.
    values = chart_values()["dagster"]
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["postgresql"]["postgresqlPassword"] == ""
    assert chart_values()["global"]["postgresqlSecretName"]


def test_no_secret_values_in_rendered_manifests(rendered: list[dict[str, Any]]) -> None:
    assert [m for m in rendered if m["kind"] == "Secret"] == []
    assert secret_values_in_manifests(rendered) == []


def test_secrets_are_references_to_existing_secrets(default_manifests: list[dict[str, Any]]) -> None:
    run = run_pod_job(default_manifests)
    values = chart_values()
    for manifest in (one(default_manifests, "Deployment", "code-location"), run):
        container = manifest["spec"]["template"]["spec"]["containers"][0]
        env = env_of(container)
        assert env["PLATFORM_PII_KEY"]["valueFrom"]["secretKeyRef"] == {
            "name": values["secrets"]["piiKey"]["name"],
            "key": values["secrets"]["piiKey"]["key"],
        }
        assert env["DAGSTER_PG_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": values["global"]["postgresqlSecretName"],
            "key": "postgresql-password",
        }
        assert {"secretRef": {"name": values["secrets"]["lakeCredentials"]["name"]}} in container["envFrom"]
    driver = one(default_manifests, "Deployment", "spark-connect")["spec"]["template"]["spec"]["containers"][0]
    executor = executor_pod_template(default_manifests)["spec"]["containers"][0]
    for container in (driver, executor):
        assert container["envFrom"] == [{"secretRef": {"name": values["secrets"]["lakeCredentials"]["name"]}}]


def test_every_container_has_requests_and_limits(rendered: list[dict[str, Any]]) -> None:
    assert sum(1 for m in rendered for _ in containers(m)) >= 2  # code server, run (+ Spark driver, executor)
    assert resource_violations(rendered) == []


def test_every_container_runs_as_non_root(rendered: list[dict[str, Any]]) -> None:
    assert root_violations(rendered) == []


def test_every_image_is_pinned(rendered: list[dict[str, Any]]) -> None:
    assert unpinned_images(rendered) == []


def test_every_image_in_values_is_pinned_including_the_dagster_chart() -> None:
    for values_file in [None, *EXAMPLE_VALUES]:
        values = chart_values(values_file)
        assert unpinned_images_in_values(values) == [], values_file
    dagster = chart_values()["dagster"]
    for component in ("dagsterWebserver", "dagsterDaemon"):
        assert dagster[component]["image"]["tag"] == "1.13.27"
        assert set(dagster[component]["resources"]) == {"requests", "limits"}
        assert dagster[component]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("tag", ["latest", ""])
def test_chart_refuses_an_unpinned_image(tag: str) -> None:
    with pytest.raises(helm.HelmError, match=r"image\.tag"):
        render(overrides={"image": {"tag": tag}})


def test_spark_service_account_is_bound_to_its_role(default_manifests: list[dict[str, Any]]) -> None:
    driver = one(default_manifests, "Deployment", "spark-connect")["spec"]["template"]["spec"]
    account = driver["serviceAccountName"]
    assert account in {m["metadata"]["name"] for m in find(default_manifests, "ServiceAccount", "spark-connect")}
    assert driver["automountServiceAccountToken"] is True
    binding = one(default_manifests, "RoleBinding", "spark-connect")
    role = one(default_manifests, "Role", "spark-connect")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == NAMESPACE
    pods = [r for r in role["rules"] if "pods" in r["resources"]]
    assert pods and {"create", "delete", "get", "list", "watch"} <= set(pods[0]["verbs"])
    assert any("configmaps" in r["resources"] and "create" in r["verbs"] for r in role["rules"])
    # Executors run under the same account; nothing else in the chart gets API access.
    conf = spark_defaults(default_manifests)
    assert conf["spark.kubernetes.authenticate.executor.serviceAccountName"] == account
    code = one(default_manifests, "Deployment", "code-location")["spec"]["template"]["spec"]
    assert code["automountServiceAccountToken"] is False
    assert len(find(default_manifests, "RoleBinding")) == 1


# --------------------------------------------------------------------------------------------------
# The checkers catch what they are for
# --------------------------------------------------------------------------------------------------


def test_checker_catches_a_literal_secret_env_added_by_values() -> None:
    literal = render(overrides={"codeLocation": {"extraEnv": [{"name": "KAFKA_SASL_PASSWORD", "value": "hunter2"}]}})
    found = secret_values_in_manifests(every_manifest(literal))
    # On the code server and, through the container context, on every run pod.
    assert any("Deployment/" in f and "KAFKA_SASL_PASSWORD" in f for f in found), found
    assert any("Job/" in f and "KAFKA_SASL_PASSWORD" in f for f in found), found


def test_checker_catches_secrets_in_config_and_values() -> None:
    overrides = {
        "platform": {"extraEnv": {"AZURE_STORAGE_ACCOUNT_KEY": "c2VjcmV0"}},
        "sparkConnect": {"conf": {"spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net": "c2VjcmV0"}},
        "dagster": {"postgresql": {"postgresqlPassword": "hunter2"}},
    }
    found = secret_values_in_manifests(render(overrides=overrides))
    assert any("AZURE_STORAGE_ACCOUNT_KEY" in f for f in found), found
    assert any("fs.azure.account.key" in f for f in found), found
    assert sorted(secret_values_in_values(overrides)) == [
        "dagster.postgresql.postgresqlPassword",
        "platform.extraEnv.AZURE_STORAGE_ACCOUNT_KEY",
        "sparkConnect.conf.spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net",
    ]
    # A reference to the environment is not a secret value.
    reference = {"sparkConnect": {"conf": {"spark.hadoop.fs.azure.account.key.acct": "${env.AZURE_KEY}"}}}
    assert secret_values_in_manifests(render(overrides=reference)) == []
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "c2VjcmV0"}}
    assert secret_values_in_manifests([secret]) == [
        "Secret/s: a Secret with data; reference an existing Secret instead"
    ]


def test_other_checkers_catch_violations(default_manifests: list[dict[str, Any]]) -> None:
    deployment = copy.deepcopy(one(default_manifests, "Deployment", "code-location"))
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    del container["resources"]["limits"]
    container["image"] = "registry.example.com/change-data-platform:latest"
    container["securityContext"] = {}
    spec["securityContext"] = {"runAsUser": 0}
    assert resource_violations([deployment]) == ["Deployment/code-server: no limits for ['cpu', 'memory']"]
    assert unpinned_images([deployment]) == [
        "Deployment/code-server: 'registry.example.com/change-data-platform:latest'"
    ]
    assert len(root_violations([deployment])) == 3
    assert not is_pinned("registry.example.com:5000/image")
    assert is_pinned("registry.example.com:5000/image:1.2.3")
    assert unpinned_images_in_values({"a": {"image": {"repository": "r", "tag": ""}}}) == ["a.image: tag ''"]


# --------------------------------------------------------------------------------------------------
# What the chart wires together
# --------------------------------------------------------------------------------------------------


def test_code_location_serves_the_definitions_over_grpc(default_manifests: list[dict[str, Any]]) -> None:
    values = chart_values()
    deployment = one(default_manifests, "Deployment", "code-location")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert [*container["command"], *container["args"]] == (
        ["dagster", "api", "grpc", "-m", "platform_assets.definitions", "-h", "0.0.0.0", "-p", "4000"]
    )
    image = f"{values['image']['repository']}:{values['image']['tag']}"
    assert container["image"] == image
    # The one image: runs are launched with what the server reports.
    assert env_of(container)["DAGSTER_CURRENT_IMAGE"]["value"] == image
    assert run_pod_job(default_manifests)["spec"]["template"]["spec"]["containers"][0]["image"] == image
    service = one(default_manifests, "Service", "code-location")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"] == [{"name": "grpc", "port": 4000, "targetPort": "grpc", "protocol": "TCP"}]
    # The Dagster chart's workspace and deploy/workspace.yaml point at this Service.
    server = {"host": service["metadata"]["name"], "port": 4000, "name": values["codeLocation"]["name"]}
    assert values["dagster"]["dagsterWebserver"]["workspace"]["servers"] == [server]
    workspace = load_yaml(DEPLOY / "workspace.yaml")["load_from"]
    assert workspace == [{"grpc_server": {"host": server["host"], "port": 4000, "location_name": server["name"]}}]
    # The code location is rendered here, not by the Dagster chart's user deployments.
    assert values["dagster"]["dagster-user-deployments"]["enabled"] is False


def test_run_pods_get_the_platform_configuration(default_manifests: list[dict[str, Any]]) -> None:
    job = run_pod_job(default_manifests)
    container = job["spec"]["template"]["spec"]["containers"][0]
    config_map = one(default_manifests, "ConfigMap", "platform-config")["metadata"]["name"]
    assert {"configMapRef": {"name": config_map}} in container["envFrom"]
    assert container["resources"] == chart_values()["codeLocation"]["runResources"]
    assert job["metadata"]["namespace"] == NAMESPACE


def test_platform_config_map(default_manifests: list[dict[str, Any]]) -> None:
    data = one(default_manifests, "ConfigMap", "platform-config")["data"]
    assert data["PLATFORM_MODE"] == "prod"
    assert data["PLATFORM_LAKE_ROOT"].startswith("abfss://")
    assert data["KAFKA_BOOTSTRAP_SERVERS"]
    assert "SCHEMA_REGISTRY_URL" in data
    spark_service = one(default_manifests, "Service", "spark-connect")
    port = next(p["port"] for p in spark_service["spec"]["ports"] if p["name"] == "spark-connect")
    assert data["SPARK_REMOTE"] == f"sc://{spark_service['metadata']['name']}.{NAMESPACE}.svc:{port}"
    assert port == 15002
    s3 = one(render(DEPLOY / "values" / "s3.yaml"), "ConfigMap", "platform-config")["data"]
    assert s3["PLATFORM_LAKE_ROOT"].startswith("s3://")


def test_spark_connect_runs_executors_as_pods_with_delta(default_manifests: list[dict[str, Any]]) -> None:
    conf = spark_defaults(default_manifests)
    driver_pod = one(default_manifests, "Deployment", "spark-connect")["spec"]["template"]["spec"]
    driver = driver_pod["containers"][0]
    assert conf["spark.master"] == "k8s://https://kubernetes.default.svc:443"
    assert conf["spark.kubernetes.namespace"] == NAMESPACE
    assert conf["spark.kubernetes.container.image"] == driver["image"]
    assert conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == driver_pod["serviceAccountName"]
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    assert conf["spark.connect.grpc.binding.port"] == "15002"
    assert "org.apache.spark.sql.connect.service.SparkConnectServer" in driver["args"]
    # Pod memory covers the JVM heap plus the overhead Spark reserves.
    mebibytes = lambda q: int(q.removesuffix("Mi"))  # noqa: E731
    assert mebibytes(driver["resources"]["limits"]["memory"]) > int(conf["spark.driver.memory"].removesuffix("m"))
    executor = executor_pod_template(default_manifests)["spec"]["containers"][0]
    assert mebibytes(executor["resources"]["limits"]["memory"]) == int(
        conf["spark.executor.memory"].removesuffix("m")
    ) + int(conf["spark.executor.memoryOverhead"].removesuffix("m"))
    assert conf["spark.kubernetes.executor.podTemplateContainerName"] == executor["name"]


# --------------------------------------------------------------------------------------------------
# deploy/dagster.yaml and the images
# --------------------------------------------------------------------------------------------------


def test_production_instance_config_is_valid_and_agrees_with_the_chart() -> None:
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_k8s import K8sRunLauncher

    config, _ = dagster_instance_config(str(DEPLOY), "dagster.yaml")
    assert "postgres" in config["storage"]
    database = load_yaml(DEPLOY / "dagster.yaml")["storage"]["postgres"]["postgres_db"]
    for field in ("hostname", "port", "db_name", "username", "password"):
        assert set(database[field]) == {"env"}, f"{field} must come from the environment"
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert validate_config(K8sRunLauncher.config_type(), config["run_launcher"]["config"]).success
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert validate_config(QueuedRunCoordinator.config_type(), config["run_coordinator"]["config"]).success
    assert config["run_monitoring"]["enabled"] and config["run_retries"]["enabled"]

    dagster = chart_values()["dagster"]
    chart_concurrency = dagster["concurrency"]
    assert chart_concurrency["enabled"] is True
    assert config["concurrency"]["pools"] == {
        "default_limit": chart_concurrency["pools"]["defaultLimit"],
        "granularity": chart_concurrency["pools"]["granularity"],
    }
    assert config["concurrency"]["runs"] == {
        "max_concurrent_runs": chart_concurrency["runs"]["maxConcurrentRuns"],
        "tag_concurrency_limits": chart_concurrency["runs"]["tagConcurrencyLimits"],
    }
    daemon = dagster["dagsterDaemon"]
    # The chart's queued type cannot requeue runs whose code server was unreachable: the same class
    # is declared as a custom coordinator, with exactly the production config.
    assert daemon["runCoordinator"]["type"] == "CustomRunCoordinator"
    assert daemon["runCoordinator"]["config"]["customRunCoordinator"] == config["run_coordinator"]
    assert config["run_coordinator"]["config"]["max_user_code_failure_retries"] > 0
    assert config["run_retries"]["max_retries"] == daemon["runRetries"]["maxRetries"]
    # Launch failures are retried, data failures (a failed step or blocking check) are not.
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False
    assert daemon["runRetries"]["retryOnAssetOrOpFailure"] is False
    assert config["run_monitoring"]["start_timeout_seconds"] == daemon["runMonitoring"]["startTimeoutSeconds"]
    assert dagster["runLauncher"]["type"] == "K8sRunLauncher"


COMPUTE_LOGS_DIRECTORY = "dagster-compute-logs"


def snake_case(config: Mapping[str, Any]) -> dict[str, Any]:
    """The Dagster chart's camelCase manager config as the instance's snake_case config."""
    return {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): value for key, value in config.items()}


@pytest.mark.parametrize("values_file", EXAMPLE_VALUES, ids=[p.stem for p in EXAMPLE_VALUES])
def test_compute_logs_are_kept_on_the_lakes_store(values_file: Path) -> None:
    from urllib.parse import urlparse

    from dagster._config import validate_config
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

    values = chart_values(values_file)
    lake = urlparse(values["platform"]["lakeRoot"])
    manager = values["dagster"]["computeLogManager"]
    prefix = f"{lake.path.strip('/')}/{COMPUTE_LOGS_DIRECTORY}"
    if lake.scheme == "s3":
        assert manager["type"] == "S3ComputeLogManager"
        config = manager["config"]["s3ComputeLogManager"]
        assert (config["bucket"], config["prefix"]) == (lake.netloc, prefix)
        assert validate_config(S3ComputeLogManager.config_type(), snake_case(config)).success
        # The webserver reads the logs with the lake's credentials, as the runs write them.
        lake_secret = values["secrets"]["lakeCredentials"]["name"]
        assert {"name": lake_secret} in values["dagster"]["dagsterWebserver"]["envSecrets"]
    else:
        assert lake.scheme == "abfss", lake
        assert manager["type"] == "AzureBlobComputeLogManager"
        config = manager["config"]["azureBlobComputeLogManager"]
        container, host = lake.netloc.split("@")
        assert (config["storageAccount"], config["container"], config["prefix"]) == (
            host.split(".")[0],
            container,
            prefix,
        )
        # Workload identity, as for the tables: no key or client secret in the instance.
        assert config["defaultAzureCredential"] == {} and "secretKey" not in config


def test_production_instance_keeps_compute_logs_on_the_lake_like_the_aks_values() -> None:
    compute_logs = load_yaml(DEPLOY / "dagster.yaml")["compute_logs"]
    assert (compute_logs["module"], compute_logs["class"]) == (
        "dagster_azure.blob.compute_log_manager",
        "AzureBlobComputeLogManager",
    )
    config = compute_logs["config"]
    for field in ("storage_account", "container", "prefix"):
        assert set(config[field]) == {"env"}, f"{field} must come from the environment"
    chart = chart_values(DEPLOY / "values" / "aks-adls.yaml")["dagster"]["computeLogManager"]
    assert chart["type"] == compute_logs["class"]
    chart_config = snake_case(chart["config"]["azureBlobComputeLogManager"])
    assert config["default_azure_credential"] == chart_config["default_azure_credential"] == {}
    assert config["upload_interval"] == chart_config["upload_interval"]


def test_dev_instance_retries_launch_failures_not_data_failures(tmp_path: Path) -> None:
    """`make dev` runs with the production retry policies, so what a developer sees is what runs, two
    runs at a time."""
    from dagster import DagsterInstance

    (tmp_path / "dagster.yaml").write_text((ROOT / "devstack" / "dagster.yaml").read_text())
    production = load_yaml(DEPLOY / "dagster.yaml")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None
        coordinator = production["run_coordinator"]["config"]
        assert queue.max_user_code_failure_retries == coordinator["max_user_code_failure_retries"]
        assert queue.user_code_failure_retry_delay == coordinator["user_code_failure_retry_delay"]
        assert instance.run_retries_enabled
        assert instance.run_retries_max_retries == production["run_retries"]["max_retries"]
        assert instance.run_retries_retry_on_asset_or_op_failure is False
        assert queue.max_concurrent_runs == 2  # paced for a 2-core machine


def test_workspace_is_valid() -> None:
    from dagster._core.workspace.config_schema import ensure_workspace_config

    workspace = load_yaml(DEPLOY / "workspace.yaml")
    assert ensure_workspace_config(workspace, str(DEPLOY / "workspace.yaml")) == workspace


def test_code_location_dockerfile() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", dockerfile, re.M)
    assert "uv sync --frozen --no-dev" in dockerfile
    for directory in ("platform_assets", "cli", "resources", "spark", "dbt", "contracts", "simulator", "devstack"):
        assert f"COPY {directory}/ {directory}/" in dockerfile
    assert "COPY pyproject.toml uv.lock ./" in dockerfile and "COPY workspace.yaml ./" in dockerfile
    assert re.search(r"dagster-dbt project prepare-and-package --file platform_assets/marts.py", dockerfile)
    user = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert user and user[-1].split(":")[0] not in {"0", "root"}
    cmd = json.loads(re.findall(r"^CMD (.+)$", dockerfile, re.M)[-1])
    assert cmd == ["dagster", "api", "grpc", "-m", "platform_assets.definitions", "-h", "0.0.0.0", "-p", "4000"]
    assert user[-1].split(":")[0] == str(chart_values()["codeLocation"]["securityContext"]["runAsUser"])


def test_spark_connect_dockerfile() -> None:
    dockerfile = (ROOT / "helm" / "spark-connect" / "Dockerfile").read_text()
    # Which version: tests/deploy/test_image_versions.py (not older than the pinned client, Delta built for it).
    assert re.search(r"^ARG SPARK_IMAGE=apache/spark:\d+\.\d+\.\d+$", dockerfile, re.M)
    assert "delta-spark_${SCALA_BINARY_VERSION}" in dockerfile and "delta-storage" in dockerfile
    assert re.findall(r"^USER (\S+)$", dockerfile, re.M)[-1] == "185"
    assert str(chart_values()["sparkConnect"]["securityContext"]["runAsUser"]) == "185"
