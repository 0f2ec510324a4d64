"""PII policies applied on the way into `raw`, so no layer after the landing archive holds PII in clear.

`hash` is an HMAC-SHA256 keyed by `PLATFORM_PII_KEY`: equal inputs stay joinable across tables without
being reversible by anyone who lacks the key. `mask` keeps enough shape for a person to recognise a
value (first letters, an e-mail's domain). `drop` removes the field after landing.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

from platform_assets.lib.contract import Contract

DEV_PII_KEY = "platform-dev-only-pii-key"
MIN_PII_KEY_LENGTH = 32  # HMAC-SHA256 keys shorter than its 32-byte output weaken every hash made with them


class PiiKeyError(RuntimeError):
    """The platform was asked to run outside dev mode with the published development key."""


def is_dev_mode() -> bool:
    return os.environ.get("PLATFORM_MODE", "prod") == "dev"


def pii_key() -> bytes:
    key = os.environ.get("PLATFORM_PII_KEY")
    if key and key != DEV_PII_KEY:
        if len(key) < MIN_PII_KEY_LENGTH:
            raise PiiKeyError(
                f"PLATFORM_PII_KEY is {len(key)} characters long; set it to a secret of at least "
                f"{MIN_PII_KEY_LENGTH} characters from your secret store (e.g. `openssl rand -hex 32`)"
            )
        return key.encode()
    if is_dev_mode():
        return DEV_PII_KEY.encode()
    raise PiiKeyError(
        "PLATFORM_PII_KEY is not set (or is the built-in development key) and PLATFORM_MODE is not `dev`; "
        "set PLATFORM_PII_KEY to a secret of at least 32 characters from your secret store, "
        "or set PLATFORM_MODE=dev for local development"
    )


# HMAC-SHA256 (RFC 2104) keys padded to the block size and xor-ed with these, one pair per secret.
_INNER_PAD, _OUTER_PAD = 0x36, 0x5C
_keyed_states: dict[bytes, tuple[Any, Any]] = {}


def _keyed(secret: bytes) -> tuple[Any, Any]:
    """SHA-256 states that already hold the padded secret: `hmac.digest` hashes the secret again for
    every value, five times the cost of the value itself, and raw hashes one or more fields per record."""
    states = _keyed_states.get(secret)
    if states is None:
        block = hashlib.sha256().block_size
        key = (hashlib.sha256(secret).digest() if len(secret) > block else secret).ljust(block, b"\0")
        states = (
            hashlib.sha256(bytes(byte ^ _INNER_PAD for byte in key)),
            hashlib.sha256(bytes(byte ^ _OUTER_PAD for byte in key)),
        )
        _keyed_states[secret] = states
    return states


def hash_value(value: str, secret: bytes) -> str:
    """HMAC-SHA256 of `value` keyed by `secret`, as hex (equal to `hmac.digest(secret, value, "sha256")`)."""
    inner_state, outer_state = _keyed_states.get(secret) or _keyed(secret)
    inner = inner_state.copy()
    inner.update(value.encode("utf-8"))
    outer = outer_state.copy()
    outer.update(inner.digest())
    return outer.hexdigest()


def mask_value(value: str) -> str:
    """Keep the first letter of each word and an e-mail's domain; star the rest."""
    local, at, domain = value.partition("@")
    return _AFTER_A_WORDS_FIRST.sub("*", local) + at + domain


# Every character of a word (a run between spaces) but its first.
_AFTER_A_WORDS_FIRST = re.compile("(?<=[^ ])[^ ]")


def protect(contract: Contract, values: dict[str, Any], secret: bytes) -> dict[str, Any]:
    """Return the stored fields with every PII policy of the contract applied (`drop` fields left out)."""
    names = contract.stored_names
    # A change that holds exactly the stored fields (most do: the contract drops nothing) is copied whole.
    protected = (
        values.copy() if values.keys() == contract.stored_name_set else {name: values.get(name) for name in names}
    )
    for spec in contract.protected_fields:
        value = protected[spec.name]
        if value is not None:
            protected[spec.name] = hash_value(value, secret) if spec.pii == "hash" else mask_value(value)
    return protected
