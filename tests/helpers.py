"""Helpers shared by the tests (fixtures live in conftest.py)."""

import json
from http.server import BaseHTTPRequestHandler

from platform_assets.partitions import range_tags


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler for the tests' HTTP stand-ins: JSON answers, no request log."""

    content_type = "application/json"

    def answer(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        encoded = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {**(headers or {}), "Content-Type": self.content_type}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, format: str, *args: object) -> None:
        return


def run(defs, instance, job: str, first: str, last: str):
    """Run a job over a partition range in one run (as a single-run backfill does)."""
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=range_tags(first, last), raise_on_error=False
    )
