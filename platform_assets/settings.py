"""The settings that shape the definitions themselves, read once when the code location loads.

Resources (broker, lake, Spark, registry) carry their own configuration; what is here decides the
definitions: where partitions start, where contracts live and how the sensors pace themselves. Tests
and tools build `PlatformSettings(...)` directly, so nothing reads the environment at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from platform_assets.lib.contract import SHIPPED_CONTRACTS_DIR

DEFAULT_START = "2026-01-01-00:00"


@dataclass(frozen=True)
class PlatformSettings:
    # First hourly partition, `YYYY-MM-DD-HH:MM` UTC (PLATFORM_START).
    start: str = DEFAULT_START
    contracts_dir: Path = field(default=SHIPPED_CONTRACTS_DIR)
    # How often each sensor looks (PLATFORM_LAG_SENSOR_INTERVAL_S).
    sensor_interval_s: int = 30
    # Land when this many records wait (PLATFORM_LAG_THRESHOLD) ...
    lag_threshold: int = 1000
    # ... or when the oldest waiting record is older than this (PLATFORM_MAX_DELAY_S).
    max_delay_s: float = 300.0
    # Failed runs and checks are posted here (PLATFORM_ALERT_WEBHOOK_URL); empty: no alert sensors.
    alert_webhook_url: str = ""
    # slack | teams | json (PLATFORM_ALERT_WEBHOOK_FORMAT); empty: chosen from the webhook's host.
    alert_format: str = ""
    # Wall-clock seconds of an hour of a contract's `freshness_hours` (PLATFORM_FRESHNESS_HOUR_S): `make
    # dev` shortens it to its simulator's pace.
    freshness_hour_s: float = 3600.0
    # The Dagster UI that alerts link to (PLATFORM_UI_URL).
    ui_url: str = "http://127.0.0.1:3000"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PlatformSettings:
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            start=env.get("PLATFORM_START") or defaults.start,
            contracts_dir=Path(env.get("PLATFORM_CONTRACTS_DIR") or defaults.contracts_dir),
            sensor_interval_s=int(env.get("PLATFORM_LAG_SENSOR_INTERVAL_S") or defaults.sensor_interval_s),
            lag_threshold=int(env.get("PLATFORM_LAG_THRESHOLD") or defaults.lag_threshold),
            max_delay_s=float(env.get("PLATFORM_MAX_DELAY_S") or defaults.max_delay_s),
            alert_webhook_url=env.get("PLATFORM_ALERT_WEBHOOK_URL") or defaults.alert_webhook_url,
            alert_format=env.get("PLATFORM_ALERT_WEBHOOK_FORMAT") or defaults.alert_format,
            ui_url=env.get("PLATFORM_UI_URL") or defaults.ui_url,
            freshness_hour_s=float(env.get("PLATFORM_FRESHNESS_HOUR_S") or defaults.freshness_hour_s),
        )
