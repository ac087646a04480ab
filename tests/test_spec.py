"""Every example in spec/ is a test; every diagnostic code has a failing example and a near miss."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracelang.checker import Grounder
from tracelang.cli import app
from tracelang.diagnostics import CODES
from tracelang.formatter import format_program
from tracelang.grounding import grounder_for
from tracelang.numbers import parse_answer
from tracelang.pipeline import analyze, parse

SPEC = Path(__file__).resolve().parents[1] / "spec"
FENCE = re.compile(r"^```(trace|jsonl)([^\n]*)\n(.*?)^```", re.M | re.S)


@dataclass
class Example:
    page: str
    line: int
    lang: str
    info: str
    body: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}:{self.lang}{self.info}".replace(" ", "_")


def _examples() -> list[Example]:
    out = []
    for page in sorted(SPEC.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            out.append(Example(page.name, text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2).strip(),
                               m.group(3)))
    return out


EXAMPLES = _examples()


def _grounder(body: str) -> Grounder | None:
    first = body.split("\n", 1)[0]
    if not first.startswith("# question:"):
        return None
    return grounder_for(first.removeprefix("# question:").strip())


def _codes(ex: Example) -> list[str]:
    if ex.lang == "jsonl":
        return _jsonl_codes(ex.body)
    return [d.code for d in analyze(ex.body, grounder=_grounder(ex.body)).diagnostics]


def _jsonl_codes(body: str, tmp: Path | None = None) -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "corpus.jsonl"
        path.write_text(body, encoding="utf-8")
        result = CliRunner().invoke(app, ["check", "--format", "json", str(path)])
        assert result.exit_code in (0, 1), result.output
        return [diag["code"] for line in result.output.splitlines() for diag in json.loads(line)["diagnostics"]]


@pytest.mark.parametrize("ex", [e for e in EXAMPLES if e.info.startswith("answer=")], ids=lambda e: e.id)
def test_answer_examples(ex: Example) -> None:
    report = analyze(ex.body)
    assert report.diagnostics == []
    assert report.answer == parse_answer(ex.info.removeprefix("answer="))


@pytest.mark.parametrize("ex", [e for e in EXAMPLES if re.match(r"(error|warning)=", e.info)], ids=lambda e: e.id)
def test_failing_examples(ex: Example) -> None:
    kind, code = ex.info.split("=")
    assert code in _codes(ex)
    assert CODES[code].severity == kind


@pytest.mark.parametrize("ex", [e for e in EXAMPLES if e.info.startswith("not=")], ids=lambda e: e.id)
def test_near_misses(ex: Example) -> None:
    code = ex.info.removeprefix("not=")
    codes = _codes(ex)
    assert code not in codes
    assert not [c for c in codes if c.startswith("E")], codes


def test_format_examples() -> None:
    pairs = [(a, b) for a, b in zip(EXAMPLES, EXAMPLES[1:], strict=False) if a.info == "fmt"]
    assert pairs, "spec has fmt examples"
    for before, after in pairs:
        assert after.info == "formatted"
        report = parse(before.body)
        assert report.complete
        assert format_program(report.program, report.comments) == after.body


def test_every_code_has_a_failing_example_and_a_near_miss() -> None:
    page = (SPEC / "diagnostics.md").read_text(encoding="utf-8")
    for code in CODES:
        assert f"## {code} {CODES[code].name}" in page
        failing = re.search(rf"```(trace|jsonl) (error|warning)={code}\n", page)
        assert not failing if CODES[code].retired else failing, code  # a retired code: what it once refused
        assert re.search(rf"```(trace|jsonl) not={code}\n", page), code


def test_the_diagnostic_forms_shown_are_what_check_prints(tmp_path: Path) -> None:
    """The intro of spec/diagnostics.md: its trace gives its text form and, under --format json,
    its JSON object (every field the page's table documents)."""
    page = (SPEC / "diagnostics.md").read_text(encoding="utf-8")
    trace = next(e for e in EXAMPLES if e.page == "diagnostics.md").body
    text_form = re.search(r"^```text\n(.*?)^```", page, re.M | re.S).group(1)  # type: ignore[union-attr]
    json_form = json.loads(re.search(r"^```json\n(.*?)^```", page, re.M | re.S).group(1))  # type: ignore[union-attr]
    path = tmp_path / "x.yaml"
    path.write_text(trace, encoding="utf-8")
    assert CliRunner().invoke(app, ["check", str(path)]).output.startswith(text_form.replace("x.yaml", str(path)))
    [row] = [json.loads(line) for line in CliRunner().invoke(app, ["check", "--format", "json", str(path)]).output
             .splitlines()]
    assert row["diagnostics"] == [json_form]
    table = re.findall(r"^\| (`[^|]*`) \|", page, re.M)
    assert {name.strip("`") for cell in table for name in cell.split(", ")} == set(json_form)
