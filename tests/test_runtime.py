"""The exact runtime: every compute op, the experts' ops, runtime errors and resource limits."""

from __future__ import annotations

import pytest

from tracelang.numbers import Exact, parse_answer, parse_literal, render
from tracelang.pipeline import analyze


def run(steps: list[str], expert: str = "arithmetic") -> tuple[str | None, list[str]]:
    text = f"expert: {expert}\ntrace:\n" + "\n".join(steps) + "\n"
    report = analyze(text)
    return (None if report.answer is None else render(report.answer)), [d.code for d in report.diagnostics]


def compute(op: str, values: list[str], table: str = "compute", expert: str = "arithmetic"):
    inits = [f"- {{op: init, var: v{i}, value: {v}}}" for i, v in enumerate(values)]
    names = ", ".join(f"v{i}" for i in range(len(values)))
    step = f"- {{op: {table}, compute_op: {op}, args: [{names}], var: result}}"
    return run([*inits, step, "- {op: query, var: result}"], expert)


@pytest.mark.parametrize(("op", "values", "answer"), [
    ("add", ["0.1", "0.2"], "0.3"),
    ("add", ["1", "2", "3.5"], "6.5"),
    ("sub", ["10", "3", "2"], "5"),
    ("sub", ["3", "10"], "-7"),
    ("mul", ["1/3", "3"], "1"),
    ("mul", ["2", "3", "4"], "24"),
    ("div", ["10", "4"], "2.5"),
    ("div", ["10", "3"], "10/3"),
    ("mod", ["230", "12"], "2"),
    ("mod", ["-7", "3"], "2"),
    ("pow", ["2", "10"], "1024"),
    ("pow", ["2", "-2"], "0.25"),
    ("floor", ["19.9"], "19"),
    ("floor", ["-2.5"], "-3"),
    ("ceil", ["19.1"], "20"),
    ("ceil", ["-2.5"], "-2"),
    ("min", ["4", "2.5", "7"], "2.5"),
    ("max", ["4", "2.5", "7"], "7"),
])
def test_compute_ops_are_exact(op: str, values: list[str], answer: str) -> None:
    assert compute(op, values) == (answer, [])


@pytest.mark.parametrize(("op", "values", "answer"), [
    ("diff", ["3", "10"], "7"), ("ratio", ["10", "4"], "2.5"), ("max", ["1", "9", "4"], "9"),
    ("min", ["1", "9", "4"], "1"), ("gt", ["3", "2"], "1"), ("lt", ["3", "2"], "0"), ("eq", ["2", "2.0"], "1"),
])
def test_compare_ops(op: str, values: list[str], answer: str) -> None:
    assert compute(op, values, "compare", "comparison") == (answer, [])


@pytest.mark.parametrize(("op", "answer"), [("percent_of", "20"), ("percent_off", "60"),
                                            ("percent_increase", "100")])
def test_percent_ops(op: str, answer: str) -> None:
    steps = ["- {op: init, var: base, value: 80}", "- {op: init, var: rate, value: 25}",
             f"- {{op: {op}, base: base, rate: rate, var: result}}", "- {op: query, var: result}"]
    assert run(steps, "percentage") == (answer, [])


def test_entities_move_exactly() -> None:
    steps = ["- {op: add_entity, entity: a, amount: 10.5}", "- {op: add_entity, entity: b, amount: 0}",
             "- {op: transfer, from_entity: a, to_entity: b, amount: 10.5}", "- {op: query, var: b}"]
    assert run(steps, "entity_track") == ("10.5", [])


# ---------------------------------------------------------------- entities: the study's idiom

def test_the_idiom_init_consume_compute() -> None:
    steps = ["- {op: init, var: eggs, value: 16}", "- {op: consume, entity: eggs, amount: 3}",
             "- {op: consume, entity: eggs, amount: 4}", "- {op: init, var: price, value: 2}",
             "- {op: compute, compute_op: mul, args: [eggs, price], var: result}", "- {op: query, var: result}"]
    assert run(steps, "entity_track") == ("18", [])


def test_add_entity_adds_to_what_a_variable_holds() -> None:
    steps = ["- {op: init, var: items, value: 13}", "- {op: add_entity, entity: items, amount: 7}",
             "- {op: consume, entity: items, amount: 8}", "- {op: query, var: items}"]
    assert run(steps, "entity_track") == ("12", [])
    steps = ["- {op: add_entity, entity: jar, amount: 4}", "- {op: add_entity, entity: jar, amount: 2.5}",
             "- {op: query, var: jar}"]
    assert run(steps, "entity_track") == ("6.5", [])  # created at 0, then added to


@pytest.mark.parametrize(("query", "answer"), [("giver", "22"), ("taker", "13")])
def test_a_missing_transfer_target_starts_at_zero(query: str, answer: str) -> None:
    steps = ["- {op: init, var: giver, value: 35}",
             "- {op: transfer, from_entity: giver, to_entity: taker, amount: 13}", f"- {{op: query, var: {query}}}"]
    assert run(steps, "entity_track") == (answer, [])


def test_any_variable_is_an_entity() -> None:
    steps = ["- {op: init, var: a, value: 6}", "- {op: init, var: b, value: 4}",
             "- {op: compute, compute_op: add, args: [a, b], var: total}", "- {op: consume, entity: total, amount: b}",
             "- {op: transfer, from_entity: total, to_entity: a, amount: 1}", "- {op: query, var: a}"]
    assert run(steps, "entity_track") == ("7", [])


def test_a_changed_input_is_no_constant_any_more() -> None:
    """The no-op rules read what an input holds now: after an entity op, `one` is no longer 1."""
    steps = ["- {op: init, var: one, value: 1}", "- {op: init, var: x, value: 5}",
             "- {op: add_entity, entity: one, amount: 2}", "- {op: compute, compute_op: mul, args: [x, one], var: r}",
             "- {op: query, var: r}"]
    assert run(steps, "entity_track") == ("15", [])
    # and a repeated computation is no repeat once an operand changed in between
    steps = ["- {op: init, var: a, value: 6}", "- {op: init, var: b, value: 2}",
             "- {op: compute, compute_op: mul, args: [a, b], var: r1}", "- {op: consume, entity: a, amount: 1}",
             "- {op: compute, compute_op: mul, args: [a, b], var: r2}",
             "- {op: compute, compute_op: add, args: [r1, r2], var: r}", "- {op: query, var: r}"]
    assert run(steps, "entity_track") == ("22", [])


def test_a_later_block_changes_an_earlier_answer() -> None:
    text = ("- expert: arithmetic\n  trace:\n  - {op: init, var: boxes, value: 3}\n"
            "  - {op: init, var: per_box, value: 4}\n"
            "  - {op: compute, compute_op: mul, args: [boxes, per_box], var: result}\n  - {op: query, var: result}\n"
            "- expert: entity_track\n  trace:\n  - {op: init, var: cookies, source: prev.result}\n"
            "  - {op: transfer, from_entity: cookies, to_entity: friend, amount: 5}\n"
            "  - {op: add_entity, entity: cookies, amount: 2}\n  - {op: query, var: cookies}\n")
    report = analyze(text)
    assert report.diagnostics == [] and report.execution.results == [12, 9]
    assert [d.code for d in analyze(text.replace("  - {op: transfer, from_entity: cookies, to_entity: friend, "
                                                 "amount: 5}\n  - {op: add_entity, entity: cookies, amount: 2}\n",
                                                 "")).diagnostics] == ["E303"]  # the answer only passed on


@pytest.mark.parametrize(("steps", "codes"), [
    # consuming or giving more than is held: the runtime refuses
    (["- {op: init, var: a, value: 5}", "- {op: consume, entity: a, amount: 6}", "- {op: query, var: a}"], ["E502"]),
    (["- {op: init, var: a, value: 5}", "- {op: transfer, from_entity: a, to_entity: b, amount: 5.5}",
      "- {op: query, var: b}"], ["E502"]),
    (["- {op: init, var: a, value: 5}", "- {op: transfer, from_entity: a, to_entity: b, amount: -1}",
      "- {op: query, var: b}"], ["E503"]),
    # a missing variable can receive but not give
    (["- {op: init, var: a, value: 5}", "- {op: consume, entity: b, amount: 1}", "- {op: query, var: a}"],
     ["E201", "E303"]),
    (["- {op: init, var: a, value: 5}", "- {op: transfer, from_entity: b, to_entity: a, amount: 1}",
      "- {op: query, var: a}"], ["E201"]),
    # nothing changed it: the short-circuit stays refused
    (["- {op: init, var: a, value: 5}", "- {op: init, var: b, value: 1}",
      "- {op: consume, entity: a, amount: b}", "- {op: query, var: b}"], ["E303"]),
    (["- {op: init, var: a, value: 5}", "- {op: add_entity, entity: b, amount: 3}",
      "- {op: consume, entity: a, amount: 1}", "- {op: query, var: b}"], ["E303"]),
    # steps that change nothing
    (["- {op: init, var: a, value: 5}", "- {op: consume, entity: a, amount: 0}", "- {op: query, var: a}"], ["E401"]),
    (["- {op: init, var: a, value: 5}", "- {op: init, var: z, value: 0}", "- {op: add_entity, entity: a, amount: z}",
      "- {op: query, var: a}"], ["E401"]),
    (["- {op: init, var: a, value: 5}", "- {op: transfer, from_entity: a, to_entity: a, amount: 2}",
      "- {op: query, var: a}"], ["E401"]),
    (["- {op: add_entity, entity: z, amount: 0}", "- {op: init, var: a, value: 5}",
      "- {op: transfer, from_entity: a, to_entity: b, amount: z}", "- {op: query, var: b}"], ["E401"]),
    # an entity op does not redefine, but init and compute still may not
    (["- {op: add_entity, entity: a, amount: 5}", "- {op: init, var: a, value: 5}", "- {op: query, var: a}"],
     ["E202", "E303"]),
    (["- {op: init, var: a, value: 5}", "- {op: consume, entity: a, amount: 1}",
      "- {op: compute, compute_op: add, args: [a, 1], var: a}", "- {op: query, var: a}"], ["E202"]),
])
def test_entity_near_misses(steps: list[str], codes: list[str]) -> None:
    assert run(steps, "entity_track") == (None, codes)


def test_add_entity_creating_at_zero_is_no_no_op() -> None:
    steps = ["- {op: init, var: a, value: 5}", "- {op: add_entity, entity: b, amount: 0}",
             "- {op: transfer, from_entity: a, to_entity: b, amount: 2}", "- {op: query, var: b}"]
    assert run(steps, "entity_track") == ("2", [])


# ---------------------------------------------------------------- E401 and the question's own quantities

RATE = ["- {op: init, var: speed, value: 40}", "- {op: init, var: hours, value: 1}",
        "- {op: compute, compute_op: mul, args: [speed, hours], var: result}", "- {op: query, var: result}"]


def _codes(steps: list[str], question: str | None, expert: str = "rate_equation") -> list[str]:
    from tracelang.grounding import grounder_for

    text = f"expert: {expert}\ntrace:\n" + "\n".join(steps) + "\n"
    return [d.code for d in analyze(text, grounder=grounder_for(question) if question else None).diagnostics]


def test_a_stated_one_is_a_quantity_not_a_no_op() -> None:
    assert _codes(RATE, "A car goes 40 miles per hour. How far does it go in 1 hour?") == []
    # 1 is an always-allowed constant (no W701), but this question does not state it
    assert _codes(RATE, "A car goes 40 miles per hour. How far does it go in an hour?") == ["E401"]
    assert _codes(RATE, None) == ["E401"]
    plain = analyze("expert: rate_equation\ntrace:\n" + "\n".join(RATE) + "\n", grounder=lambda v: True)
    assert [d.code for d in plain.diagnostics] == ["E401"]  # a hook without `stated` exempts nothing
    literal = [RATE[0], "- {op: compute, compute_op: mul, args: [speed, 1], var: result}", RATE[3]]
    assert _codes(literal, "A car goes 40 miles per hour. How far does it go in 1 hour?") == ["E401"]


def test_a_stated_zero_is_a_quantity_too() -> None:
    steps = ["- {op: init, var: jar, value: 10}", "- {op: init, var: eaten, value: 0}",
             "- {op: consume, entity: jar, amount: eaten}", "- {op: query, var: jar}"]
    assert _codes(steps, "A jar holds 10 sweets and 0 are eaten. How many are left?", "entity_track") == []
    assert _codes(steps, "A jar holds 10 sweets and none are eaten. How many are left?", "entity_track") == ["E401"]


@pytest.mark.parametrize(("op", "values", "code"), [
    ("div", ["5", "0"], "E501"), ("mod", ["5", "0"], "E501"), ("pow", ["0", "-1"], "E501"),
    ("pow", ["2", "0.5"], "E503"), ("pow", ["10", "257"], "E603"), ("pow", ["99999999", "200"], "E603"),
])
def test_runtime_errors(op: str, values: list[str], code: str) -> None:
    answer, codes = compute(op, values)
    assert answer is None and codes == [code]


def test_ratio_by_zero() -> None:
    assert compute("ratio", ["5", "0"], "compare", "comparison") == (None, ["E501"])


def test_negative_amount_is_refused() -> None:
    steps = ["- {op: add_entity, entity: a, amount: 10}", "- {op: consume, entity: a, amount: -2}",
             "- {op: query, var: a}"]
    assert run(steps, "entity_track") == (None, ["E503"])


def test_values_cannot_grow_without_bound() -> None:
    # each step squares the last: 2^(2^k) passes 400 digits at k = 11, well before it is slow
    steps = ["- {op: init, var: v0, value: 2}"]
    steps += [f"- {{op: compute, compute_op: mul, args: [v{i}, v{i}], var: v{i + 1}}}" for i in range(40)]
    steps += ["- {op: query, var: v40}"]
    answer, codes = run(steps)
    assert answer is None and codes == ["E603"]


def test_composed_results_flow_forward() -> None:
    text = ("- expert: arithmetic\n  trace:\n  - {op: init, var: a, value: 2}\n  - {op: init, var: b, value: 3}\n"
            "  - {op: compute, compute_op: mul, args: [a, b], var: result}\n  - {op: query, var: result}\n"
            "- expert: arithmetic\n  trace:\n  - {op: init, var: c, value: 4}\n"
            "  - {op: compute, compute_op: add, args: [c, c], var: result}\n  - {op: query, var: result}\n"
            "- expert: arithmetic\n  trace:\n  - {op: init, var: first, source: sub0.result}\n"
            "  - {op: init, var: second, source: prev.result}\n"
            "  - {op: compute, compute_op: sub, args: [second, first], var: result}\n  - {op: query, var: result}\n")
    report = analyze(text)
    assert report.diagnostics == [] and report.answer == 2
    assert report.execution.results == [6, 8, 2]


@pytest.mark.parametrize(("text", "value"), [("72", "72"), ("1,000", "1000"), ("$12.50", "12.5"), ("-3", "-3"),
                                             ("#### 18", "18"), ("2/3", "2/3"), (" 5 ", "5"),
                                             ("x\n#### 1,234", "1234")])
def test_stated_answers(text: str, value: str) -> None:
    assert render(parse_answer(text)) == value


@pytest.mark.parametrize("text", ["abc", "", "1/0", "1e5", "x" * 300, "25%", "3,6", "3,,,6", "3$6", "#### 5 #### 36",
                                  "$-5", "1,0000"])
def test_unparseable_answers(text: str) -> None:
    assert parse_answer(text) is None or text == "1/0"


@pytest.mark.parametrize(("value", "text"), [((1, 3), "1/3"), ((5, 2), "2.5"), ((-1, 8), "-0.125"),
                                             ((7, 1), "7"), ((1, 40), "0.025"), ((-22, 7), "-22/7")])
def test_render_is_canonical(value: tuple[int, int], text: str) -> None:
    assert render(Exact(*value)) == text
    assert parse_literal(text).value == Exact(*value)
