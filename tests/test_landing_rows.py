"""The landing table is an exact archive: every record read back from its rows is the record consumed."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platform_assets.lib.archive import landing_records, landing_rows, last_offsets
from platform_assets.lib.contract import load_contracts
from platform_assets.lib.records import LandingRecord
from platform_assets.partitions import DEFAULT_PARTITIONS

pytestmark = pytest.mark.unit

TRANSACTIONS = next(c for c in load_contracts() if c.name == "card_transactions")
TOPIC = TRANSACTIONS.source.topics[0]
LANDED_AT = datetime(2026, 1, 2, tzinfo=UTC)
VALUE = {"transaction_id": "T1", "customer_id": "C1", "amount": 1.0, "occurred_at": "2026-01-01T10:15:00Z"}

headers = st.lists(st.tuples(st.text(max_size=8), st.one_of(st.none(), st.binary(max_size=8))), max_size=3)
records = st.lists(
    st.builds(
        LandingRecord,
        topic=st.sampled_from([TOPIC, "other"]),
        partition=st.integers(0, 3),
        offset=st.integers(0, 2**40),
        timestamp_ms=st.integers(1_767_225_600_000, 1_767_225_600_000 + 10**9),
        key=st.one_of(st.none(), st.binary(max_size=8)),
        value=st.one_of(st.none(), st.binary(max_size=16), st.just(json.dumps(VALUE).encode())),
        headers=headers.map(tuple),
    ),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(records)
def test_every_landed_row_reads_back_as_the_record_consumed(batch):
    table = landing_rows(TRANSACTIONS, batch, None, LANDED_AT, DEFAULT_PARTITIONS.first_hour)
    assert landing_records(table) == [record._replace(landed_at=LANDED_AT) for record in batch]
    expected_last: dict[tuple[str, int], int] = {}
    for record in batch:
        position = (record.topic, record.partition)
        expected_last[position] = max(expected_last.get(position, -1), record.offset)
    assert last_offsets(batch) == expected_last


@settings(max_examples=50, deadline=None)
@given(records, headers.filter(bool).map(tuple))
def test_records_with_the_same_number_of_headers_each_read_back_with_their_own(batch, shared):
    """A producer that sets headers sets them on every record (the read cuts them in equal slices)."""
    batch = [record._replace(headers=shared[::-1] if index % 2 else shared) for index, record in enumerate(batch)]
    table = landing_rows(TRANSACTIONS, batch, None, LANDED_AT, DEFAULT_PARTITIONS.first_hour)
    assert landing_records(table) == [record._replace(landed_at=LANDED_AT) for record in batch]


def test_a_record_is_filed_under_its_event_hour_and_without_one_under_its_kafka_hour():
    good = LandingRecord(TOPIC, 0, 0, 1_767_225_600_000, b"T1", json.dumps(VALUE).encode())
    broken = LandingRecord(TOPIC, 0, 1, 1_767_225_600_000, b"T2", b"{not json")
    table = landing_rows(TRANSACTIONS, [good, broken], None, LANDED_AT, DEFAULT_PARTITIONS.first_hour)
    assert table["_event_hour"].to_pylist() == [datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)]


def test_landing_rows_leave_pandas_unimported():
    """pyarrow imports pandas on the first `pa.array` or `pa.scalar` of Python values: about a second of
    every landing run process. Landing builds its rows without them (see lib/columns.py)."""
    script = (
        "import json, sys\n"
        "from datetime import UTC, datetime\n"
        "from platform_assets.lib.archive import landing_rows, offset_spans\n"
        "from platform_assets.lib.contract import load_contracts\n"
        "from platform_assets.lib.records import LandingRecord\n"
        "from platform_assets.partitions import DEFAULT_PARTITIONS\n"
        "contract = next(c for c in load_contracts() if c.name == 'card_transactions')\n"
        f"value = json.dumps({VALUE!r}).encode()\n"
        "records = [LandingRecord('card-transactions', 0, 0, 1_767_225_600_000, b'k', value, (('h', b'v'),)),\n"
        "           LandingRecord('card-transactions', 1, 5, 1_767_225_600_000, None, b'{bad', ())]\n"
        "landed_at = datetime(2026, 1, 2, tzinfo=UTC)\n"
        "table = landing_rows(contract, records, None, landed_at, DEFAULT_PARTITIONS.first_hour)\n"
        "spans = {('card-transactions', 0): (0, 0), ('card-transactions', 1): (5, 5)}\n"
        "assert table.num_rows == 2 and offset_spans(records) == spans\n"
        "# A producer's headers on every record: each distinct list is built once and repeated.\n"
        "same = [record._replace(headers=(('h', b'v'),)) for record in records * 2]\n"
        "assert landing_rows(contract, same, None, landed_at, DEFAULT_PARTITIONS.first_hour).num_rows == 4\n"
        "assert 'pandas' not in sys.modules, 'landing imported pandas'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    finished = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), headers, st.dictionaries(st.text(max_size=8), st.text(max_size=8)))))
def test_consumed_headers_read_as_name_and_bytes_pairs_whatever_form_the_client_gives(consumed):
    """A consumer gives each message's headers as a list of (name, bytes or None) pairs, or None; the
    fast path takes those as they are, and any other form (a dict, text values) is converted pair by pair."""
    from platform_assets.landing import _headers

    expected = [
        tuple(
            (name, value.encode() if isinstance(value, str) else value)
            for name, value in (given.items() if isinstance(given, dict) else given or ())
        )
        for given in consumed
    ]
    assert _headers(consumed) == expected
    assert all(type(pairs) is tuple for pairs in _headers(consumed))


@settings(deadline=None)  # its first example imports landing
@given(st.lists(st.sampled_from([None, [], [("source", b"a")], [("source", b"a"), ("type", b"t")]]), max_size=30))
def test_equal_consumed_header_lists_share_one_tuple(consumed):
    """A batch keeps one tuple per distinct header list, not one per record (each list arrives as a
    new object from the consumer)."""
    from platform_assets.landing import _headers

    fresh = [None if given is None else [tuple(pair) for pair in given] for given in consumed]
    read = _headers(fresh)
    assert len(set(map(id, read))) == len(set(read))


class _ConsumerGiving:
    """A consumer whose next `consume` gives `messages`."""

    def __init__(self, messages):
        self.messages = messages

    def consume(self, num_messages, timeout):
        return self.messages


def test_a_consumed_batch_with_an_error_fails_naming_the_partition_and_what_to_do():
    """The broker reports an error in place of a message (here: the offsets landing resumes after are
    gone); the batch is not landed and the run says why, whichever message carries it."""
    from confluent_kafka import KafkaError, Message

    from platform_assets.landing import LandingConflictError, _consume

    fine = [Message(topic=TOPIC, partition=0, offset=offset, value=b"{}", timestamp=(1, 0)) for offset in range(3)]
    gone = Message(topic=TOPIC, partition=2, offset=7, error=KafkaError(KafkaError.OFFSET_OUT_OF_RANGE))
    with pytest.raises(
        LandingConflictError, match=rf"resumes {TOPIC}\[2\] after offsets that the broker no longer has"
    ):
        _consume(TRANSACTIONS, _ConsumerGiving([*fine, gone]), 10)
    consumed = _consume(TRANSACTIONS, _ConsumerGiving(fine), 10)
    assert consumed is not None and consumed.offsets == [0, 1, 2]
