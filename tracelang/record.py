"""The one record every tool reads and writes, one JSON object per line:

    {"id", "question", "trace", "answer", "expert", "source", "meta"}

``id`` is stable and unique within a corpus (``gsm8k-train-00012``); ``question`` the problem text
(may be ``null`` for synthetic traces without one); ``trace`` canonical trace text; ``answer`` the
gold answer as canonical number text; ``expert`` the trace's expert (the first block's for a composed
trace); ``source`` where the record came from (``gsm8k-train``, ``synthetic:<generator>``); ``meta``
a free-form object (split, counts, provenance).

A record stays a plain dict (``Record`` types it), so it is written and read as JSON unchanged.
Corpus files go through ``fileio.read_jsonl`` and ``fileio.write_jsonl``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypedDict, cast

from .errors import UsageError
from .fileio import InputError, read_jsonl, write_jsonl
from .numbers import Exact, render


class Record(TypedDict):
    id: str
    question: str | None
    trace: str
    answer: str | None
    expert: str
    source: str
    meta: dict[str, Any]


FIELDS = tuple(Record.__annotations__)  # in schema order


class RecordError(UsageError, ValueError):
    """A line that is not a valid record; the message names file, line and field."""


def make_record(id: str, question: str | None, trace: str, answer: Exact | str | int | None, expert: str,
                source: str, meta: dict[str, Any] | None = None) -> Record:
    """A record with the fields in schema order; an exact answer is rendered canonically."""
    if isinstance(answer, Exact):
        answer = render(answer)
    elif isinstance(answer, int):
        answer = str(answer)
    return {"id": id, "question": question, "trace": trace, "answer": answer, "expert": expert,
            "source": source, "meta": dict(meta or {})}


def content_id(prefix: str, question: str, trace: str) -> str:
    """A generated record's id: ``prefix-`` and a digest of its question and trace, so the same
    record drawn twice has one id."""
    return f"{prefix}-" + hashlib.blake2b((question + trace).encode(), digest_size=8).hexdigest()


_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "question": (str, type(None)), "trace": (str,), "answer": (str, type(None)),
    "expert": (str,), "source": (str,), "meta": (dict,),
}


def validate(record: object, where: str = "record") -> Record:
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
    return cast(Record, record)


def read_records(path: str | Path) -> Iterator[Record]:
    """Records of a corpus file, each validated against the schema."""
    for n, obj in read_jsonl(path):
        try:
            yield validate(obj, f"{path}:{n}")
        except RecordError as err:
            raise InputError(str(err)) from None


def write_records(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records atomically (all or nothing), each validated first; returns how many."""
    return write_jsonl(path, (validate(record, f"record {n}") for n, record in enumerate(records)))
