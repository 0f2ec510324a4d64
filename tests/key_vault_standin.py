"""An Azure Key Vault stand-in (secrets data plane) over HTTPS, as azure-keyvault-secrets requires.

Like the service, it answers a request without a valid bearer token with 401 and the
`WWW-Authenticate: Bearer authorization=…, resource=…` challenge the SDK follows, serves
`GET /secrets/{name}[/{version}]` as a secret bundle, and answers an unknown name with the
`SecretNotFound` error the SDK maps to ResourceNotFoundError.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

from helpers import JsonHandler

TENANT = "00000000-0000-0000-0000-000000000001"


@dataclass
class Vault:
    secrets: dict[str, str]
    token: str
    url: str = ""


@contextmanager
def serve_vault(vault: Vault, certificate: Path, key: Path) -> Iterator[Vault]:
    class Handler(JsonHandler):
        content_type = "application/json; charset=utf-8"

        def do_GET(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            if self.headers.get("Authorization") != f"Bearer {vault.token}":
                challenge = f'Bearer authorization="{vault.url}/{TENANT}", resource="https://vault.azure.net"'
                message = "AKV10000: Request is missing a Bearer or PoP token."
                self.answer(
                    401, {"error": {"code": "Unauthorized", "message": message}}, {"WWW-Authenticate": challenge}
                )
            elif parts[0] == "secrets" and len(parts) in (2, 3) and parts[1] in vault.secrets:
                bundle = {
                    "value": vault.secrets[parts[1]],
                    "id": f"{vault.url}/secrets/{parts[1]}/0123456789abcdef",
                    "attributes": {"enabled": True, "created": 1767225600, "updated": 1767225600},
                }
                self.answer(200, bundle)
            else:
                message = f"A secret with (name/id) {parts[-1]} was not found in this key vault."
                self.answer(404, {"error": {"code": "SecretNotFound", "message": message}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    vault.url = f"https://localhost:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield vault
    finally:
        server.shutdown()
        server.server_close()
