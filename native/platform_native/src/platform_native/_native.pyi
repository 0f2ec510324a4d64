from typing import Any

NOT_READ: int
MOMENT: int
FALLBACK: int

def event_hours(values: list[bytes | None], field: bytes, max_bytes: int) -> tuple[bytes, bytes]: ...
def int64_buffer(values: list[int]) -> bytes: ...
def binary_buffers(values: list[bytes | None]) -> tuple[bytes, bytes, bytes | None, int]: ...
def message_columns(
    messages: list[Any],
) -> (
    tuple[list[str], list[int], list[int], list[int], list[bytes | None], list[bytes | None], list[Any]] | int | None
): ...
def offset_spans(
    topics: list[str], partitions: list[int], offsets: list[int]
) -> dict[tuple[str, int], tuple[int, int]]: ...
