NOT_READ: int
MOMENT: int
FALLBACK: int

def event_hours(values: list[bytes | None], field: bytes, max_bytes: int) -> tuple[bytes, bytes]: ...
