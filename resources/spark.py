"""Spark through the Spark Connect API: an embedded Sail server by default, any endpoint in production.

`SPARK_REMOTE=sc://spark-connect.spark.svc:15002` points the platform at Spark on AKS (or any Spark
Connect server with Delta); otherwise one Sail server is started in this process on 127.0.0.1 and
shared by every asset of the process. The transforms in `spark/` never know which one they talk to.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource

_lock = threading.Lock()
_embedded: dict[str, Any] = {}
# One session per endpoint: `getOrCreate` would hand back the process's active session whatever
# endpoint is asked for, so a second endpoint in the same process would silently talk to the first.
_sessions: dict[str, Any] = {}


class SparkUnavailableError(RuntimeError):
    """The Spark Connect server did not answer; a transient failure that a retry may fix."""


def use_client_only_spark_home() -> None:
    """Let PySpark's Connect client (and Great Expectations, which probes PySpark) import in any process.

    Both import PySpark's test utilities, which look for a Spark installation and call sys.exit when
    there is none; the Connect client needs no Spark home, so the package directory stands in for it.
    """
    if "SPARK_HOME" not in os.environ:
        spec = find_spec("pyspark")
        if spec is not None and spec.origin is not None:
            os.environ["SPARK_HOME"] = str(Path(spec.origin).parent)


def _stop_embedded() -> None:
    server = _embedded.pop("server", None)
    if server is not None:
        server.stop()


CHECKPOINT_PATH_VARIABLE = "SAIL_EXECUTION__CHECKPOINT__PATH"


def start_sail_server(configuration: dict[str, str] | None = None) -> Any:
    """A Sail Spark Connect server on loopback, started, with `configuration` (Sail's environment
    variables, which it reads when the server is created) and a checkpoint directory.

    The merges checkpoint (`DataFrame.localCheckpoint`) what they use more than once; Sail writes
    checkpoints to `SAIL_EXECUTION__CHECKPOINT__PATH` and refuses them without one. Unless that names a
    path, the server gets a directory of its own, removed when the process exits (Sail keeps checkpoint
    files until then).
    """
    from pysail.spark import SparkConnectServer

    settings = dict(configuration or {})
    if not os.environ.get(CHECKPOINT_PATH_VARIABLE) and CHECKPOINT_PATH_VARIABLE not in settings:
        checkpoints = tempfile.mkdtemp(prefix="sail-checkpoints-")
        atexit.register(shutil.rmtree, checkpoints, ignore_errors=True)
        settings[CHECKPOINT_PATH_VARIABLE] = Path(checkpoints).as_uri()
    before = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        server = SparkConnectServer("127.0.0.1", 0)
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    server.start(background=True)
    return server


def embedded_sail_remote() -> str:
    """Start (once per process) a Sail Spark Connect server on loopback and return its address."""
    with _lock:
        if "remote" not in _embedded:
            server = start_sail_server()
            _, port = server.listening_address
            _embedded.update(server=server, remote=f"sc://127.0.0.1:{port}")
            atexit.register(_stop_embedded)
        return _embedded["remote"]


def stop_session(remote: str) -> None:
    """Stop and forget this process's session on `remote`, before its server stops: an open session's
    client makes its cleanup calls when the process exits, and against a stopped server it retries them
    for minutes (2.5 minutes at the end of `make test`)."""
    with _lock:
        session = _sessions.pop(remote, None)
    if session is not None:
        session.stop()


class SparkResource(ConfigurableResource):
    """A SparkSession on the configured Spark Connect endpoint (embedded Sail when `remote` is empty)."""

    remote: str | None = None
    conf: dict[str, str] = {}
    # The Spark Connect client alone waits at least 10 minutes for a server that does not answer; with
    # Dagster's own retries of a transient failure on top, a run would hang for most of an hour. Six
    # retries wait about 70 s (backoff 50 ms x4 up to 60 s), enough for a server pod to restart.
    connect_retries: int = 6

    @classmethod
    def from_env(cls) -> SparkResource:
        return cls(remote=os.environ.get("SPARK_REMOTE") or None)

    def endpoint(self) -> str:
        """The Spark Connect URL this resource talks to (starting the embedded Sail server when that is it)."""
        return self.remote or embedded_sail_remote()

    def session(self) -> Any:
        use_client_only_spark_home()
        from pyspark.sql import SparkSession
        from pyspark.sql.connect.client.retries import DefaultPolicy

        remote = self.endpoint()
        try:
            with _lock:
                spark = _sessions.get(remote)
                if spark is None:
                    spark = _sessions[remote] = SparkSession.builder.remote(remote).create()
            spark.client.set_retry_policies([DefaultPolicy(max_retries=self.connect_retries)])
            spark.conf.set("spark.sql.session.timeZone", "UTC")
            for key, value in self.conf.items():
                spark.conf.set(key, value)
        except Exception as error:
            with _lock:
                unanswered = _sessions.pop(remote, None)
            if unanswered is not None:
                # The next attempt connects afresh. `stop` also stops it being pyspark's default and active
                # session (which `localCheckpoint` binds its result to); no release call to a server that
                # did not answer.
                unanswered.release_session_on_close = False
                unanswered.stop()
            raise SparkUnavailableError(f"Spark Connect at {remote} did not answer: {error}") from error
        return spark
