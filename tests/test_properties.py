"""Property tests: formatting round-trips, both parser roads agree, and no text makes check fail."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tracelang import canonical
from tracelang.build import build
from tracelang.diagnostics import CODES
from tracelang.formatter import format_program
from tracelang.grammar import canonical_regex
from tracelang.ir import (
    AddEntityStep,
    Block,
    CompareStep,
    ComputeStep,
    ConsumeStep,
    InitStep,
    Node,
    Num,
    PercentStep,
    Program,
    QueryStep,
    Ref,
    TransferStep,
    Var,
)
from tracelang.numbers import Exact, ceil, floor, mod, power_bits
from tracelang.pipeline import analyze, parse
from tracelang.syntax import parse_cst

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
nums = st.builds(lambda f: Num(value=Exact(f.numerator, f.denominator)),
                 st.fractions(min_value=-10**6, max_value=10**6, max_denominator=64))
var = st.builds(Var, name=names)
arg = st.one_of(var, nums)
args = st.lists(arg, min_size=1, max_size=4)
steps = st.one_of(
    st.builds(InitStep, var=var, value=nums),
    st.builds(InitStep, var=var, source=st.builds(Ref, block=st.sampled_from(["prev", "sub0", "sub3"]))),
    st.builds(ComputeStep, compute_op=st.sampled_from(["add", "sub", "mul", "div", "floor", "max"]), args=args,
              var=var),
    st.builds(QueryStep, var=var),
    st.builds(PercentStep, op=st.sampled_from(["percent_of", "percent_off", "percent_increase"]), base=var,
              rate=var, var=var),
    st.builds(TransferStep, from_entity=var, to_entity=var, amount=arg),
    st.builds(ConsumeStep, entity=var, amount=arg),
    st.builds(AddEntityStep, entity=var, amount=arg),
    st.builds(CompareStep, compute_op=st.sampled_from(["diff", "ratio", "gt"]), args=args, var=var),
)
experts = st.sampled_from(["arithmetic", "percentage", "entity_track", "comparison", "rate_equation", "other"])
blocks = st.builds(Block, expert=experts, trace=st.lists(steps, min_size=1, max_size=8))
programs = st.one_of(
    st.builds(Program, composed=st.just(False), blocks=st.lists(blocks, min_size=1, max_size=1)),
    st.builds(Program, composed=st.just(True), blocks=st.lists(blocks, min_size=1, max_size=3)),
)


def with_spans(node: object) -> object:
    """A node's meaning *and* positions, for comparing the two parser roads exactly."""
    if isinstance(node, Node):
        fields = {k: with_spans(getattr(node, k)) for k in type(node).model_fields if k != "span"}
        return (type(node).__name__, tuple(node.span) if node.span else None, fields)
    if isinstance(node, list):
        return [with_spans(x) for x in node]
    return node


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs)
def test_format_round_trips(program: Program) -> None:
    text = format_program(program)
    assert canonical_regex().fullmatch(text)
    again = parse(text).program
    assert again == program
    assert format_program(again) == text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs)
def test_fast_road_equals_full_road(program: Program) -> None:
    text = format_program(program)
    fast = canonical.read(text)
    full = build(parse_cst(text).root)
    assert full.complete
    assert with_spans(fast) == with_spans(full.program)


def _block_style(text: str) -> str:
    """Rewrite a canonical single trace in YAML block style with quoted names and odd spacing."""
    out = []
    for line in text.splitlines():
        if not line.startswith("- {"):
            out.append(line)
            continue
        pairs = line[3:-1].split(", ")
        merged: list[str] = []
        for p in pairs:  # re-join list items split above
            if merged and merged[-1].count("[") > merged[-1].count("]"):
                merged[-1] += ", " + p
            else:
                merged.append(p)
        first, *rest = merged
        out.append("  - " + first)
        for p in rest:
            key, _, value = p.partition(": ")
            if not value.startswith("[") and value[:1].isalpha() and "." not in value:
                value = f"'{value}'"
            out.append(f"    {key}:   {value}  ")
    return "\n".join(out) + "\n"


@settings(max_examples=150, deadline=None)
@given(st.builds(Program, composed=st.just(False), blocks=st.lists(blocks, min_size=1, max_size=1)))
def test_block_style_means_the_same(program: Program) -> None:
    text = format_program(program)
    assert parse(_block_style(text)).program == program


yamlish = st.text(alphabet=st.sampled_from(list("- {}[]:,'\"#\n\t abcop0123456789._/*$%")), max_size=300)


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(max_size=300), yamlish))
def test_check_never_raises(text: str) -> None:
    report = analyze(text)
    assert isinstance(report.ok, bool)
    for d in report.diagnostics:
        assert d.line >= 1 and d.column >= 1
        assert not CODES[d.code].retired


@settings(max_examples=200, deadline=None)
@given(programs, st.integers(min_value=0, max_value=10**6), st.text(max_size=5))
def test_mutated_canonical_text_never_raises(program: Program, pos: int, junk: str) -> None:
    text = format_program(program)
    i = pos % (len(text) + 1)
    report = analyze(text[:i] + junk + text[i + 1:])
    assert isinstance(report.ok, bool)
    assert not any(CODES[d.code].retired for d in report.diagnostics)


def test_fraction_strategy_values_are_exact() -> None:
    # the strategy above builds Exact from Fraction; make sure the conversion is exact
    f = Fraction(-7, 3)
    assert Exact(f.numerator, f.denominator) * 3 == -7


_FRACTIONS = st.fractions(min_value=-10**6, max_value=10**6, max_denominator=1000)


@given(_FRACTIONS, _FRACTIONS)
def test_exact_helpers_agree_with_fractions(x: Fraction, y: Fraction) -> None:
    """floor, ceil and the floored remainder on exact values are Python's on Fraction."""
    ex, ey = Exact(x.numerator, x.denominator), Exact(y.numerator, y.denominator)
    assert floor(ex) == math.floor(x) and ceil(ex) == math.ceil(x)
    if y:
        r = x % y  # Fraction's % is floored, as the language's mod is
        assert mod(ex, ey) == Exact(r.numerator, r.denominator)


@given(_FRACTIONS, st.integers(min_value=-20, max_value=20))
def test_power_bits_bounds_the_power(x: Fraction, e: int) -> None:
    assume(e != 0 and (e > 0 or x != 0))  # x**0 is 1 whatever the bound; 0**-e is no number
    ex = Exact(x.numerator, x.denominator)
    p = ex**e
    assert max(p.numerator.bit_length(), p.denominator.bit_length()) <= power_bits(ex, e)
