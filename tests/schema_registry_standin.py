"""A schema registry stand-in that demands credentials: `GET /schemas/ids/{id}`, `GET /subjects` and
`GET /subjects/{subject}/versions/{version|latest}`.

It answers like Confluent Schema Registry (`{"schema": ...}`, errors as `{"error_code", "message"}`)
and requires HTTP Basic (`user`, `password`) or a Bearer token on every request; with a certificate
and key it serves HTTPS. Every request's Authorization header is recorded for the tests.
"""

from __future__ import annotations

import base64
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

from helpers import JsonHandler


@dataclass
class Registry:
    schemas: dict[int, str]
    user: str
    password: str
    token: str
    url: str = ""
    authorizations: list[str | None] = field(default_factory=list)
    # Each subject's schema ids, version 1 first.
    subjects: dict[str, list[int]] = field(default_factory=dict)

    def accepts(self, authorization: str | None) -> bool:
        basic = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return authorization in (basic, f"Bearer {self.token}")


@contextmanager
def serve_registry(registry: Registry, certificate: Path | None = None, key: Path | None = None) -> Iterator[Registry]:
    class Handler(JsonHandler):
        content_type = "application/vnd.schemaregistry.v1+json"

        def do_GET(self) -> None:
            authorization = self.headers.get("Authorization")
            registry.authorizations.append(authorization)
            path = self.path.split("?")[0].rstrip("/")
            if not registry.accepts(authorization):
                challenge = {"WWW-Authenticate": 'Basic realm="schema-registry"'}
                self.answer(401, {"error_code": 401, "message": "Unauthorized"}, challenge)
            elif path == "/subjects":
                self.answer(200, sorted(registry.subjects))
            elif path.startswith("/subjects/") and "/versions/" in path:
                self.answer_version(*path.removeprefix("/subjects/").split("/versions/"))
            elif path.startswith("/schemas/ids/") and int(path.rsplit("/", 1)[1]) in registry.schemas:
                self.answer(200, {"schema": registry.schemas[int(path.rsplit("/", 1)[1])]})
            else:
                self.answer(404, {"error_code": 40403, "message": "Schema not found"})

        def answer_version(self, subject: str, version: str) -> None:
            ids = registry.subjects.get(subject, [])
            number = len(ids) if version == "latest" else int(version)
            if not 1 <= number <= len(ids):
                self.answer(404, {"error_code": 40401, "message": f"Subject '{subject}' not found."})
                return
            schema_id = ids[number - 1]
            body = {"subject": subject, "version": number, "id": schema_id, "schema": registry.schemas[schema_id]}
            self.answer(200, body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if certificate and key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificate, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    registry.url = f"{scheme}://localhost:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
