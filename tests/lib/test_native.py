"""`platform_native`: Arrow columns built in C equal those Arrow builds from the same Python values, a
batch's offset spans are those Python finds, and the event-time scan reads a payload's event hour
exactly as orjson and `datetime.fromisoformat` do, or leaves the payload to them (`raw` decodes with
those and must file every record under the hour landing chose)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import orjson
import platform_native
import pyarrow as pa
import pytest
from helpers import accessor_columns
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.unit

FIELD = "ts"
MAX_BYTES = 4096
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_MS = (-62_135_596_800_000, 253_402_300_799_999)


def read_by_python(value: bytes | None) -> tuple[str, datetime | None]:
    """What the platform's Python path makes of a payload: ("invalid", None) where orjson refuses it or
    it is no JSON object, else ("read", the event time's UTC hour or None)."""
    if value is None or len(value) > MAX_BYTES:
        return "read", None
    try:
        payload = orjson.loads(value)
    except orjson.JSONDecodeError:
        return "invalid", None
    if not isinstance(payload, dict):
        return "invalid", None
    wire = payload.get(FIELD)
    moment = None
    if type(wire) is int and EPOCH_MS[0] <= wire <= EPOCH_MS[1]:
        moment = EPOCH + timedelta(milliseconds=wire)
    elif type(wire) is str:
        try:
            parsed = datetime.fromisoformat(wire)
            moment = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except (ValueError, OverflowError):
            moment = None
    return "read", None if moment is None else moment.replace(minute=0, second=0, microsecond=0)


def scanned(values: list[bytes | None]) -> list[tuple[int, datetime | None]]:
    kinds, hours = platform_native.event_hours(values, FIELD.encode(), MAX_BYTES)
    micros = memoryview(hours).cast("q")
    return [
        (kind, EPOCH + timedelta(microseconds=micros[index]) if kind == platform_native.MOMENT else None)
        for index, kind in enumerate(kinds)
    ]


def assert_read_alike(values: list[bytes | None]) -> list[int]:
    """Each payload the scan reads is read the same by Python; returns the scan's kinds."""
    kinds = []
    for value, (kind, hour) in zip(values, scanned(values), strict=True):
        kinds.append(kind)
        if kind == platform_native.FALLBACK:
            continue
        assert read_by_python(value) == ("read", hour), value
    return kinds


ISO_TEXTS = st.builds(
    lambda year, month, day, separator, hour, minute, second, fraction, zone: (
        f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}"
        + ("" if second is None else f":{second:02d}" + fraction)
        + zone
    ),
    st.sampled_from([1, 2, 1969, 1970, 2000, 2024, 2026, 2100, 9998, 9999]),
    st.integers(0, 13),
    st.integers(0, 32),
    st.sampled_from(["T", " ", "t"]),
    st.integers(0, 25),
    st.integers(0, 61),
    st.none() | st.integers(0, 61),
    st.sampled_from(["", ".1", ".123456", ".1234567", "."]),
    st.sampled_from(
        ["", "Z", "z", "+00:00", "-03:30", "+05:45", "+23:59", "+24:00", "-00:60", "+0530", "+05", "+5:30"]
    ),
) | st.sampled_from(["2026-01-01", "2026-01-01T10", "20260101T101500Z", "2026-W01-3T10:00", "yesterday", ""])

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | ISO_TEXTS
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
# Event times that are real dates, in the forms the scan reads itself.
READABLE_TIMES = st.builds(
    lambda moment, separator, digits, zone: moment.isoformat(separator, "auto" if digits else "minutes") + zone,
    st.datetimes(datetime(2, 1, 1), datetime(9998, 12, 31)),
    st.sampled_from(["T", " "]),
    st.booleans(),
    st.sampled_from(["", "Z", "+00:00", "-03:30", "+13:45"]),
)
EVENT_TIMES = (
    READABLE_TIMES
    | READABLE_TIMES
    | ISO_TEXTS
    | st.integers(EPOCH_MS[0] - 2, EPOCH_MS[1] + 2)
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([EPOCH_MS[0], EPOCH_MS[1], -1, 0, 1_767_225_600_000])
    | JSON_VALUES
)


ESCAPED_FIELD = object()  # the field's name written with an escape, "t\u0073": orjson reads it as the field


@st.composite
def payloads(draw) -> bytes | None:
    members = draw(st.lists(st.tuples(st.text(max_size=4), JSON_VALUES), max_size=4))
    for _ in range(draw(st.integers(0, 2))):  # the event time, sometimes twice (orjson keeps the last)
        name = draw(st.sampled_from([FIELD, FIELD, FIELD, ESCAPED_FIELD, "ts "]))
        members.insert(draw(st.integers(0, len(members))), (name, draw(EVENT_TIMES)))
    ensure_ascii = draw(st.booleans())
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t")]))
    text = (
        "{"
        + separators[0].join(
            (r'"t\u0073"' if name is ESCAPED_FIELD else json.dumps(name, ensure_ascii=ensure_ascii))
            + separators[1]
            + json.dumps(value, ensure_ascii=ensure_ascii)
            for name, value in members
        )
        + "}"
    )
    text = (
        draw(st.sampled_from(["", "", "", " ", "\n", "\ufeff"]))
        + text
        + draw(st.sampled_from(["", "", "", " \r\n", "x", "{}"]))
    )
    value = text.encode("utf-8", "surrogatepass")
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):  # a byte changed, removed or added anywhere
        at = draw(st.integers(0, len(value)))
        byte = draw(
            st.sampled_from([b"", b"\\", b'"', b"{", b"}", b",", b":", b"0", b"e", b"\x00", b"\xff", b"\xc3", b"\x7f"])
        )
        value = value[:at] + byte + value[at + draw(st.integers(0, 1)) :]
    oversized = value + b" " * MAX_BYTES  # orjson would read it; the platform refuses its size
    return draw(st.sampled_from([value, value, value, value, None, oversized]))


@settings(max_examples=600, deadline=None)
@given(st.lists(payloads(), max_size=6))
def test_a_payload_the_scan_reads_is_read_the_same_by_orjson_and_fromisoformat(values):
    assert_read_alike(values)


def test_the_usual_payloads_are_read_by_the_scan_and_not_left_to_python():
    """Payloads as services and flattened Debezium records send them, with names in any language and
    escaped quotes, take no Python: without this the scan would be exact and useless."""
    values = [
        json.dumps(
            {"transaction_id": f"T{i}", "amount": 12.5, "occurred": None, FIELD: "2026-01-01T10:59:59Z"}
        ).encode()
        for i in range(3)
    ] + [
        json.dumps(
            {"name": 'Zoë "Zo" Ünal 李', "tags": ["a", {"b": [1, -2.5e-3, True]}], FIELD: 1_767_261_600_123},
            ensure_ascii=False,
        ).encode(),
        json.dumps({"name": "Zoë", FIELD: "2026-01-01 10:15:00.123456+05:30"}).encode(),
        json.dumps({"note": "ok \U0001f600", FIELD: "2026-01-01T10:15"}).encode(),  # escaped as a surrogate pair
        json.dumps({"name": "no time"}).encode(),
        json.dumps({FIELD: 1.5, "x": 1}).encode(),
        json.dumps({FIELD: None}).encode(),
        json.dumps({FIELD: 10**30}).encode(),
        b"{}",
        None,
    ]
    kinds = assert_read_alike(values)
    assert kinds == [platform_native.MOMENT] * 6 + [platform_native.NOT_READ] * 6
    hours = [hour for _, hour in scanned(values)]
    assert hours[0] == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert hours[3] == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert hours[4] == datetime(2026, 1, 1, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        b'{"ts": "2026-01-01T10:00:00Z", "x": NaN}',
        b'{"ts": "2026-01-01T10:00:00Z", "x": 1e999}',
        b'{"ts": "2026-01-01T10:00:00Z", "x": 1' + b"0" * 400 + b"}",
        b'{"ts": "2026-01-01T10:00:00Z", "x": "\xff"}',
        b'{"ts": "2026-01-01T10:00:00Z", "x": "\xed\xa0\x80"}',  # a surrogate in UTF-8
        b'{"ts": "2026-01-01T10:00:00Z", "x": "\\ud800"}',
        b'{"ts": "2026-01-01T10:00:00Z", "x": "\\ud83d\\u0041"}',
        b'{"ts": "2026-01-01T10:00:00Z", "x": "\\ude00"}',
        b'{"ts": "2026-01-01T10:00:00Z", "x": ' + b"[" * 1100 + b"]" * 1100 + b"}",
        b'{"ts": "2026-01-01T10:00:00Z", "x": 01}',
        b'{"ts": "2026-01-01T10:00:00Z",}',
        b'{"t\\u0073": "2026-01-01T10:00:00Z"}',
        b'{"ts": "2026-02-29T10:00:00Z"}',
        b'{"ts": "2026-01-01T10:00:00+24:00"}',
        b'{"ts": "0001-01-01T00:00:00+01:00"}',
        b'\xef\xbb\xbf{"ts": "2026-01-01T10:00:00Z"}',
        b'[{"ts": "2026-01-01T10:00:00Z"}]',
    ],
)
def test_what_the_scan_cannot_read_exactly_is_left_to_python(value):
    """orjson refuses these, reads them in a way the scan does not follow, or Python decides the date."""
    [(kind, _)] = scanned([value])
    assert kind == platform_native.FALLBACK


def test_a_payload_that_is_not_bytes_is_refused_by_name():
    with pytest.raises(TypeError, match="payload 1 is str"):
        platform_native.event_hours([b"{}", "{}"], FIELD.encode(), MAX_BYTES)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.none() | st.binary(max_size=20), max_size=40), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=40)
)
def test_columns_built_in_c_equal_the_columns_arrow_builds(values, integers):
    from platform_assets.lib import columns

    assert columns.binaries(values).equals(pa.array(values, pa.binary()))
    assert columns.binaries(values, pa.large_binary()).equals(pa.array(values, pa.large_binary()))
    assert columns.int64s(integers).equals(pa.array(integers, pa.int64()))


def test_values_of_another_type_are_refused_by_position():
    with pytest.raises(TypeError, match="value 1 is str"):
        platform_native.binary_buffers([b"a", "b"])
    with pytest.raises(OverflowError):
        platform_native.int64_buffer([2**63])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "ä"]), st.integers(0, 3), st.integers(-5, 2**62)), max_size=60))
def test_offset_spans_are_the_lowest_and_highest_offset_of_each_topic_partition(records):
    # Each topic a new object per record, as a consumer gives them: equal names are one topic.
    topics = ["".join(topic) for topic, _, _ in records]
    spans: dict[tuple[str, int], tuple[int, int]] = {}
    for topic, partition, offset in records:
        first, last = spans.get((topic, partition), (offset, offset))
        spans[(topic, partition)] = (min(first, offset), max(last, offset))
    partitions, offsets = [partition for _, partition, _ in records], [offset for _, _, offset in records]
    assert platform_native.offset_spans(topics, partitions, offsets) == spans


def test_offset_spans_refuse_columns_that_do_not_match():
    with pytest.raises(ValueError, match="of one length"):
        platform_native.offset_spans(["a"], [0, 1], [5])
    with pytest.raises(TypeError, match="topic 1 is bytes"):
        platform_native.offset_spans(["a", b"a"], [0, 0], [5, 6])


kafka_messages = st.lists(
    st.fixed_dictionaries(
        {
            "topic": st.sampled_from(["a", "b", "ä"]),
            "partition": st.integers(0, 11),
            "offset": st.integers(0, 2**62),
            "key": st.none() | st.binary(max_size=8),
            "value": st.none() | st.binary(max_size=16),
            "headers": st.none() | st.lists(st.tuples(st.text(max_size=4), st.none() | st.binary(max_size=4))),
            "timestamp": st.tuples(st.integers(0, 2), st.integers(-1, 2**45)),
        }
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(kafka_messages)
def test_message_columns_read_from_the_fields_equal_what_the_accessors_give(fields):
    from confluent_kafka import Message

    # Each topic a new string per message, as a consumer gives them.
    messages = [Message(**{**given, "topic": "".join(given["topic"])}) for given in fields]
    read = platform_native.message_columns(messages)
    assert read == accessor_columns(messages)
    topics = read[0]
    assert all(later is earlier for earlier, later in pairwise(topics) if later == earlier)  # shared


def test_a_topic_a_program_set_to_another_type_reads_as_it_is():
    """`Message.set_topic` takes any object; such a topic is never taken for an equal-looking name."""
    from confluent_kafka import Message

    odd = Message(topic="a", partition=0, offset=2)
    odd.set_topic(b"a")
    messages = [Message(topic="a", partition=0, offset=1), odd, Message(topic="a", partition=0, offset=3)]
    assert platform_native.message_columns(messages) == accessor_columns(messages)


def test_message_columns_give_the_first_message_with_an_error_by_position():
    from confluent_kafka import KafkaError, Message

    fine = Message(topic="a", partition=0, offset=1, value=b"{}")
    failed = Message(topic="a", partition=1, offset=2, error=KafkaError(KafkaError.OFFSET_OUT_OF_RANGE))
    assert platform_native.message_columns([fine, failed, fine, failed]) == 1


def test_messages_of_a_layout_the_module_does_not_know_are_left_to_the_accessors():
    """A list with a message of another type (a subclass may add fields; another confluent-kafka may
    reorder them) reads None: the caller takes the accessor methods."""
    from confluent_kafka import Message

    class Annotated(Message):
        pass

    plain = Message(topic="a", partition=0, offset=1)
    assert platform_native.message_columns([plain, Annotated(topic="a", partition=0, offset=2)]) is None
    assert platform_native.message_columns([Annotated(topic="a")]) is None
    assert platform_native.message_columns([]) is None
    with pytest.raises(TypeError, match="takes a list, not tuple"):
        platform_native.message_columns((plain,))
