"""Arrow arrays built from Python lists through their buffers, without `pa.array` or `pa.scalar`.

pyarrow's `pa.array` and `pa.scalar` probe for pandas on their first call and import it when it is
installed: about a second in a fresh process (a Dagster run or step process), more than landing a
hundred thousand records costs. Landing builds its columns with these instead; a test holds it to that.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import accumulate, compress, repeat
from operator import is_
from typing import Any

import platform_native
import pyarrow as pa

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def int64s(values: list[int], type: pa.DataType | None = None) -> pa.Array:
    """Integers (none missing) as an int64 array, cast to `type` (an integer or timestamp type) if given."""
    built = pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(platform_native.int64_buffer(values))])
    return built if type is None else built.cast(type)


def optional_int64s(values: list[int | None]) -> pa.Array:
    if values.count(None) == len(values):  # e.g. no event time of a batch given in epoch milliseconds
        return pa.nulls(len(values), pa.int64())
    present = [value is not None for value in values]
    if all(present):
        return int64s(values)  # type: ignore[arg-type]
    filled = [0 if value is None else value for value in values]
    return pa.Array.from_buffers(
        pa.int64(),
        len(values),
        [_validity(present), pa.py_buffer(platform_native.int64_buffer(filled))],
        null_count=present.count(False),
    )


def timestamps(moments: list[datetime], type: pa.DataType) -> pa.Array:
    """Time zone aware datetimes as a timestamp array of `type` (microseconds or coarser)."""
    if len(set(moments)) == 1:  # one moment for a whole batch (when it landed)
        return int64s([(moments[0] - EPOCH) // MICROSECOND] * len(moments), pa.timestamp("us", tz="UTC")).cast(type)
    return int64s([(moment - EPOCH) // MICROSECOND for moment in moments], pa.timestamp("us", tz="UTC")).cast(type)


def timestamp_scalar(moment: datetime, type: pa.DataType) -> pa.Scalar:
    return timestamps([moment], type)[0]


def datetimes(values: pa.Array) -> list[datetime]:
    """A timestamp array (none missing) as time zone aware datetimes (`to_pylist` imports pandas for zones)."""
    micros = values.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
    return [EPOCH + value * MICROSECOND for value in micros]


def repeated_moments(values: pa.ChunkedArray) -> list[datetime | None]:
    """A timestamp column whose values repeat (when rows were landed: one moment per commit) as time zone
    aware datetimes, each distinct one built once (`to_pylist` imports pandas for zones)."""
    dictionary = values.combine_chunks().dictionary_encode()  # nulls stay in the indices, not the values
    distinct = datetimes(dictionary.dictionary)
    return [None if index is None else distinct[index] for index in dictionary.indices.to_pylist()]


def binaries(values: list[bytes | None], type: pa.DataType | None = None) -> pa.Array:
    """Byte strings (None for missing) as a binary array cast to `type` (binary or string, when every
    value is UTF-8: the cast checks), its buffers laid out in C."""
    offsets, data, validity, nulls = platform_native.binary_buffers(values)
    layout = pa.binary() if len(offsets) == 4 * (len(values) + 1) else pa.large_binary()
    built = pa.Array.from_buffers(
        layout,
        len(values),
        [None if validity is None else pa.py_buffer(validity), pa.py_buffer(offsets), pa.py_buffer(data)],
        null_count=nulls,
    )
    wanted = type or pa.binary()
    return built if wanted == layout else built.cast(wanted)


def strings(values: list[str | None]) -> pa.Array:
    """Python strings (None for missing) as a string array; one encode for the whole list when it is ASCII."""
    if values.count(None) == len(values):  # e.g. the `_extra` of a batch without unknown fields
        return pa.nulls(len(values), pa.string())
    present = [value is not None for value in values]
    text = "".join(values if all(present) else compress(values, present))  # type: ignore[arg-type]
    if text.isascii():  # then each string's length is its length in bytes
        return _laid_out(pa.large_utf8(), values, present, text.encode()).cast(pa.string())
    return binaries([None if value is None else value.encode() for value in values], pa.string())


def _laid_out(type: pa.DataType, values: list[Any], present: list[bool], data: bytes) -> pa.Array:
    """A variable-width array of `values`, whose bytes lie one after another in `data`."""
    complete = all(present)
    lengths = map(len, values) if complete else (0 if value is None else len(value) for value in values)
    offsets = pa.py_buffer(array("q", accumulate(lengths, initial=0)))
    return pa.Array.from_buffers(
        type,
        len(values),
        [None if complete else _validity(present), offsets, pa.py_buffer(data)],
        null_count=present.count(False),
    )


def repeated_strings(values: list[str]) -> pa.Array:
    """Strings that repeat (a batch's topics): each distinct one encoded once, then the column decoded."""
    return repeated(values, strings)


def repeated(
    values: list[Any], build: Callable[[list[Any]], pa.Array], key: Callable[[Any], Any] | None = None
) -> pa.Array:
    """`values` that repeat as an array, each distinct one (by `key`: `id` for shared objects, or the
    value itself) built once by `build` and repeated by Arrow."""
    if values and (
        values.count(values[0]) == len(values) if key is None else all(map(is_, values, repeat(values[0])))
    ):  # one value for the batch: its topic (a new string object per consumed message), its hour
        return pa.repeat(build(values[:1])[0], len(values))
    keys = values if key is None else list(map(key, values))
    distinct = dict(zip(keys, values, strict=True))
    index = dict(zip(distinct, range(len(distinct)), strict=True))
    return build(list(distinct.values())).take(int64s(list(map(index.__getitem__, keys))))


def _validity(present: list[bool]) -> pa.Buffer:
    """The bitmap of a boolean array cast from one byte per flag: Arrow packs the bits."""
    flags = pa.Array.from_buffers(pa.uint8(), len(present), [None, pa.py_buffer(bytes(present))])
    return flags.cast(pa.bool_()).buffers()[1]
