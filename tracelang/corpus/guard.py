"""The contamination guard generation calls: refuse a question that overlaps GSM-8K test.

``load_guard(test_path)`` returns an object with ``refuses(question) -> bool``. It uses the data
layer's guard (``tracelang.data.contamination``) when that module is present, so that every
corpus writer in the project refuses the same things; otherwise the fallback below, which
applies the usual n-gram rule: a question is refused when it shares any run of ``N`` words with
a test question, numbers masked (a lifted train problem with new numbers is still the same text),
or when a short question equals a test question outright.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..records import InputError

N = 13  # words in an n-gram, as in the GPT-3 contamination study
_WORD = re.compile(r"\$?\d[\d,]*(?:\.\d+)?%?|[a-z]+(?:'[a-z]+)?")


def _tokens(text: str) -> list[str]:
    return ["#" if t[0] in "$0123456789" else t for t in _WORD.findall(text.lower())]


def _grams(tokens: list[str]) -> Iterable[int]:
    if len(tokens) < N:
        yield hash(("short", *tokens))
        return
    for i in range(len(tokens) - N + 1):
        yield hash(tuple(tokens[i:i + N]))


class NgramGuard:
    def __init__(self, questions: Iterable[str]):
        self.grams: set[int] = set()
        self.count = 0
        for q in questions:
            self.count += 1
            self.grams.update(_grams(_tokens(q)))

    def refuses(self, question: str) -> bool:
        return any(g in self.grams for g in _grams(_tokens(question)))


def load_guard(test_path: str):
    """The guard for the GSM-8K test file at ``test_path`` (``InputError`` if it cannot be read)."""
    try:
        from ..data import contamination  # the data layer's guard, shared by every corpus writer
    except ImportError:
        contamination = None
    if contamination is not None and hasattr(contamination, "load_guard"):
        return contamination.load_guard(test_path)
    from ..data.schema import read_jsonl

    questions = []
    for line, row in read_jsonl(test_path):
        q = row.get("question")
        if not isinstance(q, str):
            raise InputError(f"{test_path}:{line}: a GSM-8K row needs a `question` string")
        questions.append(q)
    return NgramGuard(questions)
