"""Per-token mask time with the Gemma-3 tokenizer: tracelang (scope, ops, grounding and values on)
against xgrammar and llguidance given the same grammar (syntax only), in the same run.

Each round fills the mask for every token of the same canonical traces and takes the token. Run:
``pytest benchmarks/bench_decode.py --benchmark-enable``. ``tracelang bench decode`` prints the
per-token distribution (mean, p50, p99) and compile times.
"""

from __future__ import annotations

from itertools import islice

import pytest

from tracelang.data.gsm8k import load
from tracelang.data.importer import import_problems
from tracelang.decoding.constraint import Constraint, compile_tokenizer, make_config
from tracelang.decoding.levels import Levels
from tracelang.formatter import format_program
from tracelang.models.tokenizer_store import embedded_tokenizer
from tracelang.pipeline import parse

from .conftest import GSM8K, ROOT


def _corpus() -> list[tuple[str, str | None]]:
    out = [(format_program(parse(p.read_text()).program), None)
           for p in sorted((ROOT / "corpora/examples").glob("*.yaml"))]
    train = GSM8K / "train.jsonl"
    if train.exists():
        out += [(r["trace"], r["question"]) for r in import_problems(islice(load(str(train)), 60)).records]
    return out


CORPUS = _corpus()
TOK = embedded_tokenizer()
IDS = [TOK.encode(text, add_special_tokens=False) + [TOK.eos_token_id] for text, _ in CORPUS]


def _ours() -> int:
    compiled = compile_tokenizer(TOK)
    n = 0
    for (_, question), ids in zip(CORPUS, IDS, strict=True):
        con = Constraint(compiled, make_config(Levels(grounding=question is not None), question=question))
        buf = con.new_mask()
        for t in ids:
            con.fill_mask(buf)
            con.advance(t)
            n += 1
    return n


@pytest.mark.benchmark(group="mask")
def test_tracelang(benchmark) -> None:
    _ours()  # the lazy caches fill once, as a compiled grammar would
    assert benchmark(_ours) == sum(len(i) for i in IDS)


@pytest.mark.benchmark(group="mask")
def test_xgrammar(benchmark) -> None:
    xgr = pytest.importorskip("xgrammar")
    from tracelang.decoding.export import to_ebnf

    info = xgr.TokenizerInfo.from_huggingface(TOK, vocab_size=len(TOK))
    compiled = xgr.GrammarCompiler(info).compile_grammar(to_ebnf())
    bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)

    def run() -> int:
        n = 0
        for ids in IDS:
            m = xgr.GrammarMatcher(compiled)
            for t in ids:
                m.fill_next_token_bitmask(bitmask)
                assert m.accept_token(t)
                n += 1
        return n

    assert benchmark(run) == sum(len(i) for i in IDS)


@pytest.mark.benchmark(group="mask")
def test_llguidance(benchmark) -> None:
    pytest.importorskip("llguidance")
    import llguidance
    import llguidance.hf
    import llguidance.numpy as llnp

    from tracelang.decoding.export import to_lark

    lltok = llguidance.hf.from_tokenizer(TOK, n_vocab=len(TOK))
    grammar = llguidance.grammar_from("lark", to_lark())
    bitmask = llnp.allocate_token_bitmask(1, lltok.vocab_size)

    def run() -> int:
        n = 0
        for ids in IDS:
            m = llguidance.LLMatcher(lltok, grammar)
            for t in ids:
                llnp.fill_next_token_bitmask(m, bitmask, 0)
                assert m.consume_token(t)
                n += 1
        return n

    assert benchmark(run) == sum(len(i) for i in IDS)
