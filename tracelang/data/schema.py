"""The one record schema every tool reads and writes, one JSON object per line:

    {"id", "question", "trace", "answer", "expert", "source", "meta"}

``id`` is stable and unique within a corpus (``gsm8k-train-00012``); ``question`` the problem text
(may be ``null`` for synthetic traces without one); ``trace`` canonical trace text; ``answer`` the
gold answer as canonical number text; ``expert`` the trace's expert (the first block's for a composed
trace); ``source`` where the record came from (``gsm8k-train``, ``synthetic:<generator>``); ``meta``
a free-form object (split, counts, provenance).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..numbers import Exact, render
from ..records import InputError, LineError, atomic_write, loads_line

FIELDS = ("id", "question", "trace", "answer", "expert", "source", "meta")


class RecordError(UsageError, ValueError):
    """A line that is not a valid record; the message names file, line and field."""


def make_record(id: str, question: str | None, trace: str, answer: Exact | str | int | None, expert: str,
                source: str, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """A record with the fields in schema order; an exact answer is rendered canonically."""
    if isinstance(answer, Exact):
        answer = render(answer)
    elif isinstance(answer, int):
        answer = str(answer)
    return {"id": id, "question": question, "trace": trace, "answer": answer, "expert": expert,
            "source": source, "meta": dict(meta or {})}


_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "question": (str, type(None)), "trace": (str,), "answer": (str, type(None)),
    "expert": (str,), "source": (str,), "meta": (dict,),
}


def validate(record: object, where: str = "record") -> dict[str, Any]:
    """Return the record if it follows the schema; ``RecordError`` naming the first problem."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: not a JSON object")
    for name in FIELDS:
        if name not in record:
            raise RecordError(f"{where}: missing field `{name}`")
        if not isinstance(record[name], _TYPES[name]):
            want = " or ".join("null" if t is type(None) else t.__name__ for t in _TYPES[name])
            raise RecordError(f"{where}: field `{name}` must be {want}")
    extra = sorted(set(record) - set(FIELDS))
    if extra:
        raise RecordError(f"{where}: unknown field `{extra[0]}`")
    return record


def dumps(record: dict[str, Any]) -> str:
    """One JSON line, UTF-8 as is except U+2028/U+2029, which are escaped: tools that split lines
    with str.splitlines (or JavaScript) would break a record there."""
    return json.dumps(record, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON Lines file; ``InputError`` naming
    file, line and column for anything that is not a JSON object (malformed, nested too deep, an
    integer too long to read, NaN/Infinity: see ``records.loads_line``)."""
    try:
        fh = open(path, encoding="utf-8")  # noqa: SIM115 - closed below, generator
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or err}") from None
    with fh:
        try:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = loads_line(line)
                except LineError as err:
                    raise InputError(f"{path}:{n}:{err.column}: {err.message}") from None
                if not isinstance(obj, dict):
                    raise InputError(f"{path}:{n}:1: not a JSON object")
                yield n, obj
        except UnicodeDecodeError as err:
            raise InputError(f"{path}: not UTF-8 text (byte {err.start})") from None


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Records of a corpus file, each validated against the schema."""
    for n, obj in read_jsonl(path):
        try:
            yield validate(obj, f"{path}:{n}")
        except RecordError as err:
            raise InputError(str(err)) from None


def write_records(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records atomically (all or nothing); returns how many were written."""
    count = 0
    with atomic_write(path) as fh:
        for record in records:
            validate(record, f"record {count}")
            fh.write(dumps(record) + "\n")
            count += 1
    return count
