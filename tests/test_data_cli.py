"""`tracelang gsm8k import|split|quantities` and grounding in `tracelang check`, on hand-written data."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracelang.cli import app
from tracelang.data.splits import dev_ids
from tracelang.record import make_record

PROBLEMS = [
    {"question": "A kite costs $3. How much do 4 kites cost?", "answer": "4 kites cost 4*3 = $<<4*3=12>>12.\n#### 12"},
    {"question": "Nell has 20 stamps and gives away 8. How many are left?",
     "answer": "She has 20-8 = <<20-8=12>>12 left.\n#### 12"},
    {"question": "Ray has 6 cats.", "answer": "He has 6 cats.\n#### 6"},
    {"question": "Ida swims 3 laps a day for 2 weeks. How many laps?",
     "answer": "Days: 2*7 = <<2*7=14>>14.\nLaps: 14*3 = <<14*3=42>>42.\n#### 42"},
]


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_import_writes_records_report_and_summary(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "train.jsonl", PROBLEMS)
    out, report = tmp_path / "out.jsonl", tmp_path / "report.json"
    result = run("gsm8k", "import", "--input", str(source), "--out", str(out), "--report", str(report))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == ["gsm8k-train-00000", "gsm8k-train-00001", "gsm8k-train-00003"]
    assert all(list(r) == ["id", "question", "trace", "answer", "expert", "source", "meta"] for r in records)
    data = json.loads(report.read_text())
    assert (data["total"], data["converted"], data["coverage"]) == (4, 3, 0.75)
    assert data["failures"] == {"no_annotations": 1} and data["failed_ids"] == {"no_annotations": ["gsm8k-train-00002"]}
    assert data["warnings"] == {} and data["clean"] == 3
    for label in ("total", "converted", "clean", "failed", "no_annotations"):
        assert label in result.output
    # every written record checks clean with grounding, and its answer is right
    checked = run("check", str(out))
    assert checked.exit_code == 0 and "3 checked: 3 ok" in checked.output and "0 warnings" in checked.output
    assert "3/3 answers correct" in checked.output


def test_import_limit_split_and_strict(tmp_path: Path) -> None:
    rows = PROBLEMS + [{"question": "Ben has 3 cats and some birds. How many pets?",
                        "answer": "He has 5 birds, so 3+5 = <<3+5=8>>8 pets.\n#### 8"}]
    source = write_jsonl(tmp_path / "mine.jsonl", rows)
    out = tmp_path / "out.jsonl"
    result = run("gsm8k", "import", "--input", str(source), "--out", str(out), "--split", "test", "--limit", "2")
    assert result.exit_code == 0
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert ids == ["gsm8k-test-00000", "gsm8k-test-00001"]
    report = tmp_path / "r.json"
    result = run("gsm8k", "import", "--input", str(source), "--out", str(out), "--split", "test", "--report",
                 str(report))
    assert json.loads(report.read_text())["warnings"] == {"W701": 1}
    result = run("gsm8k", "import", "--input", str(source), "--out", str(out), "--split", "test", "--strict",
                 "--report", str(report))
    assert json.loads(report.read_text())["failures"] == {"no_annotations": 1, "ungrounded_value": 1}


def test_import_guards_train_against_test_beside_it(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "test.jsonl", [{"question": "A kite costs $9. How much do 2 kites cost?",
                                           "answer": "#### 18"}])
    source = write_jsonl(tmp_path / "train.jsonl", PROBLEMS)
    out, report = tmp_path / "out.jsonl", tmp_path / "r.json"
    result = run("gsm8k", "import", "--input", str(source), "--out", str(out), "--report", str(report))
    assert result.exit_code == 0
    data = json.loads(report.read_text())
    assert data["failures"]["contaminated"] == 1 and data["reference"].endswith("test.jsonl")
    assert data["contaminated"] == [{"id": "gsm8k-train-00000", "kind": "ngram", "reference": "gsm8k-test-00000",
                                     "detail": "a kite costs # how much do # kites cost"}]
    result = run("gsm8k", "import", "--input", str(source), "--out", str(out), "--allow-contaminated")
    assert len(out.read_text().splitlines()) == 3


@pytest.mark.parametrize(("content", "message"), [
    ('{"question": "q", "answer": "#### 1"}\n{oops\n', "in.jsonl:2:2: not JSON"),
    ('{"question": "q"}\n', "in.jsonl:1: a GSM-8K row needs `question` and `answer` strings"),
    ('[1, 2]\n', "in.jsonl:1:1: not a JSON object"),
])
def test_import_bad_input_leaves_no_output(tmp_path: Path, content: str, message: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(content)
    out = tmp_path / "out.jsonl"
    result = run("gsm8k", "import", "--input", str(source), "--out", str(out))
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_import_unwritable_output(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "train.jsonl", PROBLEMS)
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run("gsm8k", "import", "--input", str(source), "--out", str(blocker / "out.jsonl"))
    assert result.exit_code == 2 and "cannot write" in result.output and "Traceback" not in result.output


def test_import_missing_file_and_hub_without_datasets(tmp_path: Path) -> None:
    result = run("gsm8k", "import", "--input", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl"))
    assert result.exit_code == 2 and "nope.jsonl" in result.output
    result = run("gsm8k", "import", "--input", "hf:nonsense", "--out", str(tmp_path / "o.jsonl"))
    assert result.exit_code == 2 and "hf:REPO[@CONFIG]:SPLIT" in result.output
    if importlib.util.find_spec("datasets") is None:
        result = run("gsm8k", "import", "--input", "hf:openai/gsm8k:train", "--out", str(tmp_path / "o.jsonl"),
                     "--against", str(write_jsonl(tmp_path / "ref.jsonl", [])))
        assert result.exit_code == 2 and "needs the `datasets` package" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_split_command(tmp_path: Path) -> None:
    dev = sorted(dev_ids())
    result = run("gsm8k", "split", "--ids")
    assert result.exit_code == 0 and result.output.split() == dev
    records = [make_record(dev[0], "q", "t", "1", "arithmetic", "gsm8k-train"),
               make_record("gsm8k-train-07472" if "gsm8k-train-07472" not in dev else "gsm8k-train-07471",
                           "q", "t", "1", "arithmetic", "gsm8k-train")]
    source = write_jsonl(tmp_path / "records.jsonl", records)
    result = run("gsm8k", "split", "--input", str(source), "--dev", str(tmp_path / "d.jsonl"), "--train",
                 str(tmp_path / "t.jsonl"))
    assert result.exit_code == 0 and "dev 1, train 1" in result.output
    assert json.loads((tmp_path / "d.jsonl").read_text())["id"] == dev[0]
    test = write_jsonl(tmp_path / "test.jsonl", [make_record("gsm8k-test-00001", "q", "t", "1", "arithmetic", "x")])
    result = run("gsm8k", "split", "--input", str(test), "--dev", str(tmp_path / "d2.jsonl"))
    assert result.exit_code == 2 and "evaluation-only" in result.output and not (tmp_path / "d2.jsonl").exists()
    assert run("gsm8k", "split").exit_code == 2


def test_quantities_command() -> None:
    result = run("gsm8k", "quantities", "Pat bought a dozen eggs for $4.50 and got 10% off.")
    assert result.exit_code == 0
    assert "a dozen" in result.output and "4.5" in result.output and "percent" in result.output
    assert "constants:" in result.output and "dozen=12" in result.output


TRACE = """\
expert: arithmetic
trace:
- {op: init, var: kites, value: 4}
- {op: init, var: price, value: 5}
- {op: compute, compute_op: mul, args: [kites, price], var: result}
- {op: query, var: result}
"""


def test_check_grounds_init_values_in_the_question(tmp_path: Path) -> None:
    grounded = make_record("a", "A kite costs $5. How much do 4 kites cost?", TRACE, "20", "arithmetic", "x")
    ungrounded = make_record("b", "A kite costs $6. How much do 4 kites cost?", TRACE, "20", "arithmetic", "x")
    no_question = make_record("c", None, TRACE, "20", "arithmetic", "x")
    corpus = write_jsonl(tmp_path / "c.jsonl", [grounded, ungrounded, no_question])
    result = run("check", str(corpus))
    assert result.exit_code == 0  # a warning is no error
    assert "c.jsonl:2 [record 1] trace:4:33: W701 5 is not a quantity of the question" in result.output
    assert "1 warnings" in result.output and result.output.count("W701") == 1
    result = run("check", str(corpus), "--format", "json")
    codes = [[d["code"] for d in json.loads(line)["diagnostics"]] for line in result.output.splitlines()]
    assert codes == [[], ["W701"], []]
