"""The Dagster UI in a real browser: the asset graph, a partition materialized from an asset page, a
backfill of a partition range from the catalog, and a failed blocking check shown as failed; and the
same range backfill through the two other doors people use, GraphQL and the `dagster` CLI.

The browser tests launch every run by clicking in the UI, executed by the `dagster dev` daemon; they
wait on what the page shows, then cross-check the run through GraphQL and the rows in the lake.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect
from ui_stack import (
    ALERT_SENSOR_INTERVAL_S,
    ALERT_TIMEOUT_S,
    BAD_HOUR,
    BROKEN_RECORDS,
    LOCATION,
    ROOT,
    RUN_TIMEOUT_S,
    START,
    DagsterUI,
    hour_key,
)

pytestmark = [pytest.mark.browser, pytest.mark.broker]

ONE_HOUR = hour_key(START + timedelta(hours=1))
RANGE = [hour_key(START + timedelta(hours=h)) for h in (2, 3, 4)]
BAD = hour_key(BAD_HOUR)
ENTITY_LAYERS = ("landing", "raw", "quarantine", "current", "history", "scd2")
TRANSACTION_ASSETS = ("raw/raw_card_transactions", "quarantine/quarantine_card_transactions")  # one multi-asset
GRAPHQL_RANGE = [hour_key(START + timedelta(hours=h)) for h in (0, 1, 2)]
CLI_RANGE = [hour_key(START + timedelta(hours=h)) for h in (3, 4, 5)]
RUN_PAGE = re.compile(r"/runs/([0-9a-f-]{36})$")
BACKFILL_PAGE = re.compile(r"/runs/b/([a-z0-9]+)$")
FINAL_RUN_STATUS = re.compile(r"^(Success|Failure|Canceled)$")


def partition_picker(page: Page) -> Locator:
    """Accept the confirmations Dagster asks first (assets of the same multi-asset, upstream never
    materialized), then return the partition picker dialog."""
    picker = page.get_by_role("dialog").filter(has_text="Partition selection")
    confirmation = page.get_by_role("dialog").filter(has=page.get_by_role("button", name="Confirm", exact=True))
    for _ in range(4):
        expect(picker.or_(confirmation).first).to_be_visible()
        if picker.is_visible():
            return picker
        title = confirmation.first.inner_text().splitlines()[0]
        confirmation.first.get_by_role("button", name="Confirm", exact=True).click()
        expect(page.get_by_role("dialog").filter(has_text=title)).to_be_hidden()
    raise AssertionError("the partition picker did not open")


def choose_partitions(picker: Locator, selection: str, count: int) -> None:
    """Type a partition or a range into the picker, as a person does, and check how many it selected."""
    expect(picker.get_by_role("textbox")).to_be_visible()
    show_all = picker.get_by_role("button", name="Show all partitions")
    if show_all.count():  # the picker starts with the last 90 days; the simulated data is older
        show_all.click()
    box = picker.get_by_role("textbox")
    box.fill(selection)
    box.press("Enter")
    expect(picker.get_by_text(f"{count} partition{'s' if count > 1 else ''}", exact=True)).to_be_visible()


def open_launched(page: Page, pattern: re.Pattern[str]) -> str:
    """Follow the 'View' link of the toast that confirms the launch; return the run or backfill id."""
    page.get_by_role("link", name="View", exact=True).click()
    expect(page).to_have_url(pattern)
    match = pattern.search(page.url)
    assert match
    return match.group(1)


def wait_for_run_page(page: Page) -> Locator:
    status = page.get_by_text(FINAL_RUN_STATUS).first
    expect(status).to_be_visible(timeout=RUN_TIMEOUT_S * 1000)
    return status


def materialize_raw_customers(page: Page, shot: Any, hour: str) -> str:
    """From the asset page of raw/raw_customers: Materialize…, pick one hour, launch; return the run id."""
    page.goto("/assets/raw/raw_customers")
    expect(page.get_by_text("Hourly change log of customers")).to_be_visible()
    page.get_by_role("button", name="Materialize…").click()
    picker = partition_picker(page)
    # raw alone: its multi-asset is subsettable, so quarantine is not pulled in (it is written all the same)
    expect(picker.get_by_text("Launch runs to materialize raw / raw_customers")).to_be_visible()
    choose_partitions(picker, hour, 1)
    shot("partition-picker")
    picker.get_by_role("button", name="Launch 1 run").click()
    return open_launched(page, RUN_PAGE)


def test_asset_graph_shows_the_platform_assets(page: Page, shot: Any) -> None:
    page.goto("/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    graph = page.locator("svg").filter(has=page.locator("foreignObject"))
    for group in ("customers", "card_transactions", "marts"):
        expect(graph.get_by_text(group, exact=True).first).to_be_visible()
    expect(page.get_by_text("fetching statuses")).to_have_count(0, timeout=60_000)
    page.get_by_role("button", name="settings", exact=True).click()  # the graph's own settings menu
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.get_by_role("button", name="settings", exact=True).click()  # close the menu again
    expect(page.get_by_role("menuitem")).to_have_count(0)
    # every group opened into its asset nodes, and each node reads its layer and entity: in full, or, where
    # the zoomed-out graph cuts a long name in the middle, in the tooltip that hovering the node shows
    labels = set()
    for name in graph.locator('[class*="minimalName"]').all():
        shown = name.inner_text()
        if "…" in shown:
            head, tail = shown.split("…")
            name.hover(force=True)  # a queued node draws its box over the name
            tooltip = page.get_by_role("tooltip").filter(has_text=re.compile(f"^{re.escape(head)}.*{re.escape(tail)}$"))
            expect(tooltip).to_have_count(1)
            labels.add(tooltip.inner_text())
        else:
            labels.add(shown)
    expected = {f"{layer}_{entity}" for layer in ENTITY_LAYERS for entity in ("customers", "card_transactions")}
    assert expected <= labels, f"nodes not found by their labels: {sorted(expected - labels)}"
    shot("asset-graph")
    for key in ("current/current_customers", "marts/customer_kpis_daily", "raw/raw_card_transactions"):
        jump = page.get_by_placeholder("Jump to…")
        jump.fill(key)
        jump.press("Enter")
        # the graph opens the asset's group, selects its node and shows the asset's full key beside it
        expect(page).to_have_url(re.compile("/asset-groups/" + re.escape(key.replace("/", "%2F"))))
        expect(page.get_by_text(key.replace("/", " / "), exact=True)).to_be_visible()
        expect(page.get_by_role("link", name="View in Asset Catalog")).to_be_visible()
        shot(key.replace("/", "-"))


def test_materialize_one_partition_from_the_asset_page(page: Page, shot: Any, dagster_ui: DagsterUI) -> None:
    run_id = materialize_raw_customers(page, shot, ONE_HOUR)
    expect(page.get_by_text(f"partition: {ONE_HOUR}")).to_be_visible()
    expect(wait_for_run_page(page)).to_have_text("Success")
    expect(page.get_by_text("RUN_SUCCESS", exact=True)).to_be_visible()
    shot("run-succeeded")

    assert dagster_ui.run_status(run_id) == "SUCCESS"
    published = dagster_ui.customer_events_by_hour[ONE_HOUR]
    raw = dagster_ui.lake_rows("raw", "customers", ONE_HOUR)
    assert sorted(r["customer_id"] for r in raw) == sorted(e.key for e in published)
    assert dagster_ui.lake_rows("quarantine", "customers", ONE_HOUR) == []


def test_backfill_a_partition_range_from_the_catalog(page: Page, shot: Any, dagster_ui: DagsterUI) -> None:
    page.goto("/assets?asset-selection=" + 'group:"customers"'.replace(":", "%3A").replace('"', "%22"))
    for key in ("raw/raw_customers", "quarantine/quarantine_customers", "current/current_customers"):
        checkbox = page.get_by_test_id(f"checkbox-{key}")
        page.locator("label").filter(has=checkbox).click()
        expect(checkbox).to_be_checked()
    shot("catalog-selection")
    page.get_by_role("button", name="Materialize selected").click()
    picker = partition_picker(page)
    expect(picker.get_by_text("Launch runs to materialize 3 assets")).to_be_visible()
    choose_partitions(picker, f"[{RANGE[0]}...{RANGE[-1]}]", len(RANGE))
    shot("partition-range")
    picker.get_by_role("button", name="Launch backfill").click()
    backfill_id = open_launched(page, BACKFILL_PAGE)

    expect(page.get_by_text(f"{RANGE[0]}...{RANGE[-1]}")).to_be_visible()
    status = page.get_by_text("Status", exact=True).locator("xpath=following-sibling::*[1]")
    expect(status).to_have_text("Succeeded", timeout=RUN_TIMEOUT_S * 1000)
    for asset in ("raw / raw_customers", "quarantine / quarantine_customers", "current / current_customers"):
        expect(page.get_by_role("link", name=asset).first).to_be_visible()
    expect(page.get_by_text("100% completed")).to_have_count(3)
    shot("backfill-succeeded")

    page.get_by_role("tab", name="Runs").click()
    run_links = page.get_by_role("link").filter(has_text=re.compile(r"^[0-9a-f]{8}$"))
    expect(run_links.first).to_be_visible()
    expect(page.get_by_role("img", name="run_success", exact=True)).to_have_count(run_links.count())
    expect(page.get_by_role("img", name="run_failure", exact=True)).to_have_count(0)
    shot("backfill-runs")

    backfill = dagster_ui.backfill(backfill_id)
    assert backfill["status"] == "COMPLETED_SUCCESS"
    assert backfill["runs"] and {r["status"] for r in backfill["runs"]} == {"SUCCESS"}
    for hour in RANGE:
        published = dagster_ui.customer_events_by_hour[hour]
        assert len(dagster_ui.lake_rows("raw", "customers", hour)) == len(published)
    from resources.lake import LakeResource

    current = LakeResource(root=str(dagster_ui.lake_root)).read("current", "customers").to_pylist()
    changed = {e.key for hour in RANGE for e in dagster_ui.customer_events_by_hour[hour]}
    assert {r["customer_id"] for r in current} == changed


def test_a_failed_blocking_check_is_shown_as_failed(page: Page, shot: Any, dagster_ui: DagsterUI) -> None:
    run_id = materialize_raw_customers(page, shot, BAD)
    expect(wait_for_run_page(page)).to_have_text("Failure")
    expect(page.get_by_text("1 blocking asset check failed").first).to_be_visible()
    shot("run-failed")
    assert dagster_ui.run_status(run_id) == "FAILURE"

    page.goto("/assets/raw/raw_customers")
    page.get_by_role("tab", name="Checks").click()
    expect(page.get_by_text("Latest execution")).to_be_visible()
    listed = page.locator("span").filter(has_text="quarantine_rate").filter(has_text="Failed")
    expect(listed.first).to_be_visible()
    listed.first.click()
    expect(page.get_by_text(f"raw/raw_customers partition {BAD}: {BROKEN_RECORDS} of")).to_be_visible()
    expect(page.get_by_text("went to quarantine, above the limit 5.0%", exact=False)).to_be_visible()
    result = page.get_by_text("Evaluation result", exact=True).locator("xpath=following-sibling::*[1]")
    expect(result).to_have_text("Failed")
    shot("check-failed")

    quarantined = dagster_ui.lake_rows("quarantine", "customers", BAD)
    assert len(quarantined) == BROKEN_RECORDS

    # The alert sensor posts the failed check to the webhook, and its link opens the failed run.
    alert = wait_for_alert(dagster_ui, lambda a: a["link"].endswith(f"/runs/{run_id}"))
    assert (alert["asset"], alert["partition"], alert["rule"]) == ("raw/raw_customers", BAD, "quarantine_rate")
    assert f"{BROKEN_RECORDS} of" in alert["detail"] and alert["link"].endswith(f"/runs/{run_id}")
    page.goto(alert["link"])
    expect(wait_for_run_page(page)).to_have_text("Failure")
    shot("alert-link")
    time.sleep(3 * ALERT_SENSOR_INTERVAL_S)  # later ticks of both alert sensors: the failure is posted once
    assert [body["rule"] for _, body in dagster_ui.alerts if body["link"] == alert["link"]] == ["quarantine_rate"]


def wait_for_alert(dagster_ui: DagsterUI, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first alert the webhook received that `matches`, waiting for the alert sensors' next ticks."""
    deadline = time.monotonic() + ALERT_TIMEOUT_S
    while time.monotonic() < deadline:
        found = [body for _, body in dagster_ui.alerts if matches(body)]
        if found:
            return found[0]
        time.sleep(1)
    raise AssertionError(f"no such alert within {ALERT_TIMEOUT_S} s; received: {dagster_ui.alerts}")


def test_the_landing_asset_plots_the_consumer_lag_over_time(page: Page, shot: Any, dagster_ui: DagsterUI) -> None:
    """The customers lag sensor records consumer_lag on landing every tick; the asset's Overview plots it."""
    observed = lag_observations(dagster_ui, at_least=3)
    assert all(isinstance(lag, int) for lag in observed)
    page.goto("/assets/landing/landing_customers")
    metadata = page.get_by_role("button", name="Plots")
    expect(metadata).to_be_visible(timeout=30_000)
    metadata.click()
    expect(page.get_by_text("consumer_lag", exact=True).first).to_be_visible()
    expect(page.locator("canvas").first).to_be_visible()
    shot("lag-plot")


def lag_observations(dagster_ui: DagsterUI, at_least: int) -> list[int]:
    query = (
        '{ assetOrError(assetKey: {path: ["landing", "landing_customers"]}) { ... on Asset {'
        " assetObservations(limit: 50) { metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }"
    )
    deadline = time.monotonic() + ALERT_TIMEOUT_S
    while time.monotonic() < deadline:
        events = dagster_ui.graphql(query)["assetOrError"]["assetObservations"]
        lags = [e["intValue"] for event in events for e in event["metadataEntries"] if e["label"] == "consumer_lag"]
        if len(lags) >= at_least:
            return lags
        time.sleep(2)
    raise AssertionError(f"fewer than {at_least} lag observations on landing within {ALERT_TIMEOUT_S} s")


def assert_raw_holds_what_landed(dagster_ui: DagsterUI, hours: list[str]) -> None:
    for hour in hours:
        landed = dagster_ui.lake_rows("landing", "card_transactions", hour)
        assert landed, f"nothing landed for {hour}: the test would prove nothing"
        raw = dagster_ui.lake_rows("raw", "card_transactions", hour)
        assert sorted(r["transaction_id"] for r in raw) == sorted(r["key"].decode() for r in landed), hour


def range_runs(dagster_ui: DagsterUI, first: str, last: str) -> list[dict[str, Any]]:
    """Runs of the instance that covered exactly this partition range in one run."""
    data = dagster_ui.graphql(
        "query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags})"
        " { ... on Runs { results { runId status } } } }",
        {
            "tags": [
                {"key": "dagster/asset_partition_range_start", "value": first},
                {"key": "dagster/asset_partition_range_end", "value": last},
            ]
        },
    )
    return data["runsOrError"]["results"]


def test_backfill_a_partition_range_through_graphql(dagster_ui: DagsterUI) -> None:
    data = dagster_ui.graphql(
        "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) { __typename"
        " ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }",
        {
            "p": {
                "assetSelection": [{"path": key.split("/")} for key in TRANSACTION_ASSETS],
                "partitionNames": GRAPHQL_RANGE,
            }
        },
    )
    launched = data["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill = dagster_ui.wait_for_backfill(launched["backfillId"])
    assert backfill["status"] == "COMPLETED_SUCCESS", f"{backfill}\n{dagster_ui.log_tail()}"
    # The single-run backfill policy: the whole range in one run.
    assert [r["status"] for r in backfill["runs"]] == ["SUCCESS"]
    assert [r["runId"] for r in range_runs(dagster_ui, GRAPHQL_RANGE[0], GRAPHQL_RANGE[-1])] == [
        backfill["runs"][0]["runId"]
    ]
    assert_raw_holds_what_landed(dagster_ui, GRAPHQL_RANGE)


def test_backfill_a_partition_range_from_the_command_line(dagster_ui: DagsterUI) -> None:
    dagster = Path(sys.executable).with_name("dagster")
    command = [
        str(dagster),
        "asset",
        "materialize",
        "-m",
        LOCATION,
        "--select",
        ",".join(TRANSACTION_ASSETS),
        "--partition-range",
        f"{CLI_RANGE[0]}...{CLI_RANGE[-1]}",
    ]
    done = subprocess.run(command, cwd=ROOT, env=dagster_ui.env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert_raw_holds_what_landed(dagster_ui, CLI_RANGE)
    # The run is recorded in the instance that `dagster dev` serves, so the UI lists it.
    assert [r["status"] for r in range_runs(dagster_ui, CLI_RANGE[0], CLI_RANGE[-1])] == ["SUCCESS"]
