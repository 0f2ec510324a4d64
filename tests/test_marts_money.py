"""Money stays exact from the card service to the marts: amounts are decimal(12, 2) in raw, current and
history, and the spend marts sum them as decimals, equal to the cent to a plain-Python reference."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import cycle

import pyarrow as pa
import pytest
from helpers import mart_rows, run

from simulator.source import TRANSACTION_TOPIC, Rates

pytestmark = [pytest.mark.broker, pytest.mark.spark, pytest.mark.dbt]

DAY = datetime(2026, 1, 1, tzinfo=UTC)
HOURS = 3
# Amounts whose sums as doubles are not the sums in cents: 0.1 + 0.2 is 0.30000000000000004 and ten
# times 0.1 is 0.9999999999999999. No double is exactly 0.30 or 98765432.20 either, so a spend that was
# a double anywhere on the way (even rounded to cents) is not `==` the Decimal sum.
AMOUNTS = [Decimal(text) for text in ("0.10", "0.20", "0.70", "0.10", "0.20", "98765432.19", "0.01", "0.10")]


def test_spend_marts_equal_a_decimal_reference_to_the_cent(platform_stack):
    stack = platform_stack(Rates(creates=4, updates=2, deletes=0, transactions=12, late_share=0), seed=5)
    amounts = cycle(AMOUNTS)
    events = [
        dataclasses.replace(event, value={**event.value, "amount": next(amounts)})
        if event.topic == TRANSACTION_TOPIC
        else event
        for hour in range(HOURS)
        for event in stack.source.hour(DAY + timedelta(hours=hour))
    ]
    stack.publish(events)
    assert stack.defs.resolve_job_def("landing_job").execute_in_process(instance=stack.instance).success
    last_hour = f"{DAY + timedelta(hours=HOURS - 1):%Y-%m-%d-%H:%M}"
    assert run(stack.defs, stack.instance, "hourly_job", f"{DAY:%Y-%m-%d-%H:%M}", last_hour).success
    assert run(stack.defs, stack.instance, "daily_job", f"{DAY:%Y-%m-%d}", f"{DAY:%Y-%m-%d}").success

    # The produced amounts, read back exactly (as Decimal) from every layer.
    produced = {e.key: e.value for e in events if e.topic == TRANSACTION_TOPIC}
    amounts_by_id = {key: value["amount"] for key, value in produced.items()}
    for layer in ("raw", "current", "history"):
        stored = {
            row["transaction_id"]: row["amount"] for row in stack.lake.read(layer, "card_transactions").to_pylist()
        }
        assert stored == amounts_by_id, layer
        assert {type(amount) for amount in stored.values()} == {Decimal}, layer

    hourly: dict[datetime, list[Decimal]] = defaultdict(list)
    daily: dict[tuple[date, str], list[Decimal]] = defaultdict(list)
    for value in produced.values():
        occurred = datetime.fromisoformat(value["occurred_at"])
        hourly[occurred.replace(minute=0, second=0, microsecond=0)].append(value["amount"])
        # No customer is deleted, so the city at the end of the day is the customer's city now.
        daily[(occurred.date(), stack.source.customers[value["customer_id"]]["city"])].append(value["amount"])
    assert any(sum(map(float, amounts)) != float(sum(amounts)) for amounts in hourly.values()), (
        "the amounts must be ones whose sum as doubles is not the exact sum"
    )

    spend_hourly = {
        hour.astimezone(UTC): spend
        for hour, spend in mart_rows(stack.lake, "card_spend_hourly", "select hour, spend from marts")
    }
    assert spend_hourly == {hour: sum(amounts) for hour, amounts in hourly.items()}
    assert {type(spend) for spend in spend_hourly.values()} == {Decimal}
    by_city = {
        (day, city): spend
        for day, city, spend in mart_rows(stack.lake, "card_spend_daily_by_city", "select day, city, spend from marts")
    }
    assert by_city == {key: sum(amounts) for key, amounts in daily.items()}
    assert {type(spend) for spend in by_city.values()} == {Decimal}
    for mart in ("card_spend_hourly", "card_spend_daily_by_city"):
        spend_type = stack.lake.read("marts", mart).schema.field("spend").type
        assert pa.types.is_decimal(spend_type) and spend_type.scale == 2, (mart, spend_type)
