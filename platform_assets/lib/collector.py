"""Python's cyclic garbage collector paused over work that allocates many containers and frees them all.

A batch of Kafka messages, payloads or rows is tens of thousands of objects the collector tracks. While
they live, their count triggers collections, and each full collection walks the whole heap (a Dagster
step process holds some 300k objects from its imports: 0.3-0.5 s a walk), only to find no cycle: they
are freed by reference counting when the batch is done.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off inside the block (if it was on); it runs again, as usual, after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
