"""Retries for transient failures only: an unreachable broker or Spark server is retried, bad data is not
(it would fail the same way again, and a person has to act on it)."""

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import RetryRequested

from resources.kafka import KafkaUnavailableError
from resources.spark import SparkUnavailableError

MAX_RETRIES = 3
SECONDS_BETWEEN_RETRIES = 10


def is_transient(error: BaseException) -> bool:
    if isinstance(error, KafkaUnavailableError | SparkUnavailableError):
        return True
    # Spark Connect reports a server it cannot reach as a gRPC UNAVAILABLE status.
    return type(error).__name__ == "SparkConnectGrpcException" and "UNAVAILABLE" in str(error)


@contextmanager
def retry_transient_failures() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        if is_transient(error):
            raise RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=SECONDS_BETWEEN_RETRIES) from error
        raise
