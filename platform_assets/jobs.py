"""Jobs over the asset graph, one per cadence: landing drains, hourly layers, daily layers."""

from dagster import AssetSelection, define_asset_job

from platform_assets.partitions import daily_partitions, hourly_partitions

landing_job = define_asset_job(
    "landing_job",
    selection=AssetSelection.key_prefixes("landing"),
    description="Drain every entity's topics into its landing table (exactly once).",
    tags={"layer": "landing"},
)
hourly_job = define_asset_job(
    "hourly_job",
    selection=AssetSelection.key_prefixes("raw", "quarantine", "current"),
    partitions_def=hourly_partitions,
    description="Decode landed records of an hour into raw (and quarantine) and merge them into current.",
)
daily_job = define_asset_job(
    "daily_job",
    selection=AssetSelection.key_prefixes("history", "staging", "marts"),
    partitions_def=daily_partitions,
    description="Recompute history for a day (and the day before) and rebuild the day's KPI marts.",
)
