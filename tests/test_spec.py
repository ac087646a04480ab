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
