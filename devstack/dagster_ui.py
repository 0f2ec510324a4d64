"""The Dagster UI's GraphQL API, called as the UI's own buttons call it: by `make soak` and the browser
tests, which must launch runs the way an engineer does (through the UI's server), not in-process."""

from __future__ import annotations

from typing import Any

import requests

LOCATION = "platform_assets.definitions"
LAUNCH_RUN = (
    "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename"
    " ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"
)


def graphql(ui_url: str, query: str, variables: dict[str, Any] | None = None, timeout_s: float = 60) -> dict[str, Any]:
    response = requests.post(
        f"{ui_url}/graphql", json={"query": query, "variables": variables or {}}, timeout=timeout_s
    )
    if response.status_code >= 400:  # the server's own words: a bare status left a 500 unexplained
        raise RuntimeError(f"{ui_url}/graphql answered HTTP {response.status_code}: {response.text[:2000]}")
    payload = response.json()
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL: {payload['errors']}")
    return payload["data"]


def launch_run(
    ui_url: str, job: str, asset_keys: list[list[str]] | None = None, tags: dict[str, str] | None = None
) -> str:
    """Launch `job` (for assets, `__ASSET_JOB` with `asset_keys`) as the Materialize button does; its run id."""
    selector: dict[str, Any] = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "jobName": job}
    if asset_keys:
        selector["assetSelection"] = [{"path": key} for key in asset_keys]
    params: dict[str, Any] = {"selector": selector}
    if tags:
        params["executionMetadata"] = {"tags": [{"key": key, "value": value} for key, value in tags.items()]}
    launched = graphql(ui_url, LAUNCH_RUN, {"p": params})["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"{job} was not launched: {launched}")
    return launched["run"]["runId"]
