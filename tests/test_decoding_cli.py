"""`tracelang decode ...` commands."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from tracelang.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACELANG_CACHE", str(tmp_path / "cache"))


def test_fuzz_writes_checked_records(tmp_path):
    out = tmp_path / "fuzz.jsonl"
    result = runner.invoke(app, ["decode", "fuzz", "--tokenizer", "tiny-bpe", "--n", "6", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "with errors" in result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records and all(r["source"] == "synthetic:decode-fuzz" and r["answer"] for r in records)
    check = runner.invoke(app, ["check", str(out)])
    assert check.exit_code == 0, check.output


@pytest.mark.parametrize("surface", ["yaml", "compact"])
def test_fuzz_close_ends_every_walk_at_the_budget_and_each_checks(tmp_path, surface):
    """At a 24-token budget most random walks are cut; --drop loses them, --close ends each with the
    decoder's closing text (generation's budget path), and every closed trace checks clean."""
    args = ["decode", "fuzz", "--tokenizer", "tiny-bpe", "--n", "12", "--max-tokens", "24", "--surface", surface]
    dropped = runner.invoke(app, [*args, "--out", str(tmp_path / "drop.jsonl")])
    assert dropped.exit_code == 0, dropped.output
    lost = int(re.search(r"(\d+) dropped", dropped.output)[1])
    assert lost > 0 and "0 closed" in dropped.output
    out = tmp_path / "close.jsonl"
    closed = runner.invoke(app, [*args, "--close", "--out", str(out)])
    assert closed.exit_code == 0, closed.output
    assert "0 dropped" in closed.output and f"{lost} closed" in closed.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 12 and sum(r["meta"]["closed"] for r in records) == lost
    check = runner.invoke(app, ["check", str(out)])
    assert check.exit_code == 0, check.output


def test_fuzz_with_questions(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "Ann buys 3 boxes of 12 eggs. How many eggs?"}) + "\n")
    out = tmp_path / "fuzz.jsonl"
    result = runner.invoke(app, ["decode", "fuzz", "--tokenizer", "tiny-spm", "--n", "3", "--out", str(out),
                                 "--question-file", str(questions)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records and all(r["question"].startswith("Ann") for r in records)
    # the command itself checks each trace with the question's grounder (W701 counts as a failure)
    check = runner.invoke(app, ["check", str(out)])
    assert check.exit_code == 0, check.output


def test_fuzz_bad_question_file(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "ok?"}\n{"q": 1}\n')
    result = runner.invoke(app, ["decode", "fuzz", "--tokenizer", "tiny-bpe", "--n", "1", "--out",
                                 str(tmp_path / "o.jsonl"), "--question-file", str(questions)])
    assert result.exit_code == 2
    assert "q.jsonl:2" in result.output and "question" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_unknown_tokenizer(tmp_path):
    result = runner.invoke(app, ["decode", "fuzz", "--tokenizer", "nope", "--n", "1", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "nope" in result.output


def test_export_formats():
    lark = runner.invoke(app, ["decode", "export", "--format", "lark"])
    assert lark.exit_code == 0 and lark.output.startswith("start:")
    ebnf = runner.invoke(app, ["decode", "export", "--format", "ebnf"])
    assert ebnf.exit_code == 0 and ebnf.output.startswith("root ::=")
    vllm = runner.invoke(app, ["decode", "export", "--format", "vllm"])
    assert json.loads(vllm.output)["structured_outputs"]["grammar"].startswith("root ::=")


def test_exported_grammars_compile_in_their_engines(root):
    from tracelang.decoding.export import to_ebnf, to_lark

    xgr = pytest.importorskip("xgrammar")
    xgr.Grammar.from_ebnf(to_ebnf())
    llg = pytest.importorskip("llguidance")
    assert llg.LLMatcher.validate_grammar(llg.grammar_from("lark", to_lark())) == ""


def test_bench_decode_takes_hand_written_traces_in_canonical_form(tmp_path):
    # the example traces have comments and their own layout; the constraint accepts only the
    # canonical form, so before this every trace was "rejected" at its first token
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", "decode", "--tokenizer", "tiny-bpe", "--engines", "tracelang",
                                 "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["traces"] == 9
    (row,) = data["engines"]
    assert row["rejected"] == 0 and row["mask_us"]["mean"] > 0
