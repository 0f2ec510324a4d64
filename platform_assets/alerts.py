"""Alerts: a failed run or a failed asset check posts one message to a webhook.

A run-failure sensor sees failed runs; a failing check needs its own sensor, because only blocking
checks fail their run, and the run's failure says less than the check (its rule, its description).
When every failed step of a run failed on blocking checks, the check sensor's message is the alert
and the run-failure sensor stays silent: one problem, one message.

Messages name the asset, the partition (or range), the rule and a link to the run in the Dagster UI.
They are posted with `requests` in the shape the webhook's host expects: Slack incoming webhooks,
Microsoft Teams (Workflows / incoming webhook, an Adaptive Card), or plain JSON for anything else.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlparse

import requests
from dagster import (
    AssetCheckKey,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.dagster_run import DagsterRun

from platform_assets.partitions import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG

FORMATS = ("slack", "teams", "json")
CHECK_FAILED_ERROR = "DagsterAssetCheckFailedError"


@dataclass(frozen=True)
class Alert:
    title: str
    asset: str
    partition: str | None
    rule: str
    detail: str
    link: str


@dataclass(frozen=True)
class Webhook:
    url: str
    format: str  # slack | teams | json
    ui_url: str

    @classmethod
    def configured(cls, url: str, format: str, ui_url: str) -> Webhook:
        chosen = format or infer_format(url)
        if chosen not in FORMATS:
            raise ValueError(
                f"PLATFORM_ALERT_WEBHOOK_FORMAT is `{format}`; use one of {', '.join(FORMATS)} (or leave it empty "
                "to choose from the webhook's host)"
            )
        return cls(url, chosen, ui_url.rstrip("/"))

    def run_link(self, run_id: str) -> str:
        return f"{self.ui_url}/runs/{run_id}"

    def post(self, alert: Alert) -> None:
        response = requests.post(self.url, json=payload(alert, self.format), timeout=10)
        if response.status_code >= 300:
            raise RuntimeError(
                f"the alert webhook answered {response.status_code}: {response.text[:200]}; check "
                "PLATFORM_ALERT_WEBHOOK_URL (the alert is sent again on the sensor's next tick)"
            )


def infer_format(url: str) -> str:
    host = urlparse(url).hostname or ""
    if host == "hooks.slack.com":
        return "slack"
    if host.endswith((".webhook.office.com", ".logic.azure.com", ".powerplatform.com")):
        return "teams"
    return "json"


def payload(alert: Alert, format: str) -> dict[str, Any]:
    facts = [("Asset", alert.asset), ("Partition", alert.partition or "none"), ("Rule", alert.rule)]
    if format == "slack":
        lines = "\n".join(f"*{name}:* {value}" for name, value in facts)
        text = f"{alert.title}: {alert.asset} ({alert.partition or 'no partition'}) — {alert.rule}"
        return {
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*{alert.title}*\n{lines}"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": alert.detail[:2900]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": f"<{alert.link}|Open in Dagster>"}},
            ],
        }
    if format == "teams":
        card = {
            "type": "AdaptiveCard",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": "1.4",
            "body": [
                {"type": "TextBlock", "text": alert.title, "weight": "Bolder", "size": "Medium"},
                {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in facts]},
                {"type": "TextBlock", "text": alert.detail, "wrap": True},
            ],
            "actions": [{"type": "Action.OpenUrl", "title": "Open in Dagster", "url": alert.link}],
        }
        return {
            "type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
        }
    return asdict(alert)


def partition_of(run: DagsterRun | None) -> str | None:
    """The partition, or `first..last` range, a run covered."""
    if run is None:
        return None
    first, last = run.tags.get(RANGE_START_TAG), run.tags.get(RANGE_END_TAG)
    if first and last:
        return first if first == last else f"{first}..{last}"
    return run.tags.get(PARTITION_TAG)


def assets_of(instance: DagsterInstance, run: DagsterRun) -> str:
    """The assets the run was to materialize (the run's selection, else what its plan announced)."""
    keys = set(run.asset_selection or ())
    if not keys:
        planned = instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
        keys = {
            entry.dagster_event.asset_key for entry in planned if entry.dagster_event and entry.dagster_event.asset_key
        }
    return ", ".join(sorted(key.to_user_string() for key in keys)) or run.job_name


def build_alert_sensors(webhook: Webhook, interval_s: int) -> list[SensorDefinition]:
    @run_failure_sensor(
        name="alert_on_run_failure",
        description="Posts each failed run (asset, partition, error, link) to PLATFORM_ALERT_WEBHOOK_URL.",
        # Runs started from the CLI or in process carry no code-location origin; watch them too.
        monitor_all_code_locations=True,
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def alert_on_run_failure(context: RunFailureSensorContext) -> SkipReason | None:
        run = context.dagster_run
        failures = context.get_step_failure_events()
        errors = [event.event_specific_data.error for event in failures if event.event_specific_data]  # type: ignore[union-attr]
        if failures and all(error is not None and error.cls_name == CHECK_FAILED_ERROR for error in errors):
            return SkipReason(f"run {run.run_id} failed on blocking checks; alert_on_check_failure reports them")
        steps = ", ".join(sorted({event.step_key for event in failures if event.step_key}))
        rule = next((e.message.strip().splitlines()[0] for e in errors if e is not None), None)
        webhook.post(
            Alert(
                title=f"Run failed: {run.job_name}",
                asset=assets_of(context.instance, run),
                partition=partition_of(run),
                rule=rule or context.failure_event.message or "run failed",
                detail=f"Failed steps: {steps or 'none (the run failed outside its steps)'}. "
                f"{context.failure_event.message or ''}".strip(),
                link=webhook.run_link(run.run_id),
            )
        )
        return None

    @sensor(
        name="alert_on_check_failure",
        description="Posts each failed asset check (asset, partition, rule, what to do, link) to "
        "PLATFORM_ALERT_WEBHOOK_URL.",
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def alert_on_check_failure(context: SensorEvaluationContext) -> SkipReason:
        assert context.repository_def is not None, "the sensor runs inside its code location"
        keys = sorted(context.repository_def.asset_graph.asset_check_keys, key=lambda k: k.to_user_string())
        storage = context.instance.event_log_storage
        latest = {
            key: summary.last_check_execution_record.id
            for key, summary in storage.get_asset_check_summary_records(keys).items()
            if summary.last_check_execution_record is not None
        }
        if context.cursor is None:
            # First tick: start from now instead of alerting on every failure ever recorded.
            context.update_cursor(json.dumps({key.to_user_string(): id for key, id in latest.items()}))
            return SkipReason("watching asset checks from now on")
        handled: dict[str, int] = json.loads(context.cursor)
        sent = 0
        for key in keys:
            name = key.to_user_string()
            if latest.get(key, 0) <= handled.get(name, 0):
                continue
            handled[name], alerts = new_check_failures(context.instance, key, handled.get(name, 0), webhook)
            for alert in alerts:
                webhook.post(alert)
                sent += 1
        context.update_cursor(json.dumps(handled))
        return SkipReason(f"{sent} failed checks reported" if sent else "no new failed checks")

    return [alert_on_run_failure, alert_on_check_failure]


def new_check_failures(
    instance: DagsterInstance, key: AssetCheckKey, after: int, webhook: Webhook
) -> tuple[int, Sequence[Alert]]:
    """Failed evaluations of one check after record `after`, and the record to resume from: never
    past an execution still planned in a running run, whose outcome is yet to come."""
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=100, cursor=None)
    alerts = []
    handled = after
    for record in sorted((r for r in history if r.id > after), key=lambda r: r.id):
        run = instance.get_run_by_id(record.run_id) if record.run_id else None
        if record.status == AssetCheckExecutionRecordStatus.PLANNED and run is not None and not run.is_finished:
            break
        if record.status == AssetCheckExecutionRecordStatus.FAILED:
            evaluation = (
                record.event.dagster_event.event_specific_data if record.event and record.event.dagster_event else None
            )
            description = getattr(evaluation, "description", None) or "the check failed"
            alerts.append(
                Alert(
                    title=f"Check failed: {key.asset_key.to_user_string()} {key.name}",
                    asset=key.asset_key.to_user_string(),
                    partition=record.partition or partition_of(run),
                    rule=key.name,
                    detail=description or "the check failed; see its metadata in the Dagster UI",
                    link=webhook.run_link(record.run_id),
                )
            )
        handled = record.id
    return handled, alerts
