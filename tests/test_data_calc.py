"""The calculator-annotation parser: grammar, exact values, prose equations, hostile input."""

from __future__ import annotations

import pytest

from tracelang.data.calc import Bin, CalcError, Lit, Neg, Pct, annotations, evaluate, parse_expression
from tracelang.numbers import Exact


@pytest.mark.parametrize(("text", "value"), [
    ("48/2", Exact(24)),
    ("2+3*4", Exact(14)),
    ("(2+3)*4", Exact(20)),
    ("100-50-30-15", Exact(5)),
    ("12/60", Exact(1, 5)),
    (".5*60", Exact(30)),
    ("-3+10", Exact(7)),
    ("2^10", Exact(1024)),
    ("25%*80", Exact(20)),
    ("17//5", Exact(3)),
    ("1,200/4", Exact(300)),
    ("3 x 4 × 2 ÷ 8", Exact(3)),
    ("10/3", Exact(10, 3)),
])
def test_values(text: str, value: Exact) -> None:
    assert evaluate(parse_expression(text)) == value


def test_tree_shape() -> None:
    assert parse_expression("1-2-3") == Bin("-", Bin("-", Lit(Exact(1), "1"), Lit(Exact(2), "2")), Lit(Exact(3), "3"))
    assert parse_expression("-(4)") == Neg(Lit(Exact(4), "4"))
    assert parse_expression("5%") == Pct(Lit(Exact(5), "5"))


@pytest.mark.parametrize("text", ["", "2+", "(3", "3)", "4**2", "abc", "2 3", "__import__('os')", "1/0", "2^0.5",
                                  "9^99999", "0^-1"])
def test_rejects(text: str) -> None:
    with pytest.raises(CalcError):
        evaluate(parse_expression(text))


def test_deep_and_long_input_fails_fast() -> None:
    with pytest.raises(CalcError, match="nested deeper"):
        parse_expression("(" * 50 + "1" + ")" * 50)
    with pytest.raises(CalcError, match="nested deeper"):
        parse_expression("-" * 60 + "1")
    with pytest.raises(CalcError, match="characters"):
        parse_expression("1+" * 300 + "1")
    with pytest.raises(CalcError, match="digits"):
        parse_expression("9" * 41)


def test_annotations_in_order_with_lines() -> None:
    solution = "Tom has 3*4 = <<3*4=12>>12 eggs.\nThen 12+5 = <<12+5=17>>17.\n#### 17"
    anns = annotations(solution)
    assert [(a.text, a.stated, a.line, a.annotated) for a in anns] == [
        ("3*4", Exact(12), 1, True), ("12+5", Exact(17), 2, True)]


def test_bad_annotation_names_its_line() -> None:
    with pytest.raises(CalcError, match="line 2: <<7\\$3=4>>"):
        annotations("fine <<1+1=2>>\nbad <<7$3=4>>\n#### 4")


def test_prose_equations_join_annotations() -> None:
    solution = ("The pens cost 4*3 = <<4*3=12>>12 dollars.\n"
                "With the bag, 12 dollars + 8 dollars = 20 dollars.\n"
                "So 20 x 100% / 80 = 25%.\n"
                "And 30 - 6 = <<24=24>>24 left.\n"
                "#### 24")
    anns = annotations(solution, prose=True)
    assert [(a.text, a.stated, a.annotated) for a in anns] == [
        ("4*3", Exact(12), True),
        ("12+8", Exact(20), False),
        ("20*100%/80", Exact(25), False),
        ("30-6", Exact(24), False),  # completed by the bare <<24=24>>
        ("24", Exact(24), True),
    ]
    # "4*3 = <<...>>12" is not read twice, and the #### line is not an equation
    assert sum(a.text == "4*3" for a in anns) == 1


def test_prose_equation_that_does_not_hold_is_ignored() -> None:
    assert [a.text for a in annotations("So 5 + 5 = 11 apples.\n#### 11", prose=True)] == []
