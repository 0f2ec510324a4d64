"""A simulated source system, deterministic from a seed.

A customer service publishes create/update/delete events on three topics (each customer carries a
version that increases with every change) and serves its full customer list over paginated REST; a
card service publishes an append-only transaction stream. The generator keeps the ground truth that
tests compare the platform against, and it injects the trouble that real streams have: duplicates and
events published an hour late.
"""

from __future__ import annotations

import bisect
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

CITIES = ("Lisbon", "Porto", "Berlin", "Madrid", "Sao Paulo", "Recife")
SEGMENTS = ("standard", "premium", "business")
CURRENCIES = ("EUR", "USD", "BRL")
MERCHANT_CATEGORIES = ("grocery", "travel", "restaurants", "fuel", "online")
FIRST_NAMES = ("Ana", "Bruno", "Carla", "Diego", "Eva", "Filipe", "Greta", "Hugo", "Ines", "Joao")
LAST_NAMES = ("Silva", "Santos", "Muller", "Garcia", "Costa", "Schmidt", "Lopez", "Pereira")

CUSTOMER_TOPICS = {"create": "customer-create", "update": "customer-update", "delete": "customer-delete"}
TRANSACTION_TOPIC = "card-transactions"
ALL_TOPICS = (*CUSTOMER_TOPICS.values(), TRANSACTION_TOPIC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    """One record as the source publishes it."""

    topic: str
    key: str
    value: dict[str, Any]
    event_time: datetime
    publish_time: datetime

    def encoded_value(self) -> bytes:
        return json.dumps(self.value, sort_keys=True, default=json_number).encode()


def json_number(value: object) -> float:
    """A decimal amount written as a JSON number, the way payment services send money.

    `json` writes numbers only from int and float, and writes a float as its shortest text, which is the
    decimal itself for up to 15 significant digits: the wire carries `0.1`, never a binary approximation.
    """
    if isinstance(value, Decimal) and value.is_finite() and len(value.as_tuple().digits) <= 15:
        return float(value)
    raise TypeError(f"{value!r} cannot be written as an exact JSON number")


@dataclass
class Rates:
    """Events per simulated hour, and the share of published events that go wrong the way streams do."""

    creates: int = 12
    updates: int = 20
    deletes: int = 2
    transactions: int = 60
    duplicate_share: float = 0.02
    late_share: float = 0.03


@dataclass
class SourceSystem:
    """Customer and card services; `customers` is the ground truth of the customer service."""

    seed: int = 7
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    rates: Rates = field(default_factory=Rates)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: dict[str, dict[str, Any]] = field(default_factory=dict)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    changes: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._next_customer = 1
        self._next_transaction = 1
        self._held_back: list[Event] = []
        # The customer ids in sorted order, kept as customers come and go: choosing from `sorted(customers)`
        # sorted every id for every event, so an hour of 1M events took more than 15 minutes to simulate.
        self._ids = sorted(self.customers)

    # -- the customer service -------------------------------------------------------------------
    def _customer_event(self, operation: str, customer: dict[str, Any], at: datetime) -> Event:
        value = (
            dict(customer)
            if operation != "delete"
            else {
                "customer_id": customer["customer_id"],
                "version": customer["version"],
                "updated_at": customer["updated_at"],
            }
        )
        return Event(CUSTOMER_TOPICS[operation], customer["customer_id"], value, at, at)

    def _create(self, at: datetime) -> Event:
        customer_id = f"C{self._next_customer:06d}"
        self._next_customer += 1
        first, last = self._random.choice(FIRST_NAMES), self._random.choice(LAST_NAMES)
        customer = {
            "customer_id": customer_id,
            "email": f"{first.lower()}.{last.lower()}.{customer_id.lower()}@example.com",
            "full_name": f"{first} {last}",
            "city": self._random.choice(CITIES),
            "segment": self._random.choice(SEGMENTS),
            "created_at": iso(at),
            "updated_at": iso(at),
            "version": 1,
        }
        self.customers[customer_id] = customer
        bisect.insort(self._ids, customer_id)
        return self._customer_event("create", customer, at)

    def _update(self, at: datetime) -> Event | None:
        if not self.customers:
            return None
        customer = self.customers[self._random.choice(self._ids)]
        attribute = self._random.choice(("city", "segment", "email"))
        if attribute == "city":
            customer["city"] = self._random.choice(CITIES)
        elif attribute == "segment":
            customer["segment"] = self._random.choice(SEGMENTS)
        else:
            customer["email"] = f"v{customer['version'] + 1}.{customer['email']}"
        customer["version"] += 1
        customer["updated_at"] = iso(at)
        return self._customer_event("update", customer, at)

    def _delete(self, at: datetime) -> Event | None:
        if len(self.customers) < 5:
            return None
        customer_id = self._random.choice(self._ids)
        del self._ids[bisect.bisect_left(self._ids, customer_id)]
        customer = self.customers.pop(customer_id)
        customer["version"] += 1
        customer["updated_at"] = iso(at)
        self.deleted[customer["customer_id"]] = customer
        return self._customer_event("delete", customer, at)

    # -- the card service -----------------------------------------------------------------------
    def _transaction(self, at: datetime) -> Event | None:
        if not self.customers:
            return None
        customer_id = self._random.choice(self._ids)
        transaction_id = f"T{self._next_transaction:08d}"
        transaction: dict[str, Any] = {
            "transaction_id": transaction_id,
            "customer_id": customer_id,
            # Money is exact: whole cents, never a float (the ground truth sums them exactly).
            "amount": Decimal(round(self._random.lognormvariate(3.0, 0.8) * 100)).scaleb(-2),
            "currency": self._random.choices(CURRENCIES, weights=(6, 2, 2))[0],
            "merchant_category": self._random.choice(MERCHANT_CATEGORIES),
            "occurred_at": iso(at),
            "sequence_number": self._next_transaction,
        }
        self._next_transaction += 1
        self.transactions.append(transaction)
        return Event(TRANSACTION_TOPIC, transaction_id, transaction, at, at)

    # -- the stream -----------------------------------------------------------------------------
    def hour(self, hour_start: datetime) -> list[Event]:
        """Events that happen in the hour from `hour_start`, in publish order (late ones held back)."""
        plan = (
            ["create"] * self.rates.creates
            + ["update"] * self.rates.updates
            + ["delete"] * self.rates.deletes
            + ["transaction"] * self.rates.transactions
        )
        moments = sorted(hour_start + timedelta(seconds=self._random.uniform(0, 3599.999)) for _ in plan)
        self._random.shuffle(plan)
        makers = {
            "create": self._create,
            "update": self._update,
            "delete": self._delete,
            "transaction": self._transaction,
        }
        events = [e for kind, at in zip(plan, moments, strict=True) if (e := makers[kind](at)) is not None]
        self.changes.extend(events)
        published = self._held_back
        self._held_back = []
        for event in events:
            roll = self._random.random()
            if roll < self.rates.late_share:
                late = event.publish_time + timedelta(hours=1)
                self._held_back.append(Event(event.topic, event.key, event.value, event.event_time, late))
                continue
            published.append(event)
            if roll < self.rates.late_share + self.rates.duplicate_share:
                published.append(event)
        return sorted(published, key=lambda e: e.publish_time)

    def hours(self, count: int) -> Iterator[list[Event]]:
        for index in range(count):
            yield self.hour(self.start + timedelta(hours=index))

    def flush_late(self) -> list[Event]:
        """Publish what is still held back, so a finite stream ends complete."""
        published, self._held_back = self._held_back, []
        return published

    def customer_page(self, page: int, page_size: int) -> dict[str, Any]:
        ordered = [self.customers[k] for k in sorted(self.customers)]
        items = ordered[(page - 1) * page_size : page * page_size]
        has_more = page * page_size < len(ordered)
        return {
            "items": items,
            "page": page,
            "next_page": page + 1 if has_more else None,
            "total": len(ordered),
        }
