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
                                             ("#### 18", "18"), ("2/3", "2/3"), (" 5 ", "5"), ("25%", "25")])
def test_stated_answers(text: str, value: str) -> None:
    assert render(parse_answer(text)) == value


@pytest.mark.parametrize("text", ["abc", "", "1/0", "1e5", "x" * 300])
def test_unparseable_answers(text: str) -> None:
    assert parse_answer(text) is None or text == "1/0"


@pytest.mark.parametrize(("value", "text"), [((1, 3), "1/3"), ((5, 2), "2.5"), ((-1, 8), "-0.125"),
                                             ((7, 1), "7"), ((1, 40), "0.025"), ((-22, 7), "-22/7")])
def test_render_is_canonical(value: tuple[int, int], text: str) -> None:
    assert render(Exact(*value)) == text
    assert parse_literal(text).value == Exact(*value)
