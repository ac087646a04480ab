"""The template expression language: parsed by our own parser, typed, never Python's eval."""

from __future__ import annotations

import pytest

from tracelang.corpus.expr import ExprError, Undefined, compile_expr
from tracelang.numbers import Exact


def ev(text: str, **env: int | str) -> object:
    values = {k: Exact(v) if isinstance(v, int) else v for k, v in env.items()}
    return compile_expr(text)(values)


def test_arithmetic_is_exact_and_follows_precedence() -> None:
    assert ev("1 + 2 * 3") == 7
    assert ev("(1 + 2) * 3") == 9
    assert ev("7 / 2") == Exact(7, 2)
    assert ev("0.1 + 0.2") == Exact(3, 10)
    assert ev("-7 % 3") == 2  # floored, like the runtime's mod
    assert ev("- - 4") == 4


def test_comparisons_chain_and_logic_short_circuits() -> None:
    assert ev("1 < a <= 5", a=5) is True
    assert ev("1 < a <= 5", a=6) is False
    assert ev("a > 1 and b > 1", a=2, b=3) is True
    assert ev("not (a > 1) or a == 0", a=0) is True
    assert ev("a != 0 and 10 / a > 1", a=0) is False  # the division is never reached


def test_functions() -> None:
    assert ev("int(a / 4)", a=12) is True
    assert ev("int(a / 5)", a=12) is False
    assert ev("floor(7 / 2) + ceil(7 / 2)") == 7
    assert ev("min(a, 3, b) + max(a, b)", a=4, b=9) == 12
    assert ev("abs(a - 9)", a=4) == 5
    assert ev("pow(3, 4)") == 81
    assert ev("distinct(a, b, 3)", a=1, b=2) is True
    assert ev("distinct(a, b, 3)", a=3, b=2) is False


def test_names_are_collected_and_attributes_read() -> None:
    class Entry:
        attrs = {"factor": Exact(60)}

    compiled = compile_expr("minutes / unit.factor > 1 and int(minutes)")
    assert compiled.names == {"minutes", "unit"}
    assert compiled({"minutes": Exact(120), "unit": Entry()}) is True


def test_undefined_names_and_division_by_zero_reject_the_sample() -> None:
    with pytest.raises(Undefined):
        ev("missing + 1")
    with pytest.raises(Undefined):
        ev("1 / (a - a)", a=3)
    with pytest.raises(Undefined):
        ev("pow(2, 100)")  # exponent outside 0..64: no huge numbers


@pytest.mark.parametrize(("text", "message", "column"), [
    ("a +", "expected a number, a name or `(`", 4),
    ("a + (b < 2)", "expected a number here", 5),
    ("foo(1)", "unknown function `foo`", 1),
    ("a @ b", "unexpected character `@`", 3),
    ("((a", "expected `)`", 4),
    ("a b", "unexpected `b`", 3),
    ("int(1, 2)", "`int` takes 1 argument", 1),
    ("__import__('os')", "unexpected character `'`", 12),
    ("1" * 40, "a number of more than 30 digits", 1),
])
def test_errors_name_the_problem_and_column(text: str, message: str, column: int) -> None:
    with pytest.raises(ExprError) as err:
        compile_expr(text)
    assert message in err.value.message
    assert err.value.column == column


def test_types_are_checked_at_compile_time() -> None:
    with pytest.raises(ExprError, match="must be a truth value"):
        compile_expr("a + 1", "bool")
    with pytest.raises(ExprError, match="must be a number"):
        compile_expr("a > 1", "num")
    with pytest.raises(ExprError, match="expected a truth value"):
        compile_expr("a and b")


def test_deep_nesting_and_long_input_fail_fast() -> None:
    with pytest.raises(ExprError, match="nested deeper"):
        compile_expr("(" * 100 + "1" + ")" * 100)
    with pytest.raises(ExprError, match="nested deeper"):
        compile_expr("-" * 100 + "1")
    with pytest.raises(ExprError, match="longer than"):
        compile_expr("1 + " * 400 + "1")
