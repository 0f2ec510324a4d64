"""Partitions shared by every entity: hourly for raw and current, daily for history and marts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dagster import DailyPartitionsDefinition, HourlyPartitionsDefinition

from platform_assets.lib.records import hour_floor
from platform_assets.settings import DEFAULT_START

HOUR_FORMAT = "%Y-%m-%d-%H:%M"
# The run tags naming the partition (or range) a run covers.
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
DAY_FORMAT = "%Y-%m-%d"


@dataclass(frozen=True)
class Partitions:
    hourly: HourlyPartitionsDefinition
    daily: DailyPartitionsDefinition
    # Wall-clock seconds of a contract's `freshness_hours` hour: 3600 but in `make dev`, whose simulator
    # plays an event hour in minutes, so a stopped simulator turns the freshness checks red in minutes.
    freshness_hour_s: float = 3600.0

    @property
    def first_hour(self) -> datetime:
        """The start of the first hourly partition: no record can be filed before it."""
        return self.hourly.start

    @classmethod
    def starting(cls, start: str, freshness_hour_s: float = 3600.0) -> Partitions:
        """Hourly and daily partitions from `start` (`YYYY-MM-DD-HH:MM`, UTC).

        end_offset=1: the hour (day) in progress is a partition too, so live data shows up before it
        closes; re-materializing it later is idempotent like any other partition.
        """
        first = datetime.strptime(start, HOUR_FORMAT)
        return cls(
            hourly=HourlyPartitionsDefinition(start_date=start, timezone="UTC", end_offset=1),
            daily=DailyPartitionsDefinition(start_date=first.strftime(DAY_FORMAT), timezone="UTC", end_offset=1),
            freshness_hour_s=freshness_hour_s,
        )


DEFAULT_PARTITIONS = Partitions.starting(DEFAULT_START)


def hour_key(moment: datetime) -> str:
    """The key of the hourly partition that contains `moment`."""
    return hour_floor(moment).strftime(HOUR_FORMAT)


def day_key(moment: datetime) -> str:
    return moment.strftime(DAY_FORMAT)


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run cover the partitions first..last (as a single-run backfill does)."""
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}
