"""An expert brings its ops through the Expert API alone: a test-only expert, registered here, with
a compute table of its own (clock arithmetic) and an op no other expert has (`avg`), is checked,
run, decoded by the guide at every level and fuzzed clean, with no tracelang module edited.

`avg` is not in the grammar's COMPUTE_OP terminal, so the canonical form (and so the decoder) cannot
spell it: the lenient form checks and runs it, and the decoder never offers it. A new op *name*
the decoder should write is one line of grammar/trace.lark (spec/adding-an-op.md)."""

from __future__ import annotations

import pytest

from tracelang import analyze
from tracelang import experts as registry
from tracelang.decoding.constraint import Constraint, compile_tokenizer, make_config
from tracelang.decoding.fuzz import fuzz
from tracelang.decoding.levels import Levels
from tracelang.experts.base import COMPUTE_OPS, CORE_HANDLERS, OpSpec, divisor
from tracelang.models.tokenizer_store import tiny_bpe
from tracelang.numbers import ZERO, Exact, mod

HOURS = Exact(12)


def _later(xs: list[Exact], env, node) -> Exact:
    return mod(sum(xs, ZERO), HOURS)


def _avg(xs: list[Exact], env, node) -> Exact:
    return sum(xs, ZERO) / len(xs)


# clock arithmetic: `add` wraps at 12 (0 leaves it unchanged: E401), `mod` as the core's, and `avg`
CLOCK = registry.Expert("clock", "hours on a 12-hour clock", dict(CORE_HANDLERS), {"compute": {
    "add": OpSpec(2, None, _later, "hours later, on the clock", True, (ZERO, "any")),
    "mod": COMPUTE_OPS["mod"],
    "avg": OpSpec(2, None, _avg, "the mean of the args", True),
    "div": OpSpec(2, 2, lambda xs, env, n: xs[0] / divisor(xs[1], n), "first divided by second", divides=True),
}})
PREFIX = "expert: clock\ntrace:\n"
TRACE = PREFIX + """- {op: init, var: start, value: 9}
- {op: init, var: hours, value: 5}
- {op: compute, compute_op: add, args: [start, hours], var: end}
- {op: query, var: end}
"""
LEVELS = ["none", "scope", "scope,ops", "scope,ops,grounding", "all"]


@pytest.fixture(autouse=True)
def clock(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACELANG_CACHE", str(tmp_path / "cache"))
    registry.register(CLOCK)
    yield
    registry.unregister("clock")


def test_the_new_expert_checks_and_runs_by_its_own_table() -> None:
    report = analyze(TRACE)
    assert not report.diagnostics and report.answer == Exact(2)  # 9 + 5 on the clock
    assert analyze(TRACE.replace("compute_op: add", "compute_op: avg")).answer == Exact(7)
    # its own identity (E401) and its own table (E108 lists only the clock's compute ops)
    noop = analyze(TRACE.replace("args: [start, hours]", "args: [start, 0]"))
    assert "E401" in [d.code for d in noop.diagnostics]
    unknown = analyze(TRACE.replace("compute_op: add", "compute_op: mul"))
    assert [d.code for d in unknown.diagnostics] == ["E108"]
    assert unknown.diagnostics[0].hint == "compute takes add, avg, div, mod"


def test_the_guide_decodes_it_at_every_level() -> None:
    compiled = compile_tokenizer(tiny_bpe())
    for name in LEVELS:
        con = Constraint(compiled, make_config(Levels.parse(name), question="It is 9 o'clock. In 5 hours?"))
        assert con.advance_text(TRACE), name
    # the ops level offers the block's expert's compute ops (those the grammar spells), not another's
    con = Constraint(compiled, make_config(Levels.parse("scope,ops"), question=None))
    assert con.advance_text(PREFIX + "- {op: init, var: a, value: 9}\n- {op: compute, compute_op: ")
    assert not con.advance_text("mul")
    # and the values level runs the block's expert: 9 + 3 is 0 on the clock, so `div` by it is E501
    con = Constraint(compiled, make_config(Levels.parse("all"), question="9 and 3 and 2"))
    assert con.advance_text(PREFIX + "- {op: init, var: a, value: 9}\n- {op: init, var: b, value: 3}\n"
                            "- {op: compute, compute_op: add, args: [a, b], var: c}\n"
                            "- {op: init, var: d, value: 2}\n- {op: compute, compute_op: div, args: [d, ")
    assert not con.advance_text("c]")


def test_it_fuzzes_clean() -> None:
    compiled = compile_tokenizer(tiny_bpe())
    count = 0
    for _, _, sample in fuzz(compiled, 20, seed=5, prefix=PREFIX):
        if sample.text is None:
            continue
        count += 1
        report = analyze(sample.text, grounder=set(sample.allowed_values).__contains__)
        bad = [d for d in report.diagnostics if d.severity == "error" or d.code == "W701"]
        assert not bad and report.answer is not None, (sample.text, bad)
    assert count >= 12
