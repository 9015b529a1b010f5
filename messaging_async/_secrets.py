"""Keeping credentials, message texts and phone numbers out of anything built from a gateway
answer: error messages, outcome reasons, a refusal's ``raw``, and so log records.

The one place where gateway text is made safe to quote. A gateway may echo the request it
was sent (``{"code": -1009, "message": "… 'OTP 918273' … pwd=…"}``); every path that puts
its words into an error, an outcome or a log line goes through a ``Redactor`` first.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from .phone import mask_number

__all__ = ["MASK", "SNIPPET_LENGTH", "Redactor", "redacted_snippet"]

SNIPPET_LENGTH = 200
MASK = "***"


def _forms(secret: str) -> set[str]:
    """A secret as it may appear in an echoed request: raw, JSON-escaped, as a Python bytes
    literal (httpx's and aiohttp's protocol errors quote a malformed answer's bytes that
    way), each of those escaped once more (a JSON answer quoting our JSON body as a string;
    an exception message quoting a ``repr``), URL-encoded or HTML-escaped (an error page)."""
    quoted = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret.encode("utf-8", "surrogatepass"))[2:-1],
    }
    return {
        *quoted,
        *(json.dumps(form)[1:-1] for form in quoted),
        *(repr(form)[1:-1] for form in quoted),
        quote_plus(secret, errors="surrogatepass"),  # a lone surrogate must not raise here
        quote(secret, safe="", errors="surrogatepass"),
        html.escape(secret),
        html.escape(secret, quote=False),
    }


_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")
_WORD = re.compile(r"\w+")
_DIGITS = re.compile(r"[0-9]{4,}")
SHORT = 4  # a secret shorter than this is redacted only where it stands alone
WINDOW = 4  # no 4 digits in a row of a secret survive
LONG_WORD = 6  # a secret's word this long is redacted wherever it appears


def _cores(secret: str) -> tuple[str, ...]:
    """The runs of ASCII letters and digits in ``secret``, lower-cased. Every form
    ``_forms`` makes keeps each of them intact, so a text missing any of them holds no form
    of the secret. (Templated texts share words; each also has a run of its own.)"""
    return tuple({run.lower() for run in _ASCII_WORD.findall(secret)})


def _words(secret: str) -> set[str]:
    """The words of ``secret`` that could be secret on their own: ``LONG_WORD`` characters
    or more, or ``SHORT`` or more with a digit in them (``A7X9``; a code, not prose)."""
    return {
        word
        for word in _WORD.findall(secret)
        if len(word) >= LONG_WORD or (len(word) >= SHORT and any(c.isdigit() for c in word))
    }


def _windows(secret: str) -> set[str]:
    """Every ``WINDOW`` ASCII digits in a row in ``secret``."""
    return {
        run[i : i + WINDOW] for run in _DIGITS.findall(secret) for i in range(len(run) - WINDOW + 1)
    }


@functools.lru_cache(maxsize=256)
def _pattern(
    secrets: tuple[str, ...], numbers: tuple[str, ...]
) -> tuple[re.Pattern[str], dict[str, str]]:
    """One pattern for every form of ``secrets`` and ``numbers``, longest first, ignoring
    case; and the mask for each number form (a secret's forms become ``MASK``). A short
    secret's forms match only as a whole token (not inside a longer word)."""
    longer = {form for secret in secrets if len(secret) >= SHORT for form in _forms(secret)}
    short = {form for secret in secrets if len(secret) < SHORT for form in _forms(secret)}
    secret_forms = {form.lower() for form in longer | short}
    masks: dict[str, str] = {}
    for number in numbers:
        masked = mask_number(number)
        for form in (number, "+" + number, quote_plus("+" + number, errors="surrogatepass")):
            if form.lower() not in secret_forms:  # a text that is a number stays secret
                masks[form.lower()] = masked
    alternatives = [(form, re.escape(form)) for form in longer | set(masks)]
    alternatives += [(form, rf"(?<!\w){re.escape(form)}(?!\w)") for form in short - longer]
    alternatives.sort(key=lambda pair: len(pair[0]), reverse=True)
    pattern = "|".join(regex for _, regex in alternatives)
    return re.compile(pattern, re.IGNORECASE), masks


class Redactor:
    """What one request must never have quoted back: the client's secrets (password, app
    secret) and the request's own texts and template parameters, each replaced by ``***``;
    and its phone numbers, masked (``6012*****89``) so a reader still sees whose it was.

    A gateway may echo only part of what it was sent (the OTP alone, a text cut short), so
    the rule is about pieces as well as wholes. For each secret:

    - the whole secret, in every form ``_forms`` makes, wherever it appears; but a secret
      shorter than ``SHORT`` (4) characters only where it stands as a whole token, so a
      password ``p`` does not mask every ``p`` of a gateway's words;
    - each of its words (runs of letters, digits and ``_``) that could be a secret on its
      own, wherever it appears: ``LONG_WORD`` (6) characters or more, or 4 or more with a
      digit in them;
    - any run of ASCII digits in the answer that shares ``WINDOW`` (4) digits in a row with
      the secret is masked whole: no 4 consecutive digits of a text survive (``9182`` of
      ``OTP 918273`` included). A recipient's number is masked as a number even so.

    Words shorter than that (``Your``, ``OTP``, ``is``) are left, so an error stays readable.

    Cheap to make (one per request unit, on the hot path) and cheap to apply to a text that
    quotes none of them (most refusals): each secret's and word's ASCII runs are looked for
    first, and a pattern is built only for those whose runs are all present; the digit
    rule runs only on an answer holding one of the secrets' 4-digit runs. Matching ignores
    case (a gateway may upper-case what it echoes) and takes the longest form at each
    place, in one pass.
    """

    __slots__ = ("_cores", "_numbers", "_secrets", "_windows")

    def __init__(self, secrets: Iterable[str | None] = (), numbers: Iterable[str] = ()):
        self._secrets = tuple(secrets)
        self._numbers = tuple(numbers)
        self._cores: list[tuple[str, tuple[str, ...], bool]] | None = None
        self._windows: frozenset[str] = frozenset()

    def including(
        self, secrets: Iterable[str | None] = (), numbers: Iterable[str] = ()
    ) -> Redactor:
        """This redactor plus one request's texts (``secrets``) and recipients (``numbers``)."""
        return Redactor((*self._secrets, *secrets), (*self._numbers, *numbers))

    def __call__(self, text: str) -> str:
        """``text`` with every secret removed and every number masked."""
        cored = self._cored()  # also fills ``_windows``
        lowered = text.lower()
        present = [
            (value, is_number)
            for value, cores, is_number in cored
            if all(core in lowered for core in cores)
        ]
        digits = bool(self._windows) and self._holds_window(text)
        if not present and not digits:
            return text
        secrets = tuple(sorted({value for value, is_number in present if not is_number}))
        numbers = tuple(sorted({value for value, is_number in present if is_number}))
        pattern, masks = _pattern(secrets, numbers) if present else (None, {})
        if pattern is not None and not digits:
            return pattern.sub(lambda match: masks.get(match.group().lower(), MASK), text)
        # The digit rule runs on what lies between the forms: a secret's ``***`` splits a
        # run of digits, and a recipient's number stays masked as a number.
        pieces: list[str] = []
        start = 0
        for match in pattern.finditer(text) if pattern else ():
            pieces += [self._digit_runs(text[start : match.start()])]
            pieces += [masks.get(match.group().lower(), MASK)]
            start = match.end()
        pieces.append(self._digit_runs(text[start:]))
        return "".join(pieces)

    def _holds_window(self, text: str) -> bool:
        return any(
            run[i : i + WINDOW] in self._windows
            for run in _DIGITS.findall(text)
            for i in range(len(run) - WINDOW + 1)
        )

    def _digit_runs(self, text: str) -> str:
        """``text`` with every run of digits holding a secret's 4 digits in a row masked."""
        return _DIGITS.sub(
            lambda run: MASK if self._holds_window(run.group()) else run.group(), text
        )

    def snippet(self, body: str) -> str:
        """The start of ``body``, safe for an exception message or a log line: redacted
        before it is cut, so a cut can never leave part of a secret behind."""
        body = " ".join(self(body).split())
        if len(body) > SNIPPET_LENGTH:
            return body[:SNIPPET_LENGTH] + "…"
        return body or "(empty body)"

    def scrub(self, data: Any) -> Any:
        """A copy of parsed answer data (JSON objects, lists, strings) with every string
        redacted; anything else as it is."""
        if isinstance(data, str):
            return self(data)
        if isinstance(data, dict):
            return {self.scrub(key): self.scrub(value) for key, value in data.items()}
        if isinstance(data, list | tuple):
            return type(data)(self.scrub(item) for item in data)
        return data

    def _cored(self) -> list[tuple[str, tuple[str, ...], bool]]:
        if self._cores is None:
            secrets = [secret for secret in self._secrets if secret]
            pieces = {piece for secret in secrets for piece in (secret, *_words(secret))}
            self._cores = [
                *((piece, _cores(piece), False) for piece in pieces),
                *((number, (number.lower(),), True) for number in self._numbers if number),
            ]
            self._windows = frozenset(w for secret in secrets for w in _windows(secret))
        return self._cores


def redacted_snippet(body: str, secrets: Iterable[str | None]) -> str:
    """``Redactor(secrets).snippet(body)``: the start of ``body`` with every secret removed."""
    return Redactor(secrets).snippet(body)
