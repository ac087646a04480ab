"""Fuzzing the constraint: traces sampled from random logits, no model.

Each step draws i.i.d. Gumbel logits for the tokens the mask allows and takes the argmax — the same
as a uniform choice among the allowed tokens, which is how it is computed (from the bitmask's
popcounts, without unpacking 262k bits). EOS gets a bias so that traces end. Every trace must parse
and check with no error: the constraint is sound exactly when this never fails. A walk that reaches
``max_tokens`` is dropped, or with ``close`` ended the way generation ends a row whose budget runs
out (``Constraint.closing_text``), so that path is fuzzed too and no sample is lost.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..numbers import Exact, render
from .constraint import Constraint
from .engine import Compiled
from .guide import Config
from .levels import Levels


@dataclass
class Sample:
    text: str | None  # None when max_tokens ran out first (and it was not closed)
    tokens: int
    allowed_values: list[Exact] | None
    closed: bool = False  # ended by the constraint's closing text at max_tokens


def pick(mask: np.ndarray, rng: np.random.Generator, eos: tuple[int, ...], eos_weight: float) -> int:
    """A uniformly random allowed token; an allowed EOS weighs ``eos_weight`` tokens."""
    counts = np.bitwise_count(mask).astype(np.int64)
    total = int(counts.sum())
    eos_on = [t for t in eos if (int(mask[t >> 5]) >> (t & 31)) & 1]
    if eos_on:
        share = eos_weight / (eos_weight + max(total - len(eos_on), 0))
        if rng.random() < share or total == len(eos_on):
            return eos_on[0]
        for t in eos_on:  # sample among the others
            mask = mask.copy()
            mask[t >> 5] &= np.uint32(~(1 << (t & 31)) & 0xFFFFFFFF)
        counts = np.bitwise_count(mask).astype(np.int64)
        total = int(counts.sum())
    if total == 0:
        raise RuntimeError("the mask allows no token: a dead end (this is a bug in the constraint)")
    r = int(rng.integers(total))
    cum = np.cumsum(counts)
    word = int(np.searchsorted(cum, r, side="right"))
    r -= int(cum[word - 1]) if word else 0
    bits = int(mask[word])
    for b in range(32):
        if (bits >> b) & 1:
            if r == 0:
                return word * 32 + b
            r -= 1
    raise AssertionError("unreachable")


def random_values(rng: np.random.Generator) -> list[Exact]:
    """A question's worth of quantities when no question is given (for the grounding level)."""
    pool = [Exact(int(rng.integers(0, 1000)))] + [Exact(int(rng.integers(1, 200))) for _ in range(3)] + \
        [Exact(int(rng.integers(1, 40)), 4), Exact(int(rng.integers(1, 9)), 3)]
    return sorted(set(pool[: int(rng.integers(2, len(pool) + 1))]))


def sample_trace(compiled: Compiled, config: Config, rng: np.random.Generator, max_tokens: int = 4096,
                 eos_weight: float = 8.0, allowed_values: list[Exact] | None = None, prefix: str = "",
                 close: bool = False) -> Sample:
    """A random trace; ``prefix`` (text the constraint must accept) starts it, e.g. to pick the expert.
    At ``max_tokens`` it is dropped (text None), or with ``close`` finished by the closing text."""
    con = Constraint(compiled, config)
    if not con.advance_text(prefix):
        raise ValueError(f"the constraint refuses the prefix {prefix!r}")
    mask = con.new_mask()
    eos = compiled.vocab.eos
    out: list[int] = []
    for _ in range(max_tokens):
        con.fill_mask(mask)
        tok = pick(mask, rng, eos, eos_weight)
        con.advance(tok)
        if tok in eos:
            return Sample(prefix + _text(compiled, out), len(out) + 1, allowed_values)
        out.append(tok)
    ending = con.closing_text() if close else None
    if ending is None:
        return Sample(None, len(out), allowed_values)
    return Sample(prefix + _text(compiled, out, ending), len(out), allowed_values, closed=True)


def _text(compiled: Compiled, tokens: list[int], ending: str = "") -> str:
    """The text of ``tokens`` and then ``ending`` (joined as bytes: a token may end mid-character)."""
    return (b"".join(compiled.vocab.bytes_of[t] for t in tokens) + ending.encode()).decode("utf-8")  # type: ignore[misc]


def fuzz(compiled: Compiled, n: int, seed: int = 0, levels: Levels = Levels(),
         questions: list[str | None] | None = None, max_tokens: int = 4096,
         eos_weight: float = 8.0, prefix: str = "", close: bool = False) -> Iterator[tuple[int, str | None, Sample]]:
    """(index, question, sample) for ``n`` traces; question i is ``questions[i % len]`` if given."""
    from .constraint import make_config

    for i in range(n):
        rng = np.random.default_rng([seed, i])
        question = questions[i % len(questions)] if questions else None
        values = None
        if levels.grounding and question is None:
            values = random_values(rng)
        config = make_config(levels, question=question, allowed_values=values)
        yield i, question, sample_trace(compiled, config, rng, max_tokens, eos_weight, values, prefix, close)


def answer_text(value: Exact | None) -> str | None:
    return None if value is None else render(value)


def entropy_bits(mask: np.ndarray) -> float:
    """log2 of the number of allowed tokens (how open a state is)."""
    total = int(np.bitwise_count(mask).sum())
    return math.log2(total) if total else 0.0
