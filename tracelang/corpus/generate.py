"""The generation loop: draw records from the sources, keep the verified, new and uncontaminated.

One seeded ``random.Random`` drives everything, so a seed and the same inputs give the same file.
Each record has already passed ``verify`` inside its source (a clean check, an exact run, the
expected answers). Here it must also be new (its normalised question not seen before) and pass
the contamination guard (no overlap with GSM-8K test).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from random import Random
from typing import Protocol

from ..errors import TracelangError
from .compose import TemplateSource
from .lift import LiftSource
from .numwords import to_words

_NORMAL = re.compile(r"[^a-z0-9$%.]+")


class Guard(Protocol):
    def refuses(self, question: str) -> bool: ...


class GenerationError(TracelangError, RuntimeError):
    pass


_WORD_DIGITS = {to_words(n): str(n) for n in range(0, 101) if " " not in to_words(n) and "-" not in to_words(n)}


def question_key(question: str) -> str:
    """The form under which two questions count as duplicates: case, spacing, punctuation and the
    spelling of numbers aside ("two" and "2" are the same question)."""
    return " ".join(_WORD_DIGITS.get(w, w) for w in _NORMAL.sub(" ", question.lower()).split())


@dataclass
class Tally:
    attempts: int = 0
    written: int = 0
    duplicates: int = 0
    refused: int = 0  # by the contamination guard
    failed: int = 0  # a source could not make a verified record from its draw
    sources: Counter = field(default_factory=Counter)

    def to_json(self) -> dict:
        return {"attempts": self.attempts, "written": self.written, "duplicates": self.duplicates,
                "contaminated": self.refused, "failed": self.failed, "sources": dict(self.sources)}


def generate(n: int, seed: int, templates: TemplateSource | None, lifted: LiftSource | None = None,
             lifted_share: float = 0.5, guard: Guard | None = None, tally: Tally | None = None,
             on_record: Callable[[], None] | None = None, max_attempts: int | None = None) -> Iterator[dict]:
    """Yield ``n`` records. ``lifted_share`` of the draws go to GSM-8K train lifting when given."""
    if templates is None and lifted is None:
        raise GenerationError("nothing to generate from: no templates and no GSM-8K train records")
    tally = tally if tally is not None else Tally()
    rng = Random(seed)
    seen: set[str] = set()
    share = lifted_share if lifted is not None and lifted.plans else 0.0
    if templates is None:
        share = 1.0
    limit = max_attempts if max_attempts is not None else 20 * n + 1000
    while tally.written < n:
        if tally.attempts >= limit:
            raise GenerationError(f"only {tally.written} of {n} records after {tally.attempts} attempts "
                                  f"({tally.duplicates} duplicates, {tally.failed} failed): the sources are "
                                  "too small for this many distinct records")
        tally.attempts += 1
        use_lift = share > 0 and rng.random() < share
        record = lifted.make(rng) if use_lift else templates.make(rng)  # type: ignore[union-attr]
        if record is None:
            tally.failed += 1
            continue
        key = question_key(record["question"])
        if key in seen:
            tally.duplicates += 1
            continue
        seen.add(key)
        if guard is not None and guard.refuses(record["question"]):
            tally.refused += 1
            continue
        tally.written += 1
        tally.sources[record["source"]] += 1
        if on_record is not None:
            on_record()
        yield record
