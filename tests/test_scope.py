"""The one scope model (tracelang/scope.py): what the checker and the decoder's guide both advance."""

from __future__ import annotations

from typing import ClassVar, Literal

import pytest

from tracelang import experts
from tracelang.checker import block_scope, check
from tracelang.decoding.constraint import Constraint, make_config
from tracelang.decoding.engine import Compiled
from tracelang.decoding.levels import Levels
from tracelang.decoding.vocab import Vocab
from tracelang.experts import Env
from tracelang.grounding import grounder_for
from tracelang.ir import Arg, Step, Var, names_in
from tracelang.limits import DEFAULT_LIMITS
from tracelang.numbers import Exact
from tracelang.pipeline import parse
from tracelang.scope import Def, Scope, computation_key, literal_key

TRACES = {
    "arithmetic": """expert: arithmetic
trace:
- {op: init, var: boxes, value: 7}
- {op: init, var: per_box, value: 12}
- {op: init, var: eaten, value: 5}
- {op: compute, compute_op: mul, args: [boxes, per_box], var: total}
- {op: compute, compute_op: sub, args: [total, eaten], var: left}
- {op: compute, compute_op: div, args: [left, 2], var: half}
- {op: compute, compute_op: floor, args: [half], var: result}
- {op: query, var: result}
""",
    "entity": """expert: entity_track
trace:
- {op: init, var: ann, value: 20}
- {op: add_entity, entity: bob, amount: 4}
- {op: transfer, from_entity: ann, to_entity: bob, amount: 6}
- {op: transfer, from_entity: bob, to_entity: cid, amount: 3}
- {op: consume, entity: ann, amount: 2}
- {op: compute, compute_op: add, args: [ann, bob, cid], var: result}
- {op: query, var: result}
""",
    "percent": """expert: percentage
trace:
- {op: init, var: price, value: 80}
- {op: init, var: discount, value: 25}
- {op: init, var: tax, value: 8.5}
- {op: percent_off, base: price, rate: discount, var: sale}
- {op: percent_increase, base: sale, rate: tax, var: result}
- {op: query, var: result}
""",
    "compare": """expert: comparison
trace:
- {op: init, var: pine, value: 14}
- {op: init, var: oak, value: 9}
- {op: compare, compute_op: diff, args: [pine, oak], var: gap}
- {op: compare, compute_op: gt, args: [pine, oak], var: taller}
- {op: compute, compute_op: mul, args: [gap, taller], var: result}
- {op: query, var: result}
""",
    "composed": """- expert: arithmetic
  trace:
  - {op: init, var: a, value: 3}
  - {op: init, var: b, value: 4}
  - {op: compute, compute_op: mul, args: [a, b], var: result}
  - {op: query, var: result}
- expert: entity_track
  trace:
  - {op: init, var: boxes, source: prev.result}
  - {op: consume, entity: boxes, amount: 5}
  - {op: query, var: boxes}
""",
}


@pytest.fixture(scope="module")
def compiled() -> Compiled:
    return Compiled(Vocab.build([bytes([b]) for b in range(128)] + [None], (128,), "bytes"))


def _meaning(scope: Scope) -> tuple:
    """Everything but the line numbers, which the guide has not (it writes no spans)."""
    defs = {name: d._replace(line=0) for name, d in scope.defs.items()}
    return defs, dict(scope.numbers), dict(scope.seen), scope.counter


def _run_block(program, index: int) -> dict[str, Exact]:
    env = Env(DEFAULT_LIMITS)
    for block in program.blocks[: index + 1]:
        expert = experts.get(block.expert)
        env.values = {}
        for step in block.trace:
            value = expert.handlers[step.op](step, env)
        env.results.append(value)
    return env.values


@pytest.mark.parametrize("name", sorted(TRACES))
def test_checker_and_guide_agree_on_names_numbers_and_values(compiled, name):
    text = TRACES[name]
    program = parse(text).program
    assert check(program) == []
    last = len(program.blocks) - 1
    con = Constraint(compiled, make_config(Levels(grounding=False)))
    assert con.advance_text(text)
    guide_block = con.guide.block
    assert _meaning(guide_block.scope) == _meaning(block_scope(program, last))
    assert guide_block.scope.defs  # a real comparison, not of two empty scopes
    # the guide's runtime values are the experts' own: what executing the block leaves
    assert guide_block.values == _run_block(program, last)


def test_a_stated_value_is_no_constant_for_either(compiled):
    question = "Ann has 1 box of 12 eggs and buys 1 more box. How many eggs?"
    text = """expert: arithmetic
trace:
- {op: init, var: boxes, value: 1}
- {op: init, var: more, value: 1}
- {op: init, var: per_box, value: 12}
- {op: compute, compute_op: add, args: [boxes, more], var: all_boxes}
- {op: compute, compute_op: mul, args: [all_boxes, per_box], var: result}
- {op: query, var: result}
"""
    program = parse(text).program
    checked = block_scope(program, 0, grounder_for(question))
    assert checked.defs["boxes"].const is None  # the question states 1: a quantity, not a constant
    con = Constraint(compiled, make_config(Levels(), question=question))
    assert con.advance_text(text)
    assert _meaning(con.guide.block.scope) == _meaning(checked)
    # without the question, 1 is a written-in constant
    assert block_scope(program).defs["boxes"].const == 1


def _scope_of(text: str) -> Scope:
    return block_scope(parse(text).program)


def test_entity_ops_change_names_in_place():
    scope = _scope_of(TRACES["entity"])
    ann, bob, cid = scope.defs["ann"], scope.defs["bob"], scope.defs["cid"]
    # init'd, then changed: no constant any more, and queryable
    assert (ann.kind, ann.const, ann.changed) == ("input", None, True)
    # add_entity created bob holding 4 (written in, as by init); the transfer changed it
    assert (bob.kind, bob.const, bob.changed) == ("input", None, True)
    # a transfer's missing receiver is created at 0 and changed: 0 plus what it got
    assert (cid.kind, cid.const, cid.changed) == ("input", None, True)
    assert all(d.integral for d in (ann, bob, cid))


def test_add_entity_creating_a_name_writes_its_amount_in():
    text = "expert: entity_track\ntrace:\n- {op: add_entity, entity: jar, amount: 7}\n- {op: query, var: jar}\n"
    assert _scope_of(text).defs["jar"] == Def("input", 3, Exact(7), changed=False, integral=True)
    # so a query of it returns an input (E303), as of an init
    assert [d.code for d in check(parse(text).program)] == ["E303"]


def test_every_change_gets_a_fresh_value_number():
    scope = Scope()
    steps = parse(TRACES["entity"]).program.blocks[0].trace
    numbers = []
    for step in steps[:5]:
        scope.advance(step, scope.computation(step))
        numbers.append(dict(scope.numbers))
    # the transfer ann -> bob renumbers both, in field order; consume renumbers ann alone
    assert numbers[2]["ann"] != numbers[1]["ann"] and numbers[2]["bob"] != numbers[1]["bob"]
    assert numbers[2]["ann"] + 1 == numbers[2]["bob"]
    assert numbers[4]["ann"] != numbers[3]["ann"] and numbers[4]["bob"] == numbers[3]["bob"]


def test_a_missing_source_stays_undefined_but_numbered():
    step = parse("expert: entity_track\ntrace:\n- {op: consume, entity: ghost, amount: 1}\n").program.blocks[0].trace[0]
    scope = Scope()
    scope.advance(step, scope.computation(step))
    assert "ghost" not in scope.defs  # E201 is the checker's to report
    assert scope.numbers["ghost"] == 1


def _steps(body: str) -> list[Step]:
    return parse("expert: comparison\ntrace:\n" + body).program.blocks[0].trace


def test_the_same_computation_gets_the_same_number():
    steps = _steps(
        "- {op: init, var: a, value: 2}\n- {op: init, var: b, value: 3}\n"
        "- {op: compute, compute_op: add, args: [a, b], var: x}\n"
        "- {op: compute, compute_op: add, args: [b, a], var: y}\n"
        "- {op: compute, compute_op: sub, args: [a, b], var: s}\n"
        "- {op: compute, compute_op: sub, args: [b, a], var: t}\n"
        "- {op: compare, compute_op: max, args: [a, b], var: m}\n"
        "- {op: compute, compute_op: max, args: [a, b], var: n}\n"
        "- {op: compute, compute_op: mul, args: [a, 2.5], var: p}\n"
    )
    scope = Scope()
    table = experts.get("comparison").tables
    keys = []
    for step in steps:
        cop = step.__dict__.get("compute_op")
        key = scope.computation(step, table[step.op].get(cop) if cop else None)
        keys.append(key)
        scope.advance(step, key)
    n = scope.numbers
    assert n["x"] == n["y"]  # add commutes
    assert n["s"] != n["t"]  # sub does not
    assert n["m"] != n["n"]  # compare's max is not compute's max: the op is part of the key
    assert keys[0] is None and keys[1] is None  # inputs are numbered fresh, not by a computation
    assert keys[-1] == computation_key("compute", "mul", [n["a"], literal_key(Exact(5, 2))], True)
    assert scope.defs["x"].kind == "computed" and not scope.defs["p"].integral and scope.defs["x"].integral


def test_a_redefinition_keeps_the_first_definition_but_takes_the_new_number():
    steps = _steps("- {op: init, var: a, value: 2}\n- {op: init, var: a, value: 2.5}\n")
    scope = Scope()
    for step in steps:
        scope.advance(step, scope.computation(step))
    assert scope.defs["a"].const == 2 and scope.defs["a"].integral  # E202 keeps the first
    assert scope.numbers["a"] == 2


def test_a_new_step_class_needs_no_change_to_the_scope():
    """The scope reads a step's declarations, never its op name: a made-up `avg` step that defines
    `var` from `args` is numbered and defined like compute."""

    class AvgStep(Step):
        op: Literal["avg"] = "avg"
        args: list[Arg]
        var: Var
        defines: ClassVar = ("var",)
        reads: ClassVar = ("args",)

    a, b = Var(name="a"), Var(name="b")
    scope = Scope()
    for step in _steps("- {op: init, var: a, value: 2}\n- {op: init, var: b, value: 4}\n"):
        scope.advance(step, scope.computation(step))
    first, again = AvgStep(args=[a, b], var=Var(name="m")), AvgStep(args=[a, b], var=Var(name="k"))
    for step in (first, again):
        scope.advance(step, scope.computation(step))
    assert scope.numbers["m"] == scope.numbers["k"]
    assert scope.defs["m"].kind == "computed"
    assert [v.name for v in names_in(first, first.reads)] == ["a", "b"]
