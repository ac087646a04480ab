"""The compact surface: the same IR as the canonical YAML, read, written and converted exactly."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracelang.cli import app
from tracelang.compact import is_compact, surface_of
from tracelang.formatter import format_program
from tracelang.grammar import surface_regex
from tracelang.pipeline import analyze, parse

ROOT = Path(__file__).resolve().parents[1]
GSM8K_TRAIN = Path("/work/shared/data/gsm8k/train.jsonl")
if not GSM8K_TRAIN.exists():
    GSM8K_TRAIN = ROOT.parent / "shared" / "data" / "gsm8k" / "train.jsonl"

# Every op of every expert, two blocks, a source init and literals in args and amounts.
EVERY_OP_YAML = (
    "- expert: percentage\n  trace:\n"
    "  - {op: init, var: price, value: 80}\n"
    "  - {op: init, var: off, value: 25}\n"
    "  - {op: init, var: tax, value: 2.5}\n"
    "  - {op: percent_off, base: price, rate: off, var: sale}\n"
    "  - {op: percent_increase, base: sale, rate: tax, var: paid}\n"
    "  - {op: percent_of, base: paid, rate: off, var: part}\n"
    "  - {op: compute, compute_op: add, args: [part, paid, 1.5], var: result}\n"
    "  - {op: query, var: result}\n"
    "- expert: entity_track\n  trace:\n"
    "  - {op: init, var: cookies, source: prev.result}\n"
    "  - {op: transfer, from_entity: cookies, to_entity: friend, amount: 5}\n"
    "  - {op: consume, entity: cookies, amount: 2}\n"
    "  - {op: add_entity, entity: friend, amount: 3}\n"
    "  - {op: query, var: friend}\n"
    "- expert: comparison\n  trace:\n"
    "  - {op: init, var: first, source: sub0.result}\n"
    "  - {op: init, var: second, source: prev.result}\n"
    "  - {op: compare, compute_op: max, args: [first, second], var: bigger}\n"
    "  - {op: compute, compute_op: max, args: [first, 100], var: capped}\n"
    "  - {op: compare, compute_op: diff, args: [bigger, capped], var: result}\n"
    "  - {op: query, var: result}\n"
)
EVERY_OP_COMPACT = (
    "block percentage\n80 -> price\n25 -> off\n2.5 -> tax\npercent_off(price, off) -> sale\n"
    "percent_increase(sale, tax) -> paid\npercent_of(paid, off) -> part\nadd(part, paid, 1.5) -> result\n"
    "return result\n"
    "block entity_track\ninit(prev.result) -> cookies\ntransfer(cookies, friend, 5)\nconsume(cookies, 2)\n"
    "add_entity(friend, 3)\nreturn friend\n"
    "block comparison\ninit(sub0.result) -> first\ninit(prev.result) -> second\n"
    "compare.max(first, second) -> bigger\nmax(first, 100) -> capped\ncompare.diff(bigger, capped) -> result\n"
    "return result\n"
)


def round_trip(yaml_text: str) -> str:
    """YAML -> IR -> compact -> IR -> YAML, asserting on the way that the compact text is
    canonical, reads back whole and with nothing to report."""
    first = parse(yaml_text)
    assert first.program is not None and first.complete, yaml_text
    compact = format_program(first.program, first.comments, "compact")
    body = "".join(line + "\n" for line in compact.splitlines() if not line.startswith("#"))
    assert surface_regex("compact").fullmatch(body), compact
    assert is_compact(compact)
    second = parse(compact)
    assert second.complete and second.diagnostics == [], (compact, second.diagnostics)
    assert second.program == first.program
    return format_program(second.program, second.comments)


def assert_identity(texts: list[str]) -> None:
    for text in texts:
        canonical = format_program(parse(text).program)
        assert round_trip(canonical) == canonical


def test_every_op_both_ways() -> None:
    assert format_program(parse(EVERY_OP_YAML).program, surface="compact") == EVERY_OP_COMPACT
    assert format_program(parse(EVERY_OP_COMPACT).program) == EVERY_OP_YAML
    assert round_trip(EVERY_OP_YAML) == EVERY_OP_YAML
    yaml_report, compact_report = analyze(EVERY_OP_YAML), analyze(EVERY_OP_COMPACT)
    assert yaml_report.ok and compact_report.ok, compact_report.diagnostics
    assert compact_report.execution.results == yaml_report.execution.results  # type: ignore[union-attr]
    assert compact_report.answer == yaml_report.answer


def test_one_block_composed_and_plain_stay_apart() -> None:
    plain = "expert arithmetic\n2 -> a\nadd(a, 3) -> result\nreturn result\n"
    composed = plain.replace("expert ", "block ")
    assert not parse(plain).program.composed and parse(composed).program.composed  # type: ignore[union-attr]
    assert format_program(parse(composed).program).startswith("- expert: arithmetic\n  trace:\n")


def test_examples_and_shots() -> None:
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "corpora" / "examples").glob("*.yaml"))]
    shots = [json.loads(line)["trace"] for line in (ROOT / "corpora" / "shots.jsonl").read_text().splitlines()]
    assert len(texts) >= 9 and len(shots) >= 8
    assert_identity(texts + shots)
    for text in texts:  # comments survive a conversion both ways
        report = parse(text)
        compact = format_program(report.program, report.comments, "compact")
        back = parse(compact)
        assert format_program(back.program, back.comments) == format_program(report.program, report.comments)


def importer_traces(n: int) -> list[str]:
    from tracelang.data.gsm8k import load
    from tracelang.data.importer import convert

    out: list[str] = []
    for problem in load(str(GSM8K_TRAIN)):
        record = convert(problem).record
        if record is not None:
            out.append(record["trace"])
        if len(out) == n:
            break
    return out


def generated_traces(n: int) -> list[str]:
    from tracelang.corpus.compose import TemplateSource
    from tracelang.corpus.generate import generate
    from tracelang.corpus.library import Library

    return [r["trace"] for r in islice(generate(n, 7, TemplateSource(Library.load())), n)]


needs_gsm8k = pytest.mark.skipif(not GSM8K_TRAIN.exists(), reason="GSM-8K train is not present")


@needs_gsm8k
def test_importer_traces_round_trip() -> None:
    texts = importer_traces(300)
    assert len(texts) == 300
    assert_identity(texts)


def test_generated_traces_round_trip() -> None:
    texts = generated_traces(300)
    assert len(texts) == 300
    assert_identity(texts)


@pytest.mark.slow
@needs_gsm8k
def test_two_thousand_importer_and_generated_traces_round_trip() -> None:
    """The issue's full check (CI runs 300 of each above): 2,000 GSM-8K train importer traces and
    2,000 generated ones."""
    texts = importer_traces(2000) + generated_traces(2000)
    assert len(texts) == 4000
    assert_identity(texts)


@pytest.mark.parametrize(("text", "code", "line", "column"), [
    ("expert arithmetic\n2 -> a\nplus(a, 3) -> r\nreturn r\n", "E103", 3, 1),
    ("expert arithmetic\n2 -> a\nadd(a, 3)\nreturn a\n", "E105", 3, 1),
    ("expert arithmetic\n2 -> a\nadd(a, 3 -> r\nreturn r\n", "E001", 3, 10),
    ("expert arithmetic\n2 -> a\n  add(a, b) -> r\nreturn r\n", "E201", 3, 10),
    ("expert arithmetic\nx -> a\nreturn a\n", "E106", 2, 1),
    ("expert entity_track\n2 -> a\ntransfer(a, b) \nreturn a\n", "E105", 3, 1),
    ("expert entity_track\n2 -> a\nconsume(a, 1) -> b\nreturn a\n", "E104", 3, 18),
    ("expert arithmetic\n2 -> a\nadd(a, 3, 4/6) -> r\nreturn r\n", "E106", 3, 11),
    ("expert arithmetic\n2 -> a\nadd(a, 3) -> r\nexpert arithmetic\nreturn r\n", "E001", 4, 1),
    ("expert arithmetic\n007 -> a\nadd(a, 3) -> a\nreturn a\n", "E202", 3, 14),
])
def test_diagnostics_point_into_the_compact_text(text: str, code: str, line: int, column: int) -> None:
    report = analyze(text)
    first = next(d for d in report.diagnostics if d.severity == "error")
    assert (first.code, first.line, first.column) == (code, line, column), report.diagnostics


def test_the_same_mistake_is_reported_at_its_place_in_both_surfaces() -> None:
    yaml_text = ("expert: arithmetic\ntrace:\n- {op: init, var: a, value: 2}\n"
                 "- {op: compute, compute_op: add, args: [a, b], var: r}\n- {op: query, var: r}\n")
    compact_text = "expert arithmetic\n2 -> a\nadd(a, b) -> r\nreturn r\n"
    (y,), (c,) = analyze(yaml_text).diagnostics, analyze(compact_text).diagnostics
    assert y.code == c.code == "E201" and y.message == c.message
    assert (y.line, yaml_text.splitlines()[y.line - 1][y.column - 1]) == (4, "b")
    assert (c.line, compact_text.splitlines()[c.line - 1][c.column - 1]) == (3, "b")


def test_surface_is_told_by_the_text() -> None:
    assert surface_of("# a note: with a colon\nexpert arithmetic\n") == "compact"
    assert surface_of("\n# note\nexpert: arithmetic\ntrace:\n") == "yaml"
    assert surface_of("- {op: init, var: a, value: 2}\n") == "yaml"
    assert surface_of("") == "yaml"


def test_fmt_check_and_run_read_either_surface(tmp_path: Path) -> None:
    runner = CliRunner()
    yaml_file, compact_file = tmp_path / "t.yaml", tmp_path / "t.txt"
    yaml_file.write_text(EVERY_OP_YAML)
    result = runner.invoke(app, ["fmt", "--to", "compact", str(yaml_file)])
    assert result.exit_code == 0 and yaml_file.read_text() == EVERY_OP_COMPACT
    compact_file.write_text(EVERY_OP_COMPACT.replace("add(part, paid, 1.5)", "add( part ,paid,  1.50 )"))
    assert runner.invoke(app, ["fmt", "--check", str(compact_file)]).exit_code == 1
    assert runner.invoke(app, ["fmt", str(compact_file)]).exit_code == 0
    assert compact_file.read_text() == EVERY_OP_COMPACT  # fmt keeps a text's own surface
    assert runner.invoke(app, ["fmt", "--to", "yaml", str(compact_file)]).exit_code == 0
    assert compact_file.read_text() == EVERY_OP_YAML
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"trace": EVERY_OP_YAML, "answer": None}) + "\n")
    assert runner.invoke(app, ["fmt", "--to", "compact", str(corpus)]).exit_code == 0
    assert json.loads(corpus.read_text())["trace"] == EVERY_OP_COMPACT
    result = runner.invoke(app, ["check", str(corpus)])
    assert result.exit_code == 0 and "1 ok" in result.output
    yaml_file.write_text(EVERY_OP_COMPACT)
    ran_compact = runner.invoke(app, ["run", str(yaml_file)])
    yaml_file.write_text(EVERY_OP_YAML)
    ran_yaml = runner.invoke(app, ["run", str(yaml_file)])
    assert ran_compact.exit_code == 0 and ran_compact.output.splitlines()[-1] == ran_yaml.output.splitlines()[-1]
    bad = runner.invoke(app, ["fmt", "--to", "xml", str(yaml_file)])
    assert bad.exit_code == 2 and "--to takes yaml or compact" in bad.output
