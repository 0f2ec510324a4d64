"""What the platform does in C for every record of a batch (see `_native.c`): the buffers of Arrow
columns of Python values, a batch of Kafka messages as columns, a batch's offset spans, and landing's
event-time scan of JSON payloads."""

from platform_native._native import (
    FALLBACK,
    MOMENT,
    NOT_READ,
    binary_buffers,
    event_hours,
    int64_buffer,
    message_columns,
    offset_spans,
)

__all__ = [
    "FALLBACK",
    "MOMENT",
    "NOT_READ",
    "binary_buffers",
    "event_hours",
    "int64_buffer",
    "message_columns",
    "offset_spans",
]
