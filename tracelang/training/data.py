"""Training data: corpora in the shared record schema, guarded, tokenized, mixed by weight.

- GSM-8K test is evaluation-only: a record whose ``id`` (or ``meta.origin``, the problem a lifted
  record was made from) is a test id stops the run with an error naming file and line.
- The dev split is for model selection: its records (by id or origin) are skipped and counted.
- Every trace must check, run and give the record's answer; it is trained on in canonical form
  (what the constrained decoder writes). Records that fail are skipped and counted.
- Prompt = ``Prompter(...).prompt(question)`` tokenized as the evaluation backends do; target =
  the trace's tokens then EOS, tokenized on its own (generation starts right after the prompt).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.splits import dev_ids, split_of
from ..errors import UsageError
from ..fileio import InputError
from ..formatter import format_program
from ..pipeline import analyze
from ..record import read_records
from .config import DataSource
from .masks import PositionMasks


class TrainingDataError(UsageError, ValueError):
    """Data that must not or cannot be trained on; the message names file, line and record."""


@dataclass
class Example:
    id: str
    source: int  # index of its DataSource
    question: str
    answer: str | None
    trace: str  # canonical text
    prompt_ids: list[int]
    target_ids: list[int]  # trace tokens, then EOS
    masks: PositionMasks | None = None  # the decoder's masks along the target (constrained loss)
    refused: bool = False  # the decoder refuses the trace at every level: never trained on

    @property
    def input_ids(self) -> list[int]:
        """What the model reads: the prompt and every target token but the last (EOS)."""
        return self.prompt_ids + self.target_ids[:-1]

    @property
    def first_scored(self) -> int:
        """Position whose next token is the first target token."""
        return len(self.prompt_ids) - 1


@dataclass
class DataTally:
    counts: Counter = field(default_factory=Counter)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def line(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))


def _origins(record: dict[str, Any]) -> list[str]:
    ids = [record["id"]]
    meta = record.get("meta") or {}
    origin = meta.get("origin") if isinstance(meta, dict) else None
    if isinstance(origin, str):
        ids.append(origin)
    return ids


def read_source(path: str | Path, tally: DataTally) -> list[dict[str, Any]]:
    """The usable records of one corpus (guarded against GSM-8K test and dev)."""
    out: list[dict[str, Any]] = []
    dev = dev_ids()
    try:
        for n, record in enumerate(read_records(path), start=1):
            tally.add("records")
            ids = _origins(record)
            for rid in ids:
                if split_of(rid) == "test":
                    raise TrainingDataError(f"{path}: record {n} ({record['id']}): comes from GSM-8K test "
                                            f"({rid}), which is for evaluation only; refusing to train on it")
            if any(rid in dev for rid in ids):
                tally.add("skipped (dev split)")
                continue
            if not record.get("question"):
                tally.add("skipped (no question)")
                continue
            out.append(record)
    except InputError as err:
        raise TrainingDataError(str(err)) from None
    return out


def canonical_trace(record: dict[str, Any], tally: DataTally, surface: str = "yaml") -> str | None:
    """The record's trace in canonical form (of ``surface``) if it checks, runs and gives the
    record's answer."""
    report = analyze(record["trace"], expected=record.get("answer"))
    if report.program is None or not report.complete or not report.ok or report.answer is None:
        tally.add("skipped (trace does not check or run)")
        return None
    if report.correct is False:
        tally.add("skipped (wrong answer)")
        return None
    text = format_program(report.program)
    if text != record["trace"]:
        tally.add("reformatted to canonical")
    return text if surface == "yaml" else format_program(report.program, surface=surface)


def tokenize(tokenizer, prompter, question: str, trace: str) -> tuple[list[int], list[int]]:
    prompt = prompter.prompt(question)
    prompt_ids = tokenizer(prompt, add_special_tokens=not prompter.chat)["input_ids"]
    target_ids = tokenizer(trace, add_special_tokens=False)["input_ids"] + [int(tokenizer.eos_token_id)]
    return list(prompt_ids), list(target_ids)


def load_examples(sources: list[DataSource], tokenizer, prompter, max_length: int,
                  tally: DataTally | None = None) -> list[list[Example]]:
    """Examples per source, in file order."""
    tally = tally if tally is not None else DataTally()
    out: list[list[Example]] = []
    for si, src in enumerate(sources):
        if src.weight < 0:
            raise TrainingDataError(f"{src.path}: a negative mixing weight")
        examples = []
        for record in read_source(src.path, tally):
            trace = canonical_trace(record, tally, prompter.surface)
            if trace is None:
                continue
            prompt_ids, target_ids = tokenize(tokenizer, prompter, record["question"], trace)
            if len(prompt_ids) + len(target_ids) - 1 > max_length:
                tally.add("skipped (longer than max_length)")
                continue
            examples.append(Example(record["id"], si, record["question"], record.get("answer"), trace,
                                    prompt_ids, target_ids))
        tally.add("examples", len(examples))
        out.append(examples)
    return out


def epoch_order(sizes: list[int], weights: list[float], seed: int, epoch: int) -> list[tuple[int, int]]:
    """(source, index) pairs of one epoch: each source's records ``weight`` times (the fraction a
    seeded sample, fresh each epoch), shuffled. A pure function of its arguments, so a resumed run
    sees the same order."""
    rng = random.Random(f"tracelang-train:{seed}:{epoch}")
    order: list[tuple[int, int]] = []
    for si, (n, w) in enumerate(zip(sizes, weights, strict=True)):
        whole, frac = int(w), w - int(w)
        for _ in range(whole):
            order.extend((si, i) for i in range(n))
        extra = round(frac * n)
        if extra:
            order.extend((si, i) for i in sorted(rng.sample(range(n), extra)))
    rng.shuffle(order)
    return order
