"""GSM-8K problems: from a local JSONL file (``{"question", "answer"}`` per line, as the dataset ships)
or, where there is network, from the Hugging Face hub through ``datasets`` (``hf:openai/gsm8k:train``).

Each problem gets a stable id from its split and line index (``gsm8k-train-00012``), so splits and
reports name problems without storing any of their text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..fileio import InputError, read_jsonl
from ..numbers import Exact, parse_answer

TRAIN_SIZE = 7473
TEST_SIZE = 1319
HF_PREFIX = "hf:"


@dataclass(frozen=True, slots=True)
class Problem:
    id: str
    index: int
    split: str
    question: str
    solution: str  # the worked solution with <<...>> annotations and the "#### N" line
    gold: Exact | None  # None when the "####" line is missing or not a number

    @property
    def source(self) -> str:
        return f"gsm8k-{self.split}"


def problem_id(split: str, index: int) -> str:
    return f"gsm8k-{split}-{index:05d}"


_GOLD = re.compile(r"####\s*(.+?)\s*$", re.S)


def gold_answer(solution: str) -> Exact | None:
    """The number on the ``#### N`` line (commas, ``$``, negatives, decimals); None if absent."""
    m = _GOLD.search(solution)
    if m is None:
        return None
    return parse_answer(m.group(1).strip().split("\n")[0])


def split_of_path(path: str) -> str:
    """The split name a path implies: ``hf:repo:SPLIT`` or the file's stem (``train.jsonl``)."""
    if path.startswith(HF_PREFIX):
        return path.rsplit(":", 1)[-1]
    stem = Path(path).stem.lower()
    for name in ("train", "test", "dev"):
        if name in stem:
            return name
    return stem or "data"


def rows_from_hub(spec: str) -> Iterator[dict]:
    """``hf:REPO[@CONFIG]:SPLIT``; the config defaults to ``main`` (GSM-8K's)."""
    body = spec[len(HF_PREFIX):]
    repo, _, split = body.rpartition(":")
    if not repo or not split:
        raise InputError(f"{spec}: write the hub source as hf:REPO[@CONFIG]:SPLIT, e.g. hf:openai/gsm8k:train")
    repo, _, config = repo.partition("@")
    try:
        import datasets  # lazily: only this road needs it, and it needs the network
    except ModuleNotFoundError:
        raise InputError(f"{spec}: loading from the hub needs the `datasets` package "
                         "(pip install datasets); or pass a local JSONL path") from None
    try:
        dataset = datasets.load_dataset(repo, config or "main", split=split)
    except Exception as err:  # network, unknown repo or split: one clear line, no traceback
        raise InputError(f"{spec}: could not load from the hub: {err}") from None
    yield from dataset


def load(path: str, split: str | None = None) -> Iterator[Problem]:
    """GSM-8K problems from a local JSONL path or ``hf:REPO[@CONFIG]:SPLIT``; ``InputError`` names the
    file and line of a row without a ``question`` and ``answer`` string."""
    split = split or split_of_path(path)
    rows: Iterator[tuple[int, dict]]
    if path.startswith(HF_PREFIX):
        rows = enumerate(rows_from_hub(path), start=1)
    else:
        rows = read_jsonl(path)
    for index, (line, row) in enumerate(rows):
        question, solution = row.get("question"), row.get("answer")
        if not isinstance(question, str) or not isinstance(solution, str):
            raise InputError(f"{path}:{line}: a GSM-8K row needs `question` and `answer` strings")
        yield Problem(problem_id(split, index), index, split, question, solution, gold_answer(solution))

