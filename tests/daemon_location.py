"""The code location the daemon-level tests load: the hourly chain of one test entity, its lag sensor
and the alert sensors, configured from the environment as the platform's own location is."""

import json
import os

from dagster import Definitions

from platform_assets.alerts import Webhook, build_alert_sensors
from platform_assets.current import build_current_asset
from platform_assets.jobs import hourly_job, landing_job
from platform_assets.landing import build_landing_asset
from platform_assets.lib.contract import parse_contract
from platform_assets.raw import build_raw_assets
from platform_assets.scd2 import build_scd2_asset
from platform_assets.sensors import build_lag_sensor
from platform_assets.settings import PlatformSettings
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource
from resources.spark import SparkResource

contract = parse_contract(json.loads(os.environ["TEST_CONTRACT"]))
settings = PlatformSettings.from_env()
sensors = [build_lag_sensor(contract, settings.lag_threshold, settings.max_delay_s, settings.sensor_interval_s)]
if settings.alert_webhook_url:
    webhook = Webhook.configured(settings.alert_webhook_url, settings.alert_format, settings.ui_url)
    sensors += build_alert_sensors(webhook, settings.sensor_interval_s)
defs = Definitions(
    assets=[
        build_landing_asset(contract),
        build_raw_assets(contract),
        build_current_asset(contract),
        build_scd2_asset(contract),
    ],
    jobs=[landing_job, hourly_job],
    sensors=sensors,
    resources={
        "kafka": KafkaResource(
            bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"], group_prefix=os.environ["TEST_GROUP_PREFIX"]
        ),
        "lake": LakeResource.from_env(),
        "schema_registry": SchemaRegistryResource(),
        "spark": SparkResource(),
    },
)
