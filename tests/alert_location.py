"""The code location the alert tests load into the sensor daemon: landing and raw of one test entity
and the alert sensors, configured from the environment as the platform's own location is."""

import json
import os

from dagster import Definitions

from platform_assets.alerts import Webhook, build_alert_sensors
from platform_assets.landing import build_landing_asset
from platform_assets.lib.contract import parse_contract
from platform_assets.raw import build_raw_assets
from platform_assets.settings import PlatformSettings
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource

contract = parse_contract(json.loads(os.environ["ALERT_TEST_CONTRACT"]))
settings = PlatformSettings.from_env()
defs = Definitions(
    assets=[build_landing_asset(contract), build_raw_assets(contract)],
    sensors=build_alert_sensors(
        Webhook.configured(settings.alert_webhook_url, settings.alert_format, settings.ui_url),
        settings.sensor_interval_s,
    ),
    resources={
        "kafka": KafkaResource(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"], group_prefix="alerts"),
        "lake": LakeResource.from_env(),
        "schema_registry": SchemaRegistryResource(),
    },
)
