"""Rejection sampling: k constrained samples per question, keep those the runtime verifies.

A kept trace checks with no diagnostic at all (no ungrounded input, unless asked), runs, and gives
the gold answer; it is written in canonical form as a record of the shared schema, with the
question's id as ``meta.origin`` (so the training guards see GSM-8K test and dev through it).
Identical traces for one question are kept once.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..decoding.levels import Levels
from ..formatter import format_program
from ..grounding import grounder_for
from ..pipeline import analyze
from ..record import make_record
from .emittable import emittable_ids
from .masks import MaskTable
from .partial import PartialModel
from .rl import PromptItem
from .sampling import Sampler


@dataclass
class FilterStats:
    questions: int = 0
    samples: int = 0
    kept: int = 0
    questions_with_one: int = 0
    kinds: Counter = field(default_factory=Counter)

    def to_json(self) -> dict:
        return {"questions": self.questions, "samples": self.samples, "kept": self.kept,
                "questions_with_a_kept_trace": self.questions_with_one, "outcomes": dict(self.kinds)}


def sampler_for(model, tokenizer, levels: Levels) -> Sampler:
    pm = PartialModel(model, 0, "none", False, emittable_ids(tokenizer))
    pm.to(next(model.parameters()).device)  # its index buffers are made on the CPU
    return Sampler(pm, tokenizer, MaskTable(len(pm.subset)), pm.subset_index.cpu().numpy(), levels)


def rejection_sample(sampler: Sampler, items: list[PromptItem], k: int, temperature: float, max_new_tokens: int,
                     seed: int, source: str, allow_warnings: bool = False,
                     progress: Callable[[int], None] | None = None) -> tuple[list[dict], FilterStats]:
    stats = FilterStats()
    gen = torch.Generator().manual_seed(seed)
    records: list[dict] = []
    for item in items:
        stats.questions += 1
        seen: set[str] = set()
        for j, r in enumerate(sampler.sample(item.prompt_ids, item.question, k, temperature, max_new_tokens, gen)):
            stats.samples += 1
            report = analyze(r.text, expected=item.answer, grounder=grounder_for(item.question))
            if not r.finished:
                stats.kinds["unfinished"] += 1
                continue
            if not report.correct:
                stats.kinds["valid, wrong answer" if report.ok and report.answer is not None else "invalid"] += 1
                continue
            if report.diagnostics and not allow_warnings:
                stats.kinds["correct with warnings"] += 1
                continue
            text = format_program(report.program)
            if text in seen:
                stats.kinds["duplicate"] += 1
                continue
            seen.add(text)
            stats.kinds["kept"] += 1
            expert = report.program.blocks[0].expert
            records.append(make_record(f"{item.id}-rs{j}", item.question, text, item.answer, expert,
                                       f"rejection-sampling:{source}",
                                       {"origin": item.id, "temperature": temperature, "k": k, "seed": seed}))
        stats.questions_with_one += bool(seen)
        if progress:
            progress(1)
    stats.kept = len(records)
    return records, stats


def choose(items: list[PromptItem], n: int | None, seed: int) -> list[PromptItem]:
    if n is None or n >= len(items):
        return items
    picked = set(random.Random(seed).sample(range(len(items)), n))
    return [x for i, x in enumerate(items) if i in picked]
