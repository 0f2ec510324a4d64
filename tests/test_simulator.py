"""The simulator chooses customers from their ids in sorted order, kept as customers come and go."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.source import Rates, SourceSystem

pytestmark = pytest.mark.unit


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 1000),
    creates=st.integers(0, 30),
    updates=st.integers(0, 30),
    deletes=st.integers(0, 30),
    hours=st.integers(1, 4),
)
def test_the_ids_it_chooses_from_are_the_living_customers_in_sorted_order(seed, creates, updates, deletes, hours):
    source = SourceSystem(seed=seed, rates=Rates(creates=creates, updates=updates, deletes=deletes, transactions=5))
    for _ in source.hours(hours):
        assert source._ids == sorted(source.customers)
    gone: set[str] = set()
    for event in source.changes:  # in the order they happened
        customer = event.key if event.topic.startswith("customer-") else event.value["customer_id"]
        assert customer not in gone, f"{event.topic} of {customer}, deleted before"
        if event.topic == "customer-delete":
            gone.add(customer)
