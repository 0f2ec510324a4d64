"""Failed runs and failed checks reach a webhook: a local HTTP server receives what real sensor-daemon
ticks post, after real runs of landing and raw failed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from dagster import materialize
from dagster._core.test_utils import instance_for_test
from helpers import RECORDS_HOUR as HOUR
from helpers import good_and_bad_records, loaded_location, tick

from platform_assets.alerts import Alert, Webhook, infer_format
from platform_assets.landing import build_landing_asset
from platform_assets.lib.contract import parse_contract
from platform_assets.raw import build_raw_assets
from resources.lake import LakeResource

ROOT = Path(__file__).resolve().parents[1]
UI = "http://dagster.example:3000"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, dict]]]]:
    """A webhook on 127.0.0.1 that records every JSON body posted to it."""
    received: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()


@pytest.mark.broker
def test_failed_check_and_failed_run_each_post_one_alert(broker, tmp_path, receiver, monkeypatch):
    url, received = receiver
    document, resources = good_and_bad_records(broker, tmp_path, "alerted", {"max_quarantine_rate": 0.0})
    for name, value in {
        "TEST_CONTRACT": json.dumps(document),
        "TEST_GROUP_PREFIX": resources["kafka"].group_prefix,
        "PLATFORM_ALERT_WEBHOOK_URL": f"{url}/hook",
        "PLATFORM_ALERT_WEBHOOK_FORMAT": "json",
        "PLATFORM_UI_URL": UI,
        "PLATFORM_LAKE_ROOT": str(tmp_path / "lake"),
    }.items():
        monkeypatch.setenv(name, value)
    contract = parse_contract(document)
    with instance_for_test() as instance, loaded_location(instance) as workspace:
        started = datetime.now(UTC)
        tick(workspace, started)  # the sensors start watching from here
        assert materialize([build_landing_asset(contract)], instance=instance, resources=resources).success
        raw = build_raw_assets(contract)
        # One bad record of two: the blocking quarantine-rate check fails, and with it the run.
        checked = materialize([raw], instance=instance, resources=resources, partition_key=HOUR, raise_on_error=False)
        assert not checked.success
        # A run that fails outside the data: the lake root is a file.
        (tmp_path / "not-a-directory").write_text("")
        broken = materialize(
            [raw],
            instance=instance,
            resources={**resources, "lake": LakeResource(root=str(tmp_path / "not-a-directory"))},
            partition_key=HOUR,
            raise_on_error=False,
        )
        assert not broken.success
        tick(workspace, started + timedelta(seconds=40))
        tick(workspace, started + timedelta(seconds=80))

    bodies = [body for path, body in received if path == "/hook"]
    check_alerts = [b for b in bodies if b["title"].startswith("Check failed")]
    run_alerts = [b for b in bodies if b["title"].startswith("Run failed")]
    assert len(bodies) == 2, bodies
    [check_alert] = check_alerts
    assert check_alert["asset"] == "raw/raw_alerted" and check_alert["rule"] == "quarantine_rate"
    assert check_alert["partition"] == HOUR
    assert "1 of 2 records" in check_alert["detail"] and "quarantine" in check_alert["detail"]
    assert check_alert["link"] == f"{UI}/runs/{checked.run_id}"
    # The run that failed on the check is reported once, by the check; the broken run by its error.
    [run_alert] = run_alerts
    assert run_alert["asset"] == "quarantine/quarantine_alerted, raw/raw_alerted"
    assert run_alert["partition"] == HOUR
    assert run_alert["link"] == f"{UI}/runs/{broken.run_id}"
    assert run_alert["rule"] and "raw_alerted" in run_alert["detail"]


ALERT = Alert("Check failed: raw/x valid_changes", "raw/x", HOUR, "valid_changes", "2 rows lack a key", f"{UI}/runs/r1")


@pytest.mark.parametrize("format", ["slack", "teams", "json"])
def test_each_webhook_format_posts_its_shape(receiver, format):
    url, received = receiver
    Webhook.configured(url, format, UI).post(ALERT)
    [(_, body)] = received
    if format == "slack":
        assert "raw/x" in body["text"] and "valid_changes" in body["text"]
        assert f"<{UI}/runs/r1|Open in Dagster>" in json.dumps(body["blocks"])
    elif format == "teams":
        card = body["attachments"][0]["content"]
        assert body["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert {"title": "Partition", "value": HOUR} in card["body"][1]["facts"]
        assert card["actions"][0]["url"] == f"{UI}/runs/r1"
    else:
        assert body == {
            "title": ALERT.title,
            "asset": "raw/x",
            "partition": HOUR,
            "rule": "valid_changes",
            "detail": "2 rows lack a key",
            "link": f"{UI}/runs/r1",
        }


def test_format_follows_the_webhook_host_and_refuses_unknown_formats():
    assert infer_format("https://hooks.slack.com/services/T/B/x") == "slack"
    assert infer_format("https://contoso.webhook.office.com/webhookb2/x") == "teams"
    assert infer_format("https://alerts.internal/hook") == "json"
    with pytest.raises(ValueError, match="PLATFORM_ALERT_WEBHOOK_FORMAT"):
        Webhook.configured("https://alerts.internal/hook", "pager", UI)
