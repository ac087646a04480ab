"""Parsing: error positions and messages, accepted variants, and hostile inputs."""

from __future__ import annotations

import pytest

from tracelang.diagnostics import render
from tracelang.pipeline import analyze, parse

GOOD = ("expert: arithmetic\ntrace:\n- {op: init, var: a, value: 5}\n- {op: init, var: b, value: 7}\n"
        "- {op: compute, compute_op: add, args: [a, b], var: result}\n- {op: query, var: result}\n")


def first(text: str):
    report = analyze(text)
    assert report.diagnostics, text
    return report.diagnostics[0]


@pytest.mark.parametrize(("text", "line", "column", "words"), [
    (GOOD.replace("var: a, value", "var: a value"), 3, 26, "unexpected `:`"),
    (GOOD.replace("trace:", "trace"), 2, 6, "unexpected end of line"),
    (GOOD.replace("[a, b]", "[a, b"), 5, 50, "unexpected `:`"),
    (GOOD + "  - {op: query, var: a}\n   - x\n", 7, 3, "unexpected indentation"),
    ("expert: arithmetic\ntrace:\n    - {op: query, var: a}\n  - {op: query, var: a}\n", 4, 1,
     "indentation of 2 matches no enclosing block"),
    ("expert: arithmetic\ntrace:\n- {op: init, var: a, value: &x 5}\n", 3, 29, "unexpected character `&`"),
    ("", 1, 1, "empty"),
    ("   \n\n", 1, 1, "empty"),
], ids=["missing-comma", "missing-colon", "open-list", "stray-indent", "bad-dedent", "anchor", "empty", "blank"])
def test_syntax_errors_name_the_place(text: str, line: int, column: int, words: str) -> None:
    d = first(text)
    assert d.code == "E001"
    assert (d.line, d.column) == (line, column), d
    assert words in d.message, d.message


def test_rendered_error_has_caret_and_hint() -> None:
    text = GOOD.replace("args: [a, b]", "args: [a, c]")
    d = next(d for d in analyze(text).diagnostics if d.code == "E201")
    out = render(d, text, "x.yaml")
    lines = out.splitlines()
    assert lines[0] == "x.yaml:5:44: E201 `c` is not defined"
    assert lines[2] == "5 | - {op: compute, compute_op: add, args: [a, c], var: result}"
    assert lines[3].index("^") == lines[2].index("[a, c]") + 4
    assert lines[4].strip().startswith("= hint:")


@pytest.mark.parametrize("variant", [
    GOOD.replace("\n", "\r\n"),
    GOOD.replace("- {", "  - {"),
    GOOD.replace("{op: init, var: a", "{ 'op': 'init' , \"var\":'a'"),
    GOOD,
    GOOD.rstrip("\n"),
    "# leading comment\n\n" + GOOD + "\n# trailing\n",
    GOOD.replace("value: 5}", "value: +005.000}"),
], ids=["crlf", "indented", "quoted", "plain", "no-final-newline", "comments", "odd-number"])
def test_variants_mean_the_same(variant: str) -> None:
    assert parse(variant).program == parse(GOOD).program
    assert analyze(variant).answer == 12


@pytest.mark.parametrize(("text", "code"), [
    ("[" * 100_000, "E001"),
    ("{" * 100_000, "E001"),
    ("a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 500)) + " " * 500 + "z: 1\n", "E602"),
    ("x" * 300_000, "E601"),
    (GOOD.replace("value: 5", "value: " + "9" * 100_000), "E603"),
    (GOOD.replace("value: 5", "value: 0." + "0" * 100_000 + "1"), "E603"),
    (GOOD.replace("var: a,", "var: " + "a" * 500 + ","), "E601"),
    ("expert: arithmetic\ntrace:\n" + "- {op: init, var: a, value: 1}\n" * 2500, "E601"),
    ("\t" * 50_000 + "x", "E001"),
], ids=["open-brackets", "open-braces", "deep-indent", "huge-text", "huge-literal", "long-decimal", "long-name",
        "many-steps", "tabs"])
def test_hostile_inputs_fail_fast_with_a_code(text: str, code: str) -> None:
    assert code in [d.code for d in analyze(text).diagnostics]


def test_expression_values_are_named() -> None:
    d = first(GOOD.replace("value: 5}", "value: $5}"))
    assert d.code == "E107" and "`$5`" in d.message


def test_structural_errors_do_not_cascade() -> None:
    # the compute step is broken, so `result` is never defined; the query must not add E201
    codes = [d.code for d in analyze(GOOD.replace("compute_op: add,", "compute_op: add, bogus: 1,")).diagnostics]
    assert codes == ["E104"]
