"""Dagster's freshness daemon judges `current/<e>` against the contract's `quality.freshness_hours` on
its own clock, without any run: an entity whose chain stalls turns red."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagster import AssetKey, AssetMaterialization
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import freeze_time, instance_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.freshness import FreshnessDaemon

CURRENT = AssetKey(["current", "current_customers"])  # customers.yaml: quality.freshness_hours: 2
NO_POLICY = AssetKey(["current", "current_card_transactions"])  # no freshness_hours


def freshness_after_daemon_tick(instance) -> dict[AssetKey, FreshnessState]:
    """One iteration of the freshness daemon over the code location as `dagster dev` loads it."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="platform_assets.definitions", attribute="defs"), location_name="platform"
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as workspace:
        list(FreshnessDaemon().run_iteration(workspace))
    records = instance.get_freshness_state_records([CURRENT, NO_POLICY])
    return {key: record.freshness_state for key, record in records.items()}


def test_current_turns_red_when_nothing_merged_within_freshness_hours(tmp_path):
    with instance_for_test() as instance:
        merged_at = datetime.now(UTC)
        instance.report_runless_asset_event(AssetMaterialization(CURRENT, partition=f"{merged_at:%Y-%m-%d-%H}:00"))
        instance.report_runless_asset_event(AssetMaterialization(NO_POLICY, partition=f"{merged_at:%Y-%m-%d-%H}:00"))
        assert freshness_after_daemon_tick(instance)[CURRENT] == FreshnessState.PASS
        with freeze_time(merged_at + timedelta(hours=2, minutes=5)):
            states = freshness_after_daemon_tick(instance)
        assert states[CURRENT] == FreshnessState.FAIL
        # An entity whose contract sets no freshness_hours is never judged.
        assert states[NO_POLICY] == FreshnessState.NOT_APPLICABLE
