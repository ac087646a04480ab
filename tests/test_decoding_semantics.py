"""The constrained decoder's automaton and semantic levels, character by character.

Each case writes a trace prefix that the checker would reject and asserts the constraint refuses
it exactly at the offending text, and accepts it again when that level is switched off.
"""

from __future__ import annotations

import random

import pytest

from tracelang.decoding.automaton import automaton
from tracelang.decoding.constraint import Constraint, make_config
from tracelang.decoding.engine import Compiled
from tracelang.decoding.levels import Levels
from tracelang.decoding.vocab import Vocab
from tracelang.formatter import format_program
from tracelang.ir import STEP_TYPES, step_fields
from tracelang.numbers import Exact
from tracelang.pipeline import analyze, parse

HEAD = "expert: arithmetic\ntrace:\n"


@pytest.fixture(scope="module")
def compiled() -> Compiled:
    # a byte vocabulary is enough for character-level tests
    return Compiled(Vocab.build([bytes([b]) for b in range(128)] + [None], (128,), "bytes"))


def state(compiled: Compiled, levels: Levels = Levels(grounding=False), values=None, **kw) -> Constraint:
    return Constraint(compiled, make_config(levels, allowed_values=values, **kw))


def accepts(compiled: Compiled, text: str, **kw) -> bool:
    return state(compiled, **kw).advance_text(text)


def test_slots_carry_ir_fields():
    auto = automaton()
    for occ in auto.nfa.occurrences:
        if occ.slot is None or occ.slot.role in ("expert",) or occ.slot.key == "op":
            continue
        cls = next(c for c in STEP_TYPES.values() if c.__name__ == occ.slot.step)
        assert occ.slot.key in step_fields(cls)
    roles = {o.slot.role for o in auto.nfa.occurrences if o.slot}
    assert roles == {"def", "use", "target", "num", "expert", "ref", "op"}


def test_examples_are_accepted_and_end(compiled, root):
    for path in sorted((root / "corpora" / "examples").glob("*.yaml")):
        text = format_program(parse(path.read_text()).program)
        con = state(compiled)
        assert con.advance_text(text), path.name
        assert con.can_end(), path.name
        assert not state(compiled).advance_text(text + " "), "nothing may follow a complete trace"


@pytest.mark.parametrize("text", [
    HEAD + "- {op: init, var: a, value: 4 * 18}",  # an expression in init
    HEAD + "- {op: init, var: a, value: 1/2}",  # not canonical: 0.5
    HEAD + "- {op: init, var: a, value: 2/6}",  # not in lowest terms
    HEAD + "- {op: init, var: a, value: 1.50}",  # trailing zero
    HEAD + "- {op: init,  var: a, value: 1}",  # spacing
    HEAD + "- {op: init, value: 1, var: a}",  # key order
    HEAD + "- {op: init, var: a, value: -0}",
])
def test_non_canonical_text_is_refused(compiled, text):
    assert not accepts(compiled, text, levels=Levels.none())


def test_scope(compiled):
    base = HEAD + "- {op: init, var: a, value: 3}\n"
    assert not accepts(compiled, base + "- {op: compute, compute_op: add, args: [b")  # E201
    assert not accepts(compiled, base + "- {op: init, var: a,")  # E202: `a` again
    assert accepts(compiled, base + "- {op: init, var: ab, value: 2}\n")  # a longer fresh name is fine
    off = Levels(scope=False, grounding=False)
    assert accepts(compiled, base + "- {op: compute, compute_op: add, args: [b", levels=off)


def test_query_rules(compiled):
    base = HEAD + "- {op: init, var: a, value: 3}\n"
    assert not accepts(compiled, base + "- {op: q")  # E303: nothing computed yet
    con = state(compiled)
    assert con.advance_text(base + "- {op: compute, compute_op: mul, args: [a, 2], var: b}\n")
    assert not con.can_end()  # E301: no query yet
    assert con.advance_text("- {op: query, var: b}\n")
    assert con.can_end()
    assert not state(compiled).advance_text(base + "- {op: compute, compute_op: mul, args: [a, 2], var: b}\n"
                                            "- {op: query, var: b}\n-")  # E304


def test_values(compiled):
    zero = HEAD + "- {op: init, var: z, value: 0}\n- {op: init, var: a, value: 3}\n"
    assert not accepts(compiled, zero + "- {op: compute, compute_op: add, args: [a, z]")  # E401 via a variable
    assert not accepts(compiled, zero + "- {op: compute, compute_op: mul, args: [a, 1]")  # E401 literal
    assert not accepts(compiled, zero + "- {op: compute, compute_op: div, args: [a, z]")  # E501
    assert not accepts(compiled, zero + "- {op: compute, compute_op: div, args: [a, 0]")  # E501 literal
    assert accepts(compiled, zero + "- {op: compute, compute_op: div, args: [a, 0.5]")
    assert accepts(compiled, zero + "- {op: compute, compute_op: sub, args: [z, a]")  # 0 first is fine
    twice = zero + "- {op: compute, compute_op: add, args: [a, 2], var: b}\n"
    assert not accepts(compiled, twice + "- {op: compute, compute_op: add, args: [2, a]")  # E402 (commutative)
    assert accepts(compiled, twice + "- {op: compute, compute_op: add, args: [2, a, 5]")  # a longer sum is new
    assert not accepts(compiled, zero + "- {op: compute, compute_op: pow, args: [a, 0.5]")  # E503
    assert accepts(compiled, zero + "- {op: compute, compute_op: div, args: [a, z]",
                   levels=Levels(grounding=False, values=False))


def test_entities(compiled):
    head = "expert: entity_track\ntrace:\n- {op: add_entity, entity: ann, amount: 5}\n" \
           "- {op: add_entity, entity: bo, amount: 0}\n- {op: init, var: v, value: 3}\n"
    assert accepts(compiled, head + "- {op: transfer, from_entity: ann, to_entity: bo, amount: 5}")
    # E502; the prefix `6` is still allowed, as it may become 6/7
    assert not accepts(compiled, head + "- {op: transfer, from_entity: ann, to_entity: bo, amount: 6}")
    assert accepts(compiled, head + "- {op: transfer, from_entity: ann, to_entity: v, amount: 5}")  # any variable
    assert not accepts(compiled, head + "- {op: consume, entity: bo")  # holds 0: only a no-op amount (E401)
    assert accepts(compiled, head + "- {op: consume, entity: ann, amount: 9/7}")
    assert not accepts(compiled, head + "- {op: consume, entity: ann, amount: 9/2}")  # not canonical (4.5)
    assert not accepts(compiled, head + "- {op: query, var: bo")  # E303: unchanged entity


ENTITY = "expert: entity_track\ntrace:\n"


@pytest.mark.parametrize("text", [
    # the study's idiom: init, change in place, query or compute
    ENTITY + "- {op: init, var: eggs, value: 16}\n- {op: consume, entity: eggs, amount: 3}\n"
    "- {op: consume, entity: eggs, amount: 4}\n- {op: init, var: price, value: 2}\n"
    "- {op: compute, compute_op: mul, args: [eggs, price], var: result}\n- {op: query, var: result}\n",
    ENTITY + "- {op: init, var: items, value: 13}\n- {op: add_entity, entity: items, amount: 7}\n"
    "- {op: consume, entity: items, amount: 8}\n- {op: query, var: items}\n",
    ENTITY + "- {op: init, var: a, value: 35}\n- {op: transfer, from_entity: a, to_entity: b, amount: 13}\n"
    "- {op: query, var: b}\n",  # a missing receiver starts at 0
    ENTITY + "- {op: init, var: a, value: 2}\n- {op: init, var: b, value: 3}\n"
    "- {op: compute, compute_op: add, args: [a, b], var: c}\n- {op: consume, entity: c, amount: b}\n"
    "- {op: query, var: c}\n",  # a computed variable changes too; an amount by name
    "- expert: arithmetic\n  trace:\n  - {op: init, var: a, value: 2}\n"
    "  - {op: compute, compute_op: mul, args: [a, 3], var: b}\n  - {op: query, var: b}\n"
    "- expert: entity_track\n  trace:\n  - {op: init, var: p, source: prev.result}\n"
    "  - {op: transfer, from_entity: p, to_entity: q, amount: 1}\n  - {op: query, var: p}\n",
])
def test_entity_idiom_is_accepted_and_ends(compiled, text):
    con = state(compiled)
    assert con.advance_text(text) and con.can_end()


@pytest.mark.parametrize(("text", "code"), [
    (ENTITY + "- {op: init, var: a, value: 5}\n- {op: consume, entity: a, amount: 6}", "E502"),
    (ENTITY + "- {op: init, var: a, value: 5}\n- {op: consume, entity: b", "E201"),
    (ENTITY + "- {op: init, var: a, value: 5}\n- {op: transfer, from_entity: b", "E201"),
    (ENTITY + "- {op: init, var: a, value: 5}\n- {op: query, var: a", "E303"),
    (ENTITY + "- {op: init, var: a, value: 5}\n- {op: add_entity, entity: b, amount: 5}\n- {op: query, var: b",
     "E303"),
    (ENTITY + "- {op: init, var: a, value: 5}\n- {op: consume, entity: a, amount: 0}", "E401"),
    (ENTITY + "- {op: init, var: a, value: 5}\n- {op: add_entity, entity: a, amount: 0}", "E401"),
    (ENTITY + "- {op: init, var: a, value: 5}\n- {op: init, var: z, value: 0}\n"
     "- {op: transfer, from_entity: a, to_entity: b, amount: z}", "E401"),
    (ENTITY + "- {op: init, var: a, value: 5}\n- {op: transfer, from_entity: a, to_entity: a,", "E401"),
    (ENTITY + "- {op: add_entity, entity: a, amount: 5}\n- {op: init, var: a,", "E202"),
])
def test_entity_near_misses_are_refused(compiled, text, code):
    assert not accepts(compiled, text), code


def _random_entity_trace(r: random.Random) -> str:
    names = ["a", "b", "c", "d"]

    def arg() -> str:
        return r.choice(names) if r.random() < 0.4 else str(r.choice([0, 1, 1, 2, 3, 5, -2]))

    steps = [f"- {{op: init, var: a, value: {r.choice([0, 3, 5, 10])}}}"]
    if r.random() < 0.5:
        steps.append(f"- {{op: add_entity, entity: b, amount: {r.choice([0, 2, 4])}}}")
    for _ in range(r.randint(1, 4)):
        steps.append(r.choice([
            lambda: f"- {{op: init, var: {r.choice(names)}, value: {r.choice([0, 1, 2, 3, 5, 10])}}}",
            lambda: f"- {{op: add_entity, entity: {r.choice(names)}, amount: {arg()}}}",
            lambda: f"- {{op: transfer, from_entity: {r.choice(names)}, to_entity: {r.choice(names)}, "
                    f"amount: {arg()}}}",
            lambda: f"- {{op: consume, entity: {r.choice(names)}, amount: {arg()}}}",
            lambda: f"- {{op: compute, compute_op: {r.choice(['add', 'sub', 'mul'])}, args: [{arg()}, {arg()}], "
                    f"var: {r.choice([*names, 'e', 'f'])}}}",
        ])())
    steps.append(f"- {{op: query, var: {r.choice([*names, 'e'])}}}")
    return ENTITY + "\n".join(steps) + "\n"


def test_guide_accepts_exactly_what_the_checker_accepts(compiled):
    """Random entity traces over a few names: the decoder takes a whole trace (and may end it) exactly
    when `check` finds no error in it, runtime errors included."""
    r = random.Random(7)
    verdicts, codes = [], set()
    for _ in range(2000):
        text = _random_entity_trace(r)
        report = analyze(text)
        con = state(compiled)
        assert (con.advance_text(text) and con.can_end()) == report.ok, (text, report.diagnostics)
        verdicts.append(report.ok)
        codes |= {d.code for d in report.diagnostics}
    assert sum(verdicts) >= 25
    assert {"E201", "E202", "E303", "E401", "E502", "E503"} <= codes, codes


def test_a_stated_one_is_not_a_no_op(compiled):
    """The question's own 1 may multiply (E401 exempts it); a constant 1 it does not state may not."""
    head = HEAD + "- {op: init, var: speed, value: 40}\n- {op: init, var: hours, value: 1}\n"
    step = "- {op: compute, compute_op: mul, args: [speed, hours], var: result}\n"
    stated = "A car goes 40 miles per hour. How far does it go in 1 hour?"
    assert accepts(compiled, head + step, levels=Levels(), question=stated)
    assert accepts(compiled, head + step, stated_values=[Exact(1)])
    assert not accepts(compiled, head + step, levels=Levels(), question=stated.replace("1 hour", "an hour"))
    assert not accepts(compiled, head + step)
    assert not accepts(compiled, head + "- {op: compute, compute_op: mul, args: [speed, 1]", question=stated)


def test_ops(compiled):
    assert not accepts(compiled, HEAD + "- {op: compare")  # E102: arithmetic has no compare
    assert not accepts(compiled, "expert: algebra")  # E101
    assert not accepts(compiled, HEAD + "- {op: compute, compute_op: mul, args: [2]")  # E109 (close)
    assert accepts(compiled, "expert: comparison\ntrace:\n- {op: compare")
    assert accepts(compiled, HEAD + "- {op: compare", levels=Levels(ops=False, values=False, grounding=False))


def test_grounding(compiled):
    values = [Exact(12), Exact(3, 4)]
    assert accepts(compiled, HEAD + "- {op: init, var: a, value: 12}", levels=Levels(), values=values)
    assert accepts(compiled, HEAD + "- {op: init, var: a, value: 0.75}", levels=Levels(), values=values)
    assert not accepts(compiled, HEAD + "- {op: init, var: a, value: 13", levels=Levels(), values=values)
    assert not accepts(compiled, HEAD + "- {op: init, var: a, value: 1}", levels=Levels(), values=values)
    assert accepts(compiled, HEAD + "- {op: init, var: a, value: 13}", levels=Levels(grounding=False), values=values)


def test_composed_sources(compiled):
    first = "- expert: arithmetic\n  trace:\n"
    assert not accepts(compiled, first + "  - {op: init, var: p, source")  # no earlier block
    block = first + "  - {op: init, var: a, value: 2}\n  - {op: compute, compute_op: mul, args: [a, 3], var: b}\n" \
                    "  - {op: query, var: b}\n"
    assert accepts(compiled, block + "- expert: arithmetic\n  trace:\n  - {op: init, var: p, source: prev.result}\n")
    assert not accepts(compiled, block + "- expert: arithmetic\n  trace:\n  - {op: init, var: p, source: sub1.")


def test_levels_parse():
    assert Levels.parse("all") == Levels()
    assert Levels.parse("scope,ops") == Levels(scope=True, ops=True, grounding=False, values=False)
    with pytest.raises(ValueError, match="unknown level"):
        Levels.parse("scope,colour")


def test_levels_are_built_by_name_only():
    from tracelang.decoding.levels import LEVELS

    assert Levels.parse(",".join(LEVELS)) == Levels() and Levels.none().names == ()
    assert Levels.parse("ops,values").names == ("ops", "values")
    assert Levels().without("grounding") == Levels.parse("scope,ops,values")
    with pytest.raises(TypeError):
        Levels(True, True, False, False)  # type: ignore[misc]  # by position: refused
    with pytest.raises(ValueError, match="unknown level"):
        Levels().without("colour")


def test_forced_text(compiled):
    con = state(compiled)
    con.advance_text("expert: arith")
    assert con.forced_text() == "metic\ntrace:\n- {op: "  # one expert starts so; then literal text
    con.advance_text("metic\ntrace:\n- {op: compute, compute_op: m")
    assert con.forced_text() == ""  # max, min, mod, mul
    con.advance_text("ul, args: [2, 3], var: x}\n- {op: query, var: ")
    assert con.forced_text() == "x}\n"  # the only name a query may return
