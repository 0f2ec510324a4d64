"""Partitions shared by every entity: hourly for raw and current, daily for history and marts."""

from __future__ import annotations

import os
from datetime import datetime

from dagster import DailyPartitionsDefinition, HourlyPartitionsDefinition

PLATFORM_START = os.environ.get("PLATFORM_START", "2026-01-01-00:00")
HOUR_FORMAT = "%Y-%m-%d-%H:%M"
_start = datetime.strptime(PLATFORM_START, HOUR_FORMAT)

# end_offset=1: the hour (day) in progress is a partition too, so live data shows up before it closes;
# re-materializing it later is idempotent like any other partition.
hourly_partitions = HourlyPartitionsDefinition(start_date=PLATFORM_START, timezone="UTC", end_offset=1)
daily_partitions = DailyPartitionsDefinition(start_date=_start.strftime("%Y-%m-%d"), timezone="UTC", end_offset=1)


def hour_key(moment: datetime) -> str:
    """The key of the hourly partition that contains `moment`."""
    return moment.replace(minute=0, second=0, microsecond=0).strftime(HOUR_FORMAT)


def day_key(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")
