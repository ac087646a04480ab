"""`tracelang corpus generate | lint | stats`: determinism, verification, duplicates, the
contamination guard, atomic output, and the statistics."""

from __future__ import annotations

import json
from pathlib import Path

from test_corpus_templates import BOXES, make_dir
from typer.testing import CliRunner

from tracelang.cli import app
from tracelang.corpus.generate import question_key
from tracelang.corpus.stats import corpus_stats, measure
from tracelang.grounding import grounder_for
from tracelang.pipeline import analyze
from tracelang.record import validate

NO_GUARD = ["--gsm8k-test", ""]  # replaced per test with a reference file written by the test


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def reference(tmp_path: Path, questions: list[str]) -> Path:
    path = tmp_path / "reference.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": "#### 1"}) + "\n" for q in questions))
    return path


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_generate_is_deterministic_and_every_record_checks_clean(tmp_path: Path) -> None:
    ref = reference(tmp_path, ["A question about something else entirely, with nothing in common at all here."])
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    for out, seed in ((a, 4), (b, 4), (c, 5)):
        result = run("corpus", "generate", "--n", 300, "--seed", seed, "--out", out, "--gsm8k-test", ref, "-q")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output.strip().splitlines()[-1])["written"] == 300
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    rows = records(a)
    assert len({question_key(r["question"]) for r in rows}) == 300
    for r in rows:
        validate(r)
        report = analyze(r["trace"], expected=r["answer"], grounder=grounder_for(r["question"]))
        assert report.correct and report.diagnostics == [], r
        assert r["source"] == "synthetic:template" and r["meta"]["templates"]


def test_the_guard_refuses_overlapping_questions(tmp_path: Path) -> None:
    first = tmp_path / "first.jsonl"
    ref = reference(tmp_path, ["Nothing like it."])
    assert run("corpus", "generate", "--n", 50, "--seed", 1, "--out", first, "--gsm8k-test", ref, "-q").exit_code == 0
    taken = [r["question"] for r in records(first)[:5]]
    ref = reference(tmp_path, taken)
    second = tmp_path / "second.jsonl"
    result = run("corpus", "generate", "--n", 50, "--seed", 1, "--out", second, "--gsm8k-test", ref, "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["contaminated"] >= 5
    assert not set(taken) & {r["question"] for r in records(second)}


TINY = """
[[template]]
id = "tiny.add"
answer = "a + b"
facts = [["{name} has {a} pears and gets {b} more."]]
question = ["How many pears does {name} have?"]
trace = \"\"\"
expert: arithmetic
trace:
- {op: init, var: a, value: {a}}
- {op: init, var: b, value: {b}}
- {op: compute, compute_op: add, args: [a, b], var: total}
- {op: query, var: total}
\"\"\"

[template.vars]
name = "people"
a = {range = [2, 4]}
b = {range = [2, 3]}
"""


def test_duplicates_are_dropped_and_too_small_sources_write_nothing(tmp_path: Path) -> None:
    root = tmp_path / "templates"
    root.mkdir()
    make_dir(root, TINY, '[people]\nkind = "people"\nshe = ["Ines"]\n')
    out = tmp_path / "out" / "corpus.jsonl"
    out.parent.mkdir()
    ref = reference(tmp_path, ["Nothing like it."])
    ok = run("corpus", "generate", "--n", 6, "--seed", 0, "--out", out, "--templates", root, "--gsm8k-test", ref, "-q")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output.strip().splitlines()[-1])["duplicates"] > 0  # 6 distinct questions exist
    assert len({r["question"] for r in records(out)}) == 6
    out.unlink()
    result = run("corpus", "generate", "--n", 7, "--seed", 0, "--out", out, "--templates", root,
                 "--gsm8k-test", ref, "-q")
    assert result.exit_code == 1
    assert "only 6 of 7 records" in result.output and "nothing written" in result.output
    assert list(out.parent.iterdir()) == []  # no partial file, no temp file


def test_bad_inputs_are_usage_errors(tmp_path: Path) -> None:
    result = run("corpus", "generate", "--n", 5, "--out", tmp_path / "x.jsonl", "--templates", tmp_path / "none")
    assert result.exit_code == 2 and "not a directory of templates" in result.output
    test_file = tmp_path / "test.jsonl"
    test_file.write_text('{"question": "q", "answer": "#### 1"}\n')
    result = run("corpus", "generate", "--n", 5, "--out", tmp_path / "x.jsonl", "--gsm8k-train", test_file)
    assert result.exit_code == 2 and "evaluation only" in result.output
    assert not (tmp_path / "x.jsonl").exists()


def test_generate_lifts_from_imported_train_records(tmp_path: Path) -> None:
    # Records written for this test in the importer's output format (question + canonical trace).
    train = tmp_path / "train_records.jsonl"
    rows = [{"id": f"t-{i}", "question": f"Ada has {a} shells and finds {b} more on the beach. Then she gives "
             f"{c} to her cousin. How many shells does she have now?",
             "trace": f"expert: arithmetic\ntrace:\n- {{op: init, var: shells, value: {a}}}\n"
             f"- {{op: init, var: found, value: {b}}}\n- {{op: init, var: given, value: {c}}}\n"
             "- {op: compute, compute_op: add, args: [shells, found], var: step1}\n"
             "- {op: compute, compute_op: sub, args: [step1, given], var: result}\n- {op: query, var: result}\n",
             "answer": str(a + b - c), "expert": "arithmetic", "source": "gsm8k-train", "meta": {}}
            for i, (a, b, c) in enumerate([(24, 13, 7), (40, 25, 12)])]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "mixed.jsonl"
    ref = reference(tmp_path, ["Nothing like it."])
    result = run("corpus", "generate", "--n", 200, "--seed", 2, "--out", out, "--gsm8k-train", train,
                 "--lifted-share", 0.5, "--gsm8k-test", ref, "-q")
    assert result.exit_code == 0, result.output
    lifted = [r for r in records(out) if r["source"] == "synthetic:gsm8k-lift"]
    assert 60 < len(lifted) < 140
    for r in lifted:
        assert r["question"].startswith("Ada has ") and r["meta"]["origin"] in ("t-0", "t-1")
        report = analyze(r["trace"], expected=r["answer"], grounder=grounder_for(r["question"]))
        assert report.correct and not report.diagnostics


def test_lint_command(tmp_path: Path) -> None:
    good = make_dir(tmp_path / "good" if (tmp_path / "good").mkdir() is None else tmp_path)
    result = run("corpus", "lint", "--templates", good)
    assert result.exit_code == 0, result.output
    assert "3 templates" in result.output and "0 errors" in result.output
    (tmp_path / "bad").mkdir()
    bad = make_dir(tmp_path / "bad", BOXES.replace("value: {eaten}", "value: {eatn}")
                   + BOXES.replace('"demo.boxes"', '"demo.boxes2"').replace('"demo.share"', '"demo.share2"')
                   .replace('"demo.pass"', '"demo.pass2"'))
    result = run("corpus", "lint", "--templates", bad)
    assert result.exit_code == 1
    assert "demo.toml:19: template `demo.boxes`: error: trace: `{eatn}` names no variable" in result.output
    assert "1 errors" in result.output and "6 templates" in result.output


def test_stats_command_and_measures(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    ref = reference(tmp_path, ["Nothing like it."])
    assert run("corpus", "generate", "--n", 200, "--seed", 3, "--out", corpus, "--gsm8k-test", ref, "-q").exit_code == 0
    raw = tmp_path / "train.jsonl"  # questions and worked answers written for this test
    raw.write_text("".join(json.dumps(r) + "\n" for r in [
        {"question": "Jo has two dogs and buys 3 more. How many dogs does Jo have?",
         "answer": "2+3 = <<2+3=5>>5\n#### 5"},
        {"question": "A pen costs $4. Kim buys 6 pens and pays with $50. What change does Kim get?",
         "answer": "6*4 = <<6*4=24>>24\n50-24 = <<50-24=26>>26\n#### 26"},
    ]))
    result = run("corpus", "stats", corpus, "--against", raw)
    assert result.exit_code == 0, result.output
    for label in ("words per question", "questions with number words", "operations per trace",
                  "distinct operation shapes", "distinct names", "experts", "GSM-8K train"):
        assert label in result.output
    payload = json.loads(run("corpus", "stats", corpus, "--json").output)
    assert payload["corpus"]["records"] == 200 and float(payload["corpus"]["operations per trace"]) >= 2

    stats = corpus_stats(records(corpus))
    assert stats.traces == 200 and len(stats.shapes) > 10
    small = measure(["Ana has twice as many pens as Bo. Bo has 4.", "Cal has 3 kites."],
                    [("expert: arithmetic\ntrace:\n- {op: init, var: a, value: 4}\n"
                      "- {op: init, var: b, value: 2}\n- {op: compute, compute_op: mul, args: [a, b], var: c}\n"
                      "- {op: query, var: c}\n", "arithmetic")])
    assert small.with_number_words == 1 and small.operations == 1 and dict(small.shapes) == {"mul": 1}
    assert set(small.names) == {"Ana", "Bo", "Cal"}
    assert run("corpus", "stats", tmp_path / "missing.jsonl").exit_code == 2
