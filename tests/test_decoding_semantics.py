"""The constrained decoder's automaton and semantic levels, character by character.

Each case writes a trace prefix that the checker would reject and asserts the constraint refuses
it exactly at the offending text, and accepts it again when that level is switched off.
"""

from __future__ import annotations

import pytest

from tracelang.decoding.automaton import automaton
from tracelang.decoding.constraint import Constraint, make_config
from tracelang.decoding.engine import Compiled
from tracelang.decoding.guide import Levels
from tracelang.decoding.vocab import Vocab
from tracelang.formatter import format_program
from tracelang.ir import STEP_TYPES, step_fields
from tracelang.numbers import Exact
from tracelang.pipeline import parse

HEAD = "expert: arithmetic\ntrace:\n"


@pytest.fixture(scope="module")
def compiled() -> Compiled:
    # a byte vocabulary is enough for character-level tests
    return Compiled(Vocab.build([bytes([b]) for b in range(128)] + [None], (128,), "bytes"))


def state(compiled: Compiled, levels: Levels = Levels(grounding=False), values=None) -> Constraint:
    return Constraint(compiled, make_config(levels, allowed_values=values))


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
    assert roles == {"def", "use", "num", "expert", "ref", "op"}


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
    assert not accepts(compiled, text, levels=Levels(False, False, False, False))


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
    assert not accepts(compiled, head + "- {op: transfer, from_entity: ann, to_entity: v")  # E204
    assert not accepts(compiled, head + "- {op: consume, entity: bo, amount: 1")  # E502
    assert accepts(compiled, head + "- {op: consume, entity: ann, amount: 9/7}")
    assert not accepts(compiled, head + "- {op: consume, entity: ann, amount: 9/2}")  # not canonical (4.5)
    assert not accepts(compiled, head + "- {op: query, var: bo")  # E303: unchanged entity


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
    assert Levels.parse("scope,ops") == Levels(True, True, False, False)
    with pytest.raises(ValueError, match="unknown level"):
        Levels.parse("scope,colour")


def test_forced_text(compiled):
    con = state(compiled)
    con.advance_text("expert: arith")
    assert con.forced_text() == "metic\ntrace:\n- {op: "  # one expert starts so; then literal text
    con.advance_text("metic\ntrace:\n- {op: compute, compute_op: m")
    assert con.forced_text() == ""  # max, min, mod, mul
    con.advance_text("ul, args: [2, 3], var: x}\n- {op: query, var: ")
    assert con.forced_text() == "x}\n"  # the only name a query may return
