"""Retries for transient failures only: an unreachable broker or Spark server, a Spark read whose files
an erasure vacuumed meanwhile, a Spark write whose table another writer committed to meanwhile, or an
operation the Spark server lost, is retried; bad data is not (it would fail the same way again, and a
person has to act on it)."""

import re
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import RetryRequested

from resources.kafka import KafkaUnavailableError
from resources.spark import SparkUnavailableError

MAX_RETRIES = 3
SECONDS_BETWEEN_RETRIES = 10
# A Spark job that planned a Delta version and then found one of its files gone: an erasure deleted the
# rows and vacuumed with retention 0 while the job ran. Sail says "Object at location ... not found",
# JVM Spark FileNotFoundException or FAILED_READ_FILE.FILE_NOT_EXIST. A retry plans the newest
# version, which no longer names the file (and no longer holds the person).
VANISHED_FILE = re.compile(r"Object at location \S+ not found|FileNotFoundException|FILE_NOT_EXIST")
# A Spark write whose table another writer committed to after the write planned its version (an erasure's
# delete, a command-line run outside the pools): Sail refuses any commit but an append then, with no retry
# of its own ("Failed to commit transaction: 0", delta-lake's MaxCommitAttempts); JVM Delta raises one of
# its concurrent-modification exceptions. A retry plans the newest version, the other commit included.
COMMIT_CONFLICT = re.compile(
    r"Failed to commit transaction: \d+|Concurrent(Append|DeleteRead|DeleteDelete|Transaction|Write)Exception"
    r"|DELTA_CONCURRENT_\w+|MetadataChangedException"
)

# Sail's executor answering a client that reattached to an operation it no longer holds (seen once in 168
# hourly runs in one process, as the merge of `current` read a table): nothing says whether the operation
# ran, and a step runs again to the same result (the merges are idempotent), so the step is retried.
LOST_OPERATION = re.compile(r"task context not found for operation")


def is_transient(error: BaseException) -> bool:
    if isinstance(error, KafkaUnavailableError | SparkUnavailableError):
        return True
    if not type(error).__module__.startswith("pyspark."):
        return False
    # Spark Connect reports a server it cannot reach as a gRPC UNAVAILABLE status.
    unreachable = type(error).__name__ == "SparkConnectGrpcException" and "UNAVAILABLE" in str(error)
    return unreachable or any(
        pattern.search(str(error)) for pattern in (VANISHED_FILE, COMMIT_CONFLICT, LOST_OPERATION)
    )


@contextmanager
def retry_transient_failures() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        if is_transient(error):
            raise RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=SECONDS_BETWEEN_RETRIES) from error
        raise
