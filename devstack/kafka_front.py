"""A SASL and TLS front for the embedded broker, so tests exercise Kafka security end to end.

tansu 0.6.0 cannot authenticate or encrypt: its only storage engine (dynostore) drops SCRAM
credentials, PLAIN is not compiled in, and `--cert/--key` are accepted but never used. This front
listens where clients connect (tansu advertises its address), optionally wraps the socket in TLS
(optionally requiring a client certificate), authenticates with SASL PLAIN, SCRAM-SHA-256/512
(RFC 5802, server side) or OAUTHBEARER (RFC 7628: an unexpired JWT signed HS256 with the token key an
identity-provider stand-in signs with) and then becomes a plain byte pipe to tansu. Before login only
ApiVersions (forwarded), SaslHandshake v1 and SaslAuthenticate v0/v1 are accepted, as on a Kafka
broker with authentication on.

python -m devstack.kafka_front --listen 127.0.0.1:9093 --backend 127.0.0.1:9092 \
    [--users-on-stdin] [--cert server.pem --key server.key [--client-ca ca.pem]]
# stdin: {"users": {"name": "password", ...}, "token_key": "..." or null}
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import ssl
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM = 58, 33
SCRAM_HASHES: dict[str, Callable[..., Any]] = {"SCRAM-SHA-512": hashlib.sha512, "SCRAM-SHA-256": hashlib.sha256}
MECHANISMS = [*SCRAM_HASHES, "PLAIN", "OAUTHBEARER"]
SCRAM_ITERATIONS = 4096


def _string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    encoded = value.encode()
    return struct.pack(">h", len(encoded)) + encoded


def _bytes(value: bytes) -> bytes:
    return struct.pack(">i", len(value)) + value


def _framed(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    size = struct.unpack(">i", await reader.readexactly(4))[0]
    return await reader.readexactly(size)


class ScramExchange:
    """The server side of one SCRAM login: client-first -> server-first, client-final -> server-final."""

    def __init__(self, mechanism: str, users: dict[str, str]) -> None:
        self.hash = SCRAM_HASHES[mechanism]
        self.users = users
        self.server_first = ""

    def first(self, message: str) -> bytes:
        self.client_first_bare = message.split(",", 2)[2]  # without the GS2 header "n,,"
        attributes = dict(pair.split("=", 1) for pair in self.client_first_bare.split(","))
        self.user = attributes["n"].replace("=2C", ",").replace("=3D", "=")
        self.salt = hashlib.sha256(f"salt:{self.user}".encode()).digest()[:16]
        self.nonce = attributes["r"] + base64.b64encode(os.urandom(18)).decode()
        self.server_first = f"r={self.nonce},s={base64.b64encode(self.salt).decode()},i={SCRAM_ITERATIONS}"
        return self.server_first.encode()

    def final(self, message: str) -> bytes | None:
        """The server signature when the client proved it knows the password, else None."""
        attributes = dict(pair.split("=", 1) for pair in message.split(","))
        password = self.users.get(self.user)
        if password is None or attributes.get("r") != self.nonce:
            return None
        salted = hashlib.pbkdf2_hmac(self.hash().name, password.encode(), self.salt, SCRAM_ITERATIONS)
        stored_key = self.hash(hmac.new(salted, b"Client Key", self.hash).digest()).digest()
        auth_message = f"{self.client_first_bare},{self.server_first},{message[: message.rindex(',p=')]}".encode()
        signature = hmac.new(stored_key, auth_message, self.hash).digest()
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(attributes["p"]), signature, strict=True))
        if not hmac.compare_digest(self.hash(client_key).digest(), stored_key):
            return None
        server_key = hmac.new(salted, b"Server Key", self.hash).digest()
        return b"v=" + base64.b64encode(hmac.new(server_key, auth_message, self.hash).digest())


def _unpadded_b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def valid_token(message: str, token_key: str | None) -> bool:
    """Whether the OAUTHBEARER client message ("n,,\x01auth=Bearer <jwt>\x01...") carries a valid token."""
    pairs = dict(pair.split("=", 1) for pair in message.split("\x01")[1:] if "=" in pair)
    token = pairs.get("auth", "").removeprefix("Bearer ")
    if token_key is None or token.count(".") != 2:
        return False
    header, claims, signature = token.split(".")
    expected = hmac.new(token_key.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _unpadded_b64decode(signature)):
        return False
    return float(json.loads(_unpadded_b64decode(claims)).get("exp", 0)) > time.time()


class KafkaFront:
    def __init__(self, backend: tuple[str, int], users: dict[str, str] | None, token_key: str | None) -> None:
        self.backend = backend
        self.users = users
        self.token_key = token_key

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        backend_writer = None
        try:
            backend_reader, backend_writer = await asyncio.open_connection(*self.backend)
            if self.users is not None and not await self._authenticate(
                client_reader, client_writer, backend_reader, backend_writer
            ):
                return
            await asyncio.gather(self._pipe(client_reader, backend_writer), self._pipe(backend_reader, client_writer))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            for writer in (client_writer, backend_writer):
                if writer is not None:
                    writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def _authenticate(
        self,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        backend_reader: asyncio.StreamReader,
        backend_writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer the SASL exchange; True once the client is logged in, False to close the connection."""
        assert self.users is not None
        mechanism = ""
        scram: ScramExchange | None = None
        while True:
            frame = await _read_frame(client_reader)
            api_key, api_version, correlation = struct.unpack(">hhi", frame[:8])
            client_id_length = struct.unpack(">h", frame[8:10])[0]
            body = frame[10 + max(client_id_length, 0) :]
            if api_key == API_VERSIONS:
                backend_writer.write(_framed(frame))
                await backend_writer.drain()
                client_writer.write(_framed(await _read_frame(backend_reader)))
            elif api_key == SASL_HANDSHAKE and api_version == 1:
                mechanism = body[2 : 2 + struct.unpack(">h", body[:2])[0]].decode()
                supported = mechanism in MECHANISMS
                answer = struct.pack(">hi", 0 if supported else UNSUPPORTED_SASL_MECHANISM, len(MECHANISMS))
                answer += b"".join(map(_string, MECHANISMS))
                client_writer.write(_framed(struct.pack(">i", correlation) + answer))
                if not supported:
                    await client_writer.drain()
                    return False
                scram = ScramExchange(mechanism, self.users) if mechanism in SCRAM_HASHES else None
            elif api_key == SASL_AUTHENTICATE and api_version in (0, 1) and mechanism:
                message = body[4 : 4 + struct.unpack(">i", body[:4])[0]].decode()
                outcome: bytes | None
                logged_in = True
                if scram is not None and not scram.server_first:
                    outcome, logged_in = scram.first(message), False
                elif scram is not None:
                    outcome = scram.final(message)
                elif mechanism == "OAUTHBEARER":
                    outcome = b"" if valid_token(message, self.token_key) else None
                else:
                    _, user, password = message.split("\x00")
                    outcome = b"" if self.users.get(user) == password else None
                if outcome is None:
                    text = f"Authentication failed: invalid credentials with SASL mechanism {mechanism}"
                    answer = struct.pack(">h", SASL_AUTHENTICATION_FAILED) + _string(text) + _bytes(b"")
                else:
                    answer = struct.pack(">h", 0) + _string(None) + _bytes(outcome)
                if api_version >= 1:
                    answer += struct.pack(">q", 0)  # session lifetime 0: no re-authentication
                client_writer.write(_framed(struct.pack(">i", correlation) + answer))
                await client_writer.drain()
                if outcome is None or logged_in:
                    return outcome is not None
            else:  # any other request before login closes the connection, as Kafka does
                return False
            await client_writer.drain()


def _address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


async def serve(
    listen: str, backend: str, users: dict[str, str] | None, token_key: str | None, tls: ssl.SSLContext | None
) -> None:
    front = KafkaFront(_address(backend), users, token_key)
    server = await asyncio.start_server(front.handle, *_address(listen), ssl=tls)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="devstack.kafka_front")
    parser.add_argument("--listen", required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument(
        "--users-on-stdin",
        action="store_true",
        help="read the users' passwords and the token key from stdin (never a file or argument); without it, no SASL",
    )
    parser.add_argument("--cert", type=Path, help="PEM server certificate; with --key, clients connect over TLS")
    parser.add_argument("--key", type=Path)
    parser.add_argument("--client-ca", type=Path, help="require a client certificate signed by this CA (mutual TLS)")
    args = parser.parse_args()
    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            tls.verify_mode = ssl.CERT_REQUIRED
            tls.load_verify_locations(args.client_ca)
    credentials = json.loads(sys.stdin.read()) if args.users_on_stdin else {"users": None, "token_key": None}
    asyncio.run(serve(args.listen, args.backend, credentials["users"], credentials["token_key"], tls))


if __name__ == "__main__":
    main()
