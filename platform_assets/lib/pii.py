"""PII policies applied on the way into `raw`, so no layer after the landing archive holds PII in clear.

`hash` is an HMAC-SHA256 keyed by `PLATFORM_PII_KEY`: equal inputs stay joinable across tables without
being reversible by anyone who lacks the key. `mask` keeps enough shape for a person to recognise a
value (first letters, an e-mail's domain). `drop` removes the field after landing.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable
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
_hashers: dict[bytes, Callable[[str], str]] = {}


def _hasher(secret: bytes) -> Callable[[str], str]:
    """HMAC-SHA256 keyed by `secret`, from SHA-256 states that already hold the padded secret:
    `hmac.digest` hashes the secret again for every value, five times the cost of the value itself,
    and raw hashes one or more fields per record."""
    hasher = _hashers.get(secret)
    if hasher is None:
        block = hashlib.sha256().block_size
        key = (hashlib.sha256(secret).digest() if len(secret) > block else secret).ljust(block, b"\0")
        inner_state = hashlib.sha256(bytes(byte ^ _INNER_PAD for byte in key))
        outer_state = hashlib.sha256(bytes(byte ^ _OUTER_PAD for byte in key))

        def hasher(value: str) -> str:
            inner = inner_state.copy()
            inner.update(value.encode("utf-8"))
            outer = outer_state.copy()
            outer.update(inner.digest())
            return outer.hexdigest()

        _hashers[secret] = hasher
    return hasher


def hash_value(value: str, secret: bytes) -> str:
    """HMAC-SHA256 of `value` keyed by `secret`, as hex (equal to `hmac.digest(secret, value, "sha256")`)."""
    return _hasher(secret)(value)


def mask_value(value: str) -> str:
    """Keep the first letter of each word and an e-mail's domain; star the rest."""
    local, at, domain = value.partition("@")
    return _AFTER_A_WORDS_FIRST.sub("*", local) + at + domain


# Every character of a word (a run between spaces) but its first.
_AFTER_A_WORDS_FIRST = re.compile("(?<=[^ ])[^ ]")


def protect(contract: Contract, values: dict[str, Any], secret: bytes) -> dict[str, Any]:
    """Return the stored fields with every PII policy of the contract applied (`drop` fields left out)."""
    protected = protect_columns(contract, {name: [values.get(name)] for name in contract.stored_names}, secret)
    return {name: column[0] for name, column in protected.items()}


def protect_columns(contract: Contract, columns: dict[str, list[Any]], secret: bytes) -> dict[str, list[Any]]:
    """The stored fields of a batch's values (`columns`, at least one: field name -> a value per row),
    one list per field, with every PII policy of the contract applied: a `drop` field is left out, a stored field
    without a column reads null. The lists are the caller's to give up: protected ones are replaced.

    Column by column, since raw protects every decoded change: a hashed column is hashed value by value
    (hashed values, e-mails and ids, are nearly all distinct: finding the distinct ones first cost more
    than hashing them all) and a masked one once per distinct value (names repeat). Protecting row
    dicts cost a third more of a decode: their keys checked, each column read out and written back.
    """
    size = len(next(iter(columns.values()), []))
    stored = {name: columns[name] if name in columns else [None] * size for name in contract.stored_names}
    for spec in contract.protected_fields:
        column = stored[spec.name]
        if spec.pii == "hash":
            stored[spec.name] = list(_each_present(_hasher(secret), column))
        else:
            masked = {value: None if value is None else mask_value(value) for value in dict.fromkeys(column)}
            stored[spec.name] = list(map(masked.__getitem__, column))
    return stored


def _each_present(policy: Callable[[str], str], column: list[Any]) -> Iterable[str | None]:
    """`policy` of each value of `column`, None kept."""
    if None not in column:
        return map(policy, column)
    return [None if value is None else policy(value) for value in column]
