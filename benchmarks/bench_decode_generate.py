"""Tokens of trace per second: a small random model writes the same canonical traces unconstrained
and constrained with fast-forward (teacher-forced: both emit exactly the reference tokens), batch 1,
in the same run. ``tracelang bench generate`` prints tokens/s and forward passes for both (and
constrained without fast-forward)."""

from __future__ import annotations

import pytest
import torch

from tracelang.decoding.constraint import Constraint, compile_tokenizer, make_config
from tracelang.decoding.generate import generate
from tracelang.decoding.levels import Levels
from tracelang.formatter import format_program
from tracelang.models.tiny_model import tiny_model
from tracelang.models.tokenizer_store import tiny_spm
from tracelang.pipeline import parse

from .conftest import ROOT

torch.set_num_threads(1)
TOK = tiny_spm()
MODEL = tiny_model(TOK, seed=0, layers=4, hidden=256)
TEXTS = [format_program(parse(p.read_text()).program) for p in sorted((ROOT / "corpora/examples").glob("*.yaml"))]
REFS = [TOK.encode(t, add_special_tokens=False) + [TOK.eos_token_id] for t in TEXTS]
COMPILED = compile_tokenizer(TOK)


def _run(constrained: bool) -> int:
    n = 0
    for ref in REFS:
        factory = (lambda i: Constraint(COMPILED, make_config(Levels(grounding=False)))) if constrained else None
        [r] = generate(MODEL, TOK, ["Q: a problem\n"], factory, reference=[ref], max_new_tokens=len(ref) + 1,
                       fast_forward=constrained)
        assert r.token_ids == ref
        n += len(ref)
    return n


@pytest.mark.benchmark(group="generate")
def test_unconstrained(benchmark) -> None:
    assert benchmark.pedantic(_run, args=(False,), rounds=3, iterations=1) == sum(map(len, REFS))


@pytest.mark.benchmark(group="generate")
def test_constrained_fast_forward(benchmark) -> None:
    _run(True)
    assert benchmark.pedantic(_run, args=(True,), rounds=3, iterations=1) == sum(map(len, REFS))
