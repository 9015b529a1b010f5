"""Fingerprints: equal content, equal bytes, whichever way it is handed in."""

from __future__ import annotations

import hashlib

from messaging_async import Sms, WhatsAppTemplate, WhatsAppText
from messaging_async.ledger import Entry
from messaging_async.ledger._fingerprint import (
    canonical,
    content_forms,
    fingerprint,
    fingerprint_columns,
    fingerprints,
)


def test_an_sms_is_fingerprinted_as_its_text_whatever_the_path() -> None:
    """The fast path for an ``Sms`` gives the bytes of the general one: a job started with
    texts and resumed with ``Sms`` objects (or by another SDK version) is not "changed"."""
    salt = bytes(range(16))
    sms = Sms(to="60123456789", text="Hi 5, code 0123")
    expected = hashlib.blake2b(
        salt + b"60123456789\x1ft\x1fHi 5, code 0123", digest_size=16
    ).digest()
    assert fingerprint(sms.to, sms, salt) == expected
    assert fingerprint(sms.to, sms.text, salt) == expected
    assert fingerprint(sms.to, WhatsAppText(to=sms.to, text=sms.text), salt) != expected


def test_each_salt_keys_its_own_fingerprints_and_a_surrogate_text_is_hashed_as_before() -> None:
    """The salt-primed hash is kept per salt and copied per fingerprint: two ledgers (two
    salts) used in turn, and the same one again, each give the plain keyed hash."""
    salts = [bytes(range(16)), bytes(range(1, 17)), bytes(range(16))]
    text = "Hi \ud800 lone surrogate"  # a str can hold one; the ledger must still hash it
    for salt in salts:
        for number in ("60123456789", "6591234567"):
            data = f"{number}\x1ft\x1f{text}".encode("utf-8", "surrogatepass")
            expected = hashlib.blake2b(salt + data, digest_size=16).digest()
            assert fingerprint(number, Sms(to=number, text=text), salt) == expected


def test_a_units_fingerprints_are_each_entrys_in_order() -> None:
    """Mixed contents (canonical forms) and a unit of ``Sms`` only (their texts): each
    fingerprint the one ``fingerprint`` gives, whichever columns the unit came as."""
    salt = bytes(range(16))
    contents: list[object] = [
        Sms(to="60123456789", text="Hi"),
        "plain text",
        WhatsAppTemplate(to="60123456780", template_code="otp", params=["1", "2"]),
        Sms(to="60123456781", text="\ud800 surrogate, \x1f t\x1f"),
    ]
    for unit in (contents, [c for c in contents if isinstance(c, Sms)]):
        entries = [Entry(i, f"6012345678{i}", None, c) for i, c in enumerate(unit)]
        expected = [fingerprint(e.to, e.content, salt) for e in entries]
        assert fingerprints(entries, salt) == expected
        forms, texts = content_forms(unit)
        assert texts is (len(unit) == 2)
        numbers = [e.to for e in entries]
        assert fingerprint_columns(numbers, forms, texts, salt) == expected
        found = fingerprint_columns(numbers, list(map(canonical, unit)), False, salt)
        assert found == expected
        assert all(type(each) is bytearray for each in found)  # bound with no adaptation
    assert fingerprints([], salt) == []
