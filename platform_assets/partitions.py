"""Partitions shared by every entity: hourly for raw and current, daily for history and marts."""

from __future__ import annotations

import os
from datetime import datetime

from dagster import DailyPartitionsDefinition, HourlyPartitionsDefinition

PLATFORM_START = os.environ.get("PLATFORM_START", "2026-01-01-00:00")
HOUR_FORMAT = "%Y-%m-%d-%H:%M"
_start = datetime.strptime(PLATFORM_START, HOUR_FORMAT)

hourly_partitions = HourlyPartitionsDefinition(start_date=PLATFORM_START, timezone="UTC")
daily_partitions = DailyPartitionsDefinition(start_date=_start.strftime("%Y-%m-%d"), timezone="UTC")


def hour_key(moment: datetime) -> str:
    return moment.strftime(HOUR_FORMAT)


def day_key(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")
