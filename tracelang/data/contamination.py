"""Contamination guard: does a question overlap a reference set (GSM-8K test, by default)?

Two detectors, over normalised text (lowercase words and numbers, commas dropped from numbers):
  ngram     the question shares a run of N tokens (13 by default) with a reference question, numbers
            masked: a copy with new numbers is still a copy; a question shorter than N tokens
            matches a reference with the same whole (masked) text;
  skeleton  the same numbers (as a multiset, at least two) and mostly the same content words
            (Jaccard >= ``SKELETON_JACCARD``): a reference problem reworded around its numbers.

Corpus writers call ``write_guarded`` (or ``load_guard(path).refuses(question)`` per record) so that
a contaminated record is refused unless the caller allows it; ``tracelang corpus contamination``
reports a whole corpus.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..fileio import InputError, read_jsonl
from ..paths import CHECKOUT
from ..record import write_records
from .gsm8k import problem_id, split_of_path

NGRAM = 13
SKELETON_JACCARD = 0.5
_TOKEN = re.compile(r"[0-9][0-9,]*(?:\.[0-9]+)?|[a-z]+")
_FUNCTION_WORDS = frozenset(re.findall(r"\w+", """
    a an the of to in on at for with and or but is are was were be been has have had it this that these those
    each every as than by from into how many much what if then so she he they we you her his their its
"""))


def tokens(text: str) -> list[str]:
    """Lowercase words and numbers (``1,200`` -> ``1200``, ``3.50`` -> ``3.5``)."""
    out = []
    for tok in _TOKEN.findall(text.lower()):
        if tok[0].isdigit():
            tok = tok.replace(",", "")
            if "." in tok:
                tok = tok.rstrip("0").rstrip(".")
        out.append(tok)
    return out


def _is_number(tok: str) -> bool:
    return tok[0].isdigit()


@dataclass(frozen=True, slots=True)
class Match:
    kind: str  # ngram | skeleton
    reference_id: str
    detail: str  # the shared n-gram (numbers masked as #), or the shared numbers

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "reference": self.reference_id, "detail": self.detail}


@dataclass
class Guard:
    """An index of reference questions; ``check`` finds the first overlap of a question."""

    n: int = NGRAM
    ids: list[str] = field(default_factory=list)
    grams: dict[tuple[str, ...], int] = field(default_factory=dict)
    numbers: dict[tuple[str, ...], list[tuple[int, frozenset[str]]]] = field(default_factory=dict)

    def add(self, reference_id: str, question: str) -> None:
        index = len(self.ids)
        self.ids.append(reference_id)
        toks = tokens(question)
        masked = tuple("#" if _is_number(t) else t for t in toks)
        for gram in self._grams(masked):
            self.grams.setdefault(gram, index)
        nums = tuple(sorted(t for t in toks if _is_number(t)))
        if len(nums) >= 2:
            self.numbers.setdefault(nums, []).append((index, _content(toks)))

    def _grams(self, toks: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        if len(toks) < self.n:
            if toks:
                yield tuple(toks)
            return
        for i in range(len(toks) - self.n + 1):
            yield tuple(toks[i:i + self.n])

    def check(self, question: str) -> Match | None:
        toks = tokens(question)
        masked = tuple("#" if _is_number(t) else t for t in toks)
        for gram in self._grams(masked):
            index = self.grams.get(gram)
            if index is not None:
                return Match("ngram", self.ids[index], " ".join(gram))
        nums = tuple(sorted(t for t in toks if _is_number(t)))
        if len(nums) >= 2 and nums in self.numbers:
            words = _content(toks)
            for index, ref_words in self.numbers[nums]:
                union = words | ref_words
                if union and len(words & ref_words) / len(union) >= SKELETON_JACCARD:
                    return Match("skeleton", self.ids[index], " ".join(nums))
        return None

    def refuses(self, question: str) -> bool:
        """True when ``check`` finds an overlap (the interface corpus writers call)."""
        return self.check(question) is not None

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_questions(cls, items: Iterable[tuple[str, str]], n: int = NGRAM) -> Guard:
        guard = cls(n=n)
        for reference_id, question in items:
            guard.add(reference_id, question)
        return guard

    @classmethod
    def from_path(cls, path: str | Path, n: int = NGRAM) -> Guard:
        """A guard over a JSON Lines file of questions: records (with ``id``) or raw GSM-8K rows (ids
        from the split the file name implies and the line index)."""
        return cls.from_questions(reference_questions(path), n)


def _content(toks: list[str]) -> frozenset[str]:
    return frozenset(t for t in toks if not _is_number(t) and t not in _FUNCTION_WORDS)


def load_guard(path: str | Path, n: int = NGRAM) -> Guard:
    """The guard over the reference file at ``path`` (``InputError`` if it cannot be read)."""
    return Guard.from_path(path, n)


def reference_questions(path: str | Path) -> Iterator[tuple[str, str]]:
    split = split_of_path(str(path))
    for index, (line, obj) in enumerate(read_jsonl(path)):
        question = obj.get("question")
        if question is not None and not isinstance(question, str):
            raise InputError(f"{path}:{line}: `question` is {type(question).__name__}, not a string")
        if isinstance(question, str):
            rid = obj.get("id") if isinstance(obj.get("id"), str) else problem_id(split, index)
            yield rid, question


class ContaminationError(UsageError, ValueError):
    """A record overlaps the reference set and the caller did not allow it."""


@dataclass
class GuardedWrite:
    written: int = 0
    refused: list[tuple[str, Match]] = field(default_factory=list)  # (record id, match)
    allowed: list[tuple[str, Match]] = field(default_factory=list)  # contaminated but let through


def write_guarded(path: str | Path, records: Iterable[dict[str, Any]], guard: Guard | None,
                  allow_contaminated: bool = False) -> GuardedWrite:
    """Write records atomically, leaving out every record whose question overlaps the guard's
    reference set (unless ``allow_contaminated``, which writes them and lists them as allowed)."""
    summary = GuardedWrite()

    def kept() -> Iterator[dict[str, Any]]:
        for record in records:
            question = record.get("question")
            match = guard.check(question) if guard is not None and isinstance(question, str) else None
            if match is not None:
                (summary.allowed if allow_contaminated else summary.refused).append((record["id"], match))
                if not allow_contaminated:
                    continue
            yield record

    summary.written = write_records(path, kept())
    return summary


def default_reference(start: str | Path = ".") -> Path | None:
    """GSM-8K test beside the repository (``../shared/data/gsm8k/test.jsonl`` from the repo root or
    the working directory), the reference corpus writers guard against by default; None if absent."""
    here = Path(start).resolve()
    for base in (here, *here.parents, CHECKOUT):
        candidate = base.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
        if candidate.is_file():
            return candidate
    return None
