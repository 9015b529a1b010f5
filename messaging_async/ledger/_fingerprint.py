"""Fingerprints: what was to be sent, kept without keeping the text (it may hold an OTP).

A fingerprint is a keyed BLAKE2b (16 bytes) of the number and the content, the key being a random
salt made once per ledger: equal input gives an equal fingerprint within the ledger, so a
resumed job can tell "same message" from "input changed". It proves equality, it does not
hide a guessable text from someone holding the ledger file and its salt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any

from ..models import Sms, WhatsAppFile, WhatsAppTemplate, WhatsAppText

__all__ = [
    "Canonical",
    "canonical",
    "content_forms",
    "fingerprint",
    "fingerprint_columns",
    "fingerprints",
    "stored_form",
    "stored_text",
    "text_form",
]

_SEP = "\x1f"
_SMS = _SEP + "t" + _SEP  # between the number and an Sms's text (see ``canonical``)
_TEXT = attrgetter("text")


class Canonical(str):
    """Content already in its canonical form (``canonical``): what the writer process
    (``_writer``) is given in place of an ``Sms`` or a WhatsApp message, so that the
    objects themselves need not be pickled to it; fingerprinted and stored the same."""

    __slots__ = ()


def text_form(text: str) -> str:
    """The canonical form of an ``Sms`` whose text is ``text``."""
    return "t" + _SEP + text


def canonical(content: object) -> str:
    """A stable string for each kind of content, tagged so kinds never collide: what a
    fingerprint covers after the number."""
    if type(content) is Sms:  # the common case first: this runs once per recipient
        return "t" + _SEP + content.text
    if type(content) is Canonical:
        return content
    if isinstance(content, str):
        return "t" + _SEP + content
    if isinstance(content, Sms):
        return "t" + _SEP + content.text
    if isinstance(content, WhatsAppText):
        return "w" + _SEP + content.text
    if isinstance(content, WhatsAppTemplate):
        return _SEP.join(("m", content.template_code, content.language, _params(content.params)))
    if isinstance(content, WhatsAppFile):
        return _SEP.join(("f", content.url, content.file_name))
    raise TypeError(f"the ledger cannot fingerprint a {type(content).__name__}")


def _params(params: Mapping[str, object] | Sequence[object] | None) -> str:
    if params is None:
        return ""
    if isinstance(params, Mapping):
        return json.dumps({str(k): str(v) for k, v in params.items()}, sort_keys=True)
    return json.dumps([str(value) for value in params])


_KEYED: dict[bytes, Any] = {}  # salt -> BLAKE2b that has taken it in (a few ledgers)


def _keyed(salt: bytes) -> Any:
    """A BLAKE2b that has taken ``salt`` in, to be copied per fingerprint: a copy and an
    update cost 5,300 instructions against 6,900 for a new hash of the salt and the data
    (callgrind, one SMS); the digest is the same (the salt is the same prefix)."""
    keyed = _KEYED.get(salt)
    if keyed is None:
        if len(_KEYED) >= 64:  # a process opening many ledgers: never grows without bound
            _KEYED.clear()
        keyed = _KEYED[salt] = hashlib.blake2b(salt, digest_size=16)
    return keyed


def fingerprint(to: str, content: object, salt: bytes) -> bytes:
    """The fingerprint of ``content`` sent to ``to`` (16 bytes).

    BLAKE2b of the salt followed by the data: BLAKE2 has no length extension, so a prefix
    key is a sound keyed hash, and half the cost of its ``key=`` (a block of its own).
    """
    # ``canonical``'s first case inline: its call and checks cost as much as the hash
    # (1.3 -> 0.8 µs per recipient, claimed or resumed)
    text = to + _SMS + content.text if type(content) is Sms else to + _SEP + canonical(content)
    hashed = _keyed(salt).copy()
    hashed.update(text.encode("utf-8", "surrogatepass"))
    return hashed.digest()  # type: ignore[no-any-return]


def content_forms(contents: Sequence[object]) -> tuple[list[str], bool]:
    """A unit's contents as ``fingerprint_columns`` takes them: where every one is an
    ``Sms`` (the usual unit), their texts and ``True`` (read in C, no call a recipient);
    else their canonical forms and ``False``."""
    if contents and set(map(type, contents)) == {Sms}:
        return list(map(_TEXT, contents)), True
    return list(map(canonical, contents)), False


def fingerprint_columns(
    numbers: Sequence[str], forms: Sequence[str], texts: bool, salt: bytes
) -> list[bytearray]:
    """The fingerprints of a unit given as columns (``content_forms``: ``forms`` are
    ``Sms`` texts where ``texts``, else canonical forms), each a ``bytearray``: it binds as
    the same BLOB as ``bytes``, without the adapter look-up ``sqlite3`` makes for a
    ``bytes`` (``_lean_rows``). The same bytes as ``fingerprint`` of each: an ``Sms``'s
    canonical form is ``"t" + _SEP + text``.

    One loop for the writer process's columns and for a unit of entries (``fingerprints``),
    a concatenation and a copy of the salted hash each (0.59 -> 0.46 µs a recipient from
    the entries' loop and its slices of one joined ``bytes``, timeit, units of 50 SMS)."""
    copy = _keyed(salt).copy
    between = _SMS if texts else _SEP
    found = []
    for to, form in zip(numbers, forms, strict=True):
        hashed = copy()
        hashed.update((to + between + form).encode("utf-8", "surrogatepass"))
        found.append(bytearray(hashed.digest()))
    return found


def fingerprints(entries: Sequence[Any], salt: bytes) -> list[bytearray]:
    """The fingerprints of ``entries`` (anything with ``to`` and ``content``), in order:
    ``fingerprint_columns`` of their columns."""
    forms, texts = content_forms([entry.content for entry in entries])
    return fingerprint_columns([entry.to for entry in entries], forms, texts, salt)


def stored_text(content: object) -> str:
    """What a ledger opened with ``store_text=True`` keeps: the text, or the template and
    its parameters, or the file, in the same canonical form the fingerprint covers."""
    return stored_form(canonical(content))


def stored_form(form: str) -> str:
    """``stored_text`` of the content whose canonical form is ``form``."""
    return form.split(_SEP, 1)[1] if form[0] in "tw" else form.replace(_SEP, " ")
