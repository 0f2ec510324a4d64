import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platform_assets.lib.contract import load_contracts, parse_contract
from platform_assets.lib.erasure import Target
from platform_assets.lib.pii import (
    DEV_PII_KEY,
    PiiKeyError,
    hash_value,
    mask_value,
    pii_key,
    protect,
    protect_columns,
)

pytestmark = pytest.mark.unit

CUSTOMERS = next(c for c in load_contracts() if c.name == "customers")


def test_hash_is_hmac_sha256_with_the_platform_key():
    values = {"customer_id": "C1", "email": "ann@example.com", "full_name": "Ann Lee", "city": "Porto"}
    protected = protect(CUSTOMERS, values, b"secret")
    assert protected["email"] == hmac.new(b"secret", b"ann@example.com", hashlib.sha256).hexdigest()
    assert protected["full_name"] == "A** L**"
    assert protected["city"] == "Porto" and protected["customer_id"] == "C1"


@given(st.text(), st.binary(min_size=1, max_size=200))
def test_hash_with_the_keyed_states_is_hmac_sha256_for_every_secret_and_value(value, secret):
    """Secrets longer than SHA-256's block are hashed first (RFC 2104); every length reads the same."""
    assert hash_value(value, secret) == hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()


def test_mask_keeps_the_domain_of_an_email():
    assert mask_value("ann.lee@example.com") == "a******@example.com"


@given(st.text(st.sampled_from("ab @.\t\u00e9\U0001f600"), max_size=20))
def test_mask_stars_every_character_of_a_word_but_its_first(value):
    """`mask_value` is one regex substitution; it must star what the word-by-word rule stars."""
    local, at, domain = value.partition("@")
    by_word = " ".join(word[:1] + "*" * (len(word) - 1) for word in local.split(" "))
    assert mask_value(value) == by_word + at + domain


def test_protect_keeps_a_change_with_other_fields_to_the_stored_ones():
    values = {name: "x" for name in CUSTOMERS.stored_names} | {"unknown": "y"}
    assert set(protect(CUSTOMERS, values, b"secret")) == set(CUSTOMERS.stored_names)
    del values["unknown"], values["city"]
    assert protect(CUSTOMERS, values, b"secret")["city"] is None


WITH_DROP = parse_contract(
    {
        "name": "people",
        "source": {"format": "json", "topic": "p"},
        "key": ["id"],
        "sequence": "v",
        "event_time": "ts",
        "fields": {
            "id": {},
            "ssn": {"pii": "drop"},
            "email": {"pii": "hash"},
            "ts": {"type": "timestamp"},
            "v": {"type": "long"},
        },
    }
)


def test_drop_removes_the_field():
    assert "ssn" not in protect(WITH_DROP, {"id": "1", "ssn": "123", "ts": None, "v": 1}, b"k")
    assert "ssn" not in {f.name for f in WITH_DROP.stored_fields}


# Few distinct texts, so that columns repeat values (masked once per distinct value) and hold nulls.
_TEXTS = st.none() | st.sampled_from(["", "Ann Lee", "ann@example.com", "Bo  Li @x", "\u00e9 \U0001f600"])


@given(st.sampled_from([CUSTOMERS, WITH_DROP]), st.data())
def test_protect_columns_is_each_value_protected_by_the_policies(contract, data):
    """`protect_columns` works column by column (masking each distinct value once); every value must
    come out as the contract's policies make it alone: HMAC-SHA256 or the mask of its own value, only
    the stored fields (one without a column null, dropped and unknown ones left out). `protect` of one
    row must agree."""
    names = [spec.name for spec in contract.fields] + ["unknown"]
    rows = data.draw(st.lists(st.dictionaries(st.sampled_from(names), _TEXTS), max_size=8))
    with_column = data.draw(st.sets(st.sampled_from(names), min_size=1))  # a batch is known by its columns
    policies = {spec.name: spec.pii for spec in contract.stored_fields}

    def protected(row: dict) -> dict:
        return {
            name: None
            if row.get(name) is None
            else hmac.new(b"secret", row[name].encode(), hashlib.sha256).hexdigest()
            if policy == "hash"
            else mask_value(row[name])
            if policy == "mask"
            else row[name]
            for name, policy in policies.items()
        }

    columns = protect_columns(contract, {name: [row.get(name) for row in rows] for name in with_column}, b"secret")
    assert list(columns) == list(contract.stored_names)
    as_rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    assert as_rows == [protected({k: v for k, v in row.items() if k in with_column}) for row in rows]
    assert [protect(contract, row, b"secret") for row in rows] == [protected(row) for row in rows]


def test_platform_refuses_the_dev_key_outside_dev_mode(monkeypatch):
    monkeypatch.setenv("PLATFORM_MODE", "prod")
    monkeypatch.delenv("PLATFORM_PII_KEY", raising=False)
    with pytest.raises(PiiKeyError, match="PLATFORM_PII_KEY"):
        pii_key()
    monkeypatch.setenv("PLATFORM_PII_KEY", DEV_PII_KEY)
    with pytest.raises(PiiKeyError):
        pii_key()
    monkeypatch.setenv("PLATFORM_PII_KEY", "a-real-secret-from-the-vault-0123456789")
    assert pii_key() == b"a-real-secret-from-the-vault-0123456789"
    monkeypatch.setenv("PLATFORM_MODE", "dev")
    monkeypatch.delenv("PLATFORM_PII_KEY")
    assert pii_key() == DEV_PII_KEY.encode()


def _keyed_by(key: list[str], hashed: bool):
    fields = {"name": {"pii": "hash"} if hashed else {}, "number": {"type": "long"}, "ts": {"type": "timestamp"}}
    return parse_contract(
        {"name": "x", "source": {"topic": "x"}, "key": key, "sequence": "number", "event_time": "ts", "fields": fields}
    )


BY_NAME_AND_NUMBER, BY_HASHED_NAME = _keyed_by(["name", "number"], False), _keyed_by(["name"], True)


@given(st.text(min_size=1).filter(lambda s: "|" not in s), st.integers(), st.booleans())
def test_a_stored_row_names_the_person_an_erasure_request_names(text, number, hashed):
    """`Target.row_hash` of a row as stored equals the erasure list's hash of the request naming it:
    for a key of several fields in clear, and for a one-field key stored with `pii: hash`."""
    target = Target(BY_HASHED_NAME if hashed else BY_NAME_AND_NUMBER)
    request = text if hashed else f"{text}|{number}"
    [stored] = target.stored([request], b"secret")
    row = dict(zip(target.fields, stored, strict=True))
    assert target.row_hash(row, b"secret") == hash_value(request, b"secret")
