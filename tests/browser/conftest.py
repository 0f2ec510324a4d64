"""Fixtures of the browser tests: `dagster dev` on loopback (see ui_stack.py) and Debian's Chromium
driven by Playwright, with a fresh profile; screenshots go to the module's pytest tmp dir."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_stack import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DagsterUI,
    land,
    platform_env,
    publish,
    start_dagster_dev,
    stop_automation,
    wait_until_loaded,
)

from devstack.broker import free_port, stop_group
from devstack.soak import Webhook


@pytest.fixture(scope="module")
def dagster_ui(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterUI]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run devstack/install_browser.sh (make test does)"
    root = tmp_path_factory.mktemp("dagster-ui")
    by_hour = publish(broker)
    home, lake_root = root / "dagster_home", root / "lake"
    webhook, port = Webhook(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = platform_env(home, lake_root, broker, webhook.url, url)
    process = start_dagster_dev(root / "dagster-dev.log", env, port)
    ui = DagsterUI(
        url, process, root / "dagster-dev.log", lake_root, root / "screenshots", env, webhook.received, by_hour
    )
    ui.screenshots.mkdir()
    try:
        wait_until_loaded(ui)
        stop_automation(ui)
        ui.graphql("mutation { setNuxSeen }")  # no "join the community" dialog over the pages
        land(ui)
        yield ui
    finally:
        stop_group(process)
        webhook.server.shutdown()
        print(f"\nbrowser test screenshots: {ui.screenshots}\ndagster dev log: {ui.log_path}")


@pytest.fixture(scope="module")
def browser_context(dagster_ui: DagsterUI) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1600, "height": 1000},
            base_url=dagster_ui.url,
        )
        context.set_default_timeout(30_000)
        context.set_default_navigation_timeout(60_000)
        # Assertions on what a page shows wait as long as actions do: Playwright's own 5 s was too short
        # for the first load of an asset page on a loaded 2-core machine (the whole suite at half speed).
        expect.set_options(timeout=30_000)
        try:
            yield context
        finally:
            context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[FAILED] = report.failed


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser_context: Any, dagster_ui: DagsterUI, request: pytest.FixtureRequest) -> Iterator[Any]:
    page = browser_context.new_page()
    yield page
    if request.node.stash.get(FAILED, False):
        page.screenshot(path=str(dagster_ui.screenshots / f"{request.node.name}-FAILED.png"), full_page=True)
    page.close()


@pytest.fixture
def shot(page: Any, dagster_ui: DagsterUI, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """Save a screenshot of the page as <test>-<n>-<step>.png in the module's screenshot directory."""
    taken: list[Path] = []

    def take(step: str) -> Path:
        path = dagster_ui.screenshots / f"{request.node.name}-{len(taken) + 1}-{step}.png"
        page.screenshot(path=str(path))
        taken.append(path)
        return path

    return take
