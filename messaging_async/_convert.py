"""The one place where the SDK's records turn into rows or JSON and back (cattrs).

Two forms, two converters: ``rows`` for storage (times as epoch seconds, statuses as their
values) and ``json`` for output such as the CLI's ``--json`` (times as ISO 8601 strings).
Anything that serialises a model uses these, so a field added to a model is added to
every form at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import cattrs

from .ledger._models import JobSummary, LedgerRecord

__all__ = ["json", "record_from_row", "rows", "to_json"]

T = TypeVar("T")

rows = cattrs.Converter()
"""Storage form: ``datetime`` ↔ epoch seconds (UTC)."""
rows.register_structure_hook(datetime, lambda value, _: datetime.fromtimestamp(value, UTC))
rows.register_unstructure_hook(datetime, lambda value: value.timestamp())

json = cattrs.Converter()
"""Output form: ``datetime`` ↔ ISO 8601."""
json.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
json.register_unstructure_hook(datetime, lambda value: value.isoformat())


def _ref(value: object, _: object) -> str | int | None:
    """A journalled ``ref`` is a str or an int (or absent), kept as it is."""
    if value is None or isinstance(value, str | int):
        return value
    raise TypeError(f"a ref must be a str or an int, not {type(value).__name__}")


for _converter in (rows, json):
    _converter.register_structure_hook(str | int | None, _ref)


def _text_free_record(record: LedgerRecord) -> dict[str, Any]:
    """A record for output: the text, if the ledger kept one, never goes to JSON by default."""
    data = _unstructure_record(record)
    data.pop("text", None)
    return data


_unstructure_record = cattrs.gen.make_dict_unstructure_fn(LedgerRecord, json)
json.register_unstructure_hook(LedgerRecord, _text_free_record)


def record_from_row(row: Mapping[str, Any]) -> LedgerRecord:
    """A ``LedgerRecord`` from a row the store read (missing optional columns allowed)."""
    return rows.structure(row, LedgerRecord)


def to_json(value: JobSummary | LedgerRecord | object) -> Any:
    """``value`` as plain JSON-ready data (dicts, lists, strings, numbers)."""
    return json.unstructure(value)
