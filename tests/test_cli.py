"""The `tracelang` command line: output formats, exit codes, stdin, corpora, fmt's safety."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracelang.cli import app

GOOD = ("expert: arithmetic\ntrace:\n- {op: init, var: a, value: 5}\n- {op: init, var: b, value: 7}\n"
        "- {op: compute, compute_op: add, args: [a, b], var: result}\n- {op: query, var: result}\n")
BAD = GOOD.replace("args: [a, b]", "args: [a, c]")


def invoke(*args: str, stdin: str | None = None):
    return CliRunner().invoke(app, list(args), input=stdin)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(BAD)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in [
        {"trace": GOOD, "answer": "12"},
        {"trace": GOOD, "answer": 13},
        {"trace": BAD},
        "not an object",
    ]) + "\n{broken json\n")
    return {"good": good, "bad": bad, "corpus": corpus}


def test_check_clean_file_exits_0(files) -> None:
    result = invoke("check", str(files["good"]))
    assert result.exit_code == 0
    assert "1 checked: 1 ok" in result.output


def test_check_human_output_points_at_the_place(files) -> None:
    result = invoke("check", str(files["bad"]))
    assert result.exit_code == 1
    assert f"{files['bad']}:5:44: E201 `c` is not defined" in result.output
    assert "^" in result.output and "= hint:" in result.output


def test_check_json_lines(files) -> None:
    result = invoke("check", "--format", "json", str(files["good"]), str(files["corpus"]))
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["source"].rsplit("/", 1)[-1], r["index"]) for r in rows] == [
        ("good.yaml", 0), ("corpus.jsonl", 0), ("corpus.jsonl", 1), ("corpus.jsonl", 2), ("corpus.jsonl", 3),
        ("corpus.jsonl", 4)]
    keys = {"source", "index", "ok", "answer", "expected", "correct", "diagnostics"}
    assert all(set(r) == keys for r in rows)
    assert rows[0]["answer"] == "12" and rows[0]["ok"] and rows[0]["correct"] is None
    assert rows[1]["correct"] is True and rows[1]["expected"] == "12"
    assert rows[2]["correct"] is False and rows[2]["answer"] == "12"
    assert rows[3]["ok"] is False and rows[3]["diagnostics"][1] == {
        "code": "E201", "name": "undefined-variable", "severity": "error", "message": "`c` is not defined",
        "line": 5, "column": 44, "end_column": 45, "hint": "define it with `init` before this step"}
    assert rows[4]["diagnostics"][0]["code"] == "E002" and rows[5]["diagnostics"][0]["code"] == "E002"
    assert rows[5]["diagnostics"][0]["line"] == 5  # the line of the record in the corpus file


def test_check_reads_stdin() -> None:
    assert invoke("check", "-", stdin=GOOD).exit_code == 0
    assert invoke("check", "-", stdin=BAD).exit_code == 1
    corpus = json.dumps({"trace": GOOD, "answer": 12}) + "\n"
    result = invoke("check", "--format", "json", "-", stdin=corpus)
    assert json.loads(result.output)["correct"] is True


@pytest.mark.parametrize("args", [["check", "/nonexistent/x.yaml"], ["check", "--format", "xml", "x.yaml"],
                                  ["check"], ["run", "/nonexistent.yaml"], ["fmt", "/nonexistent.yaml"]])
def test_usage_and_io_errors_exit_2(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_check_refuses_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"expert: caf\xe9\n")
    result = invoke("check", str(path))
    assert result.exit_code == 2 and "not UTF-8" in result.output


def test_check_json_gives_unreadable_sources_a_record(tmp_path: Path, files) -> None:
    """JSON Lines output has a record for every source, an unreadable one included; the exit stays 2."""
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"trace": "caf\xe9"}\n')
    missing = tmp_path / "missing.yaml"
    result = invoke("check", "--format", "json", str(latin), str(files["good"]), str(missing))
    assert result.exit_code == 2
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["source"] for r in rows] == [str(latin), str(files["good"]), str(missing)]
    assert rows[1]["ok"] and rows[1]["answer"] == "12"
    for row in (rows[0], rows[2]):
        assert set(row) == {"source", "index", "ok", "answer", "expected", "correct", "diagnostics"}
        assert not row["ok"] and row["answer"] is None
        [d] = row["diagnostics"]
        assert d["code"] == "E002" and d["severity"] == "error" and d["line"] == 1
    assert "not UTF-8" in rows[0]["diagnostics"][0]["message"]
    assert invoke("check", str(latin), str(files["good"])).exit_code == 2  # text: the plain error line, as before


def test_run_prints_values_and_the_answer_last(files) -> None:
    result = invoke("run", str(files["good"]))
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[-1] == "12"
    assert any("result = 12" in line for line in lines[:-1])
    assert any("init" in line and "a = 5" in line for line in lines)


def test_run_reports_errors(files) -> None:
    result = invoke("run", str(files["bad"]))
    assert result.exit_code == 1 and "E201" in result.output


def test_run_exact_answer(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(GOOD.replace("add, args: [a, b]", "div, args: [a, b]"))
    assert invoke("run", str(path)).output.strip().splitlines()[-1] == "5/7"


CYCLIST = ("expert: rate_equation\ntrace:\n- {op: init, var: speed, value: 12}\n- {op: init, var: hours, value: 1}\n"
           "- {op: compute, compute_op: mul, args: [speed, hours], var: result}\n- {op: query, var: result}\n")
STATES_ONE = "A cyclist rides at 12 miles per hour. How far does she ride in 1 hour?"


def test_run_and_check_take_the_question_so_grounding_agrees_with_eval(tmp_path: Path) -> None:
    """A `mul` by a 1 the question states is the problem's own quantity (not E401) once the question
    is given, by --question or by a record's field, as `tracelang eval` grades it; without it, E401."""
    path = tmp_path / "t.yaml"
    path.write_text(CYCLIST)
    bare = invoke("run", str(path))
    assert bare.exit_code == 1 and "E401" in bare.output
    told = invoke("run", str(path), "--question", STATES_ONE)
    assert told.exit_code == 0 and "E401" not in told.output and told.output.strip().splitlines()[-1] == "12"
    record = tmp_path / "r.jsonl"
    record.write_text(json.dumps({"question": STATES_ONE, "trace": CYCLIST}) + "\n")
    assert invoke("run", str(record)).output.strip().splitlines()[-1] == "12"
    assert invoke("check", str(path)).exit_code == 1
    assert invoke("check", str(path), "--question", STATES_ONE).exit_code == 0
    # a question that does not state the 1 keeps the error
    other = "A cyclist rides at 12 miles per hour. How far does she ride in an hour?"
    assert "E401" in invoke("run", str(path), "--question", other).output


def test_fmt_rewrites_and_check_mode(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    messy = GOOD.replace("- {op: init, var: a, value: 5}", "- op: init\n  var: 'a'\n  value: 5.0  # five")
    path.write_text(messy)
    assert invoke("fmt", "--check", str(path)).exit_code == 1
    assert path.read_text() == messy  # --check changes nothing
    assert invoke("fmt", str(path)).exit_code == 0
    assert path.read_text() == GOOD.replace("- {op: init, var: b", "# five\n- {op: init, var: b")
    assert invoke("fmt", "--check", str(path)).exit_code == 0
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_fmt_leaves_broken_files_untouched(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    broken = GOOD.replace("{op: compute", "{op: comptue")
    path.write_text(broken)
    result = invoke("fmt", str(path))
    assert result.exit_code == 1 and "E103" in result.output
    assert path.read_text() == broken


def test_fmt_corpus_rewrites_each_trace(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"id": "x", "trace": GOOD.replace("value: 5}", "value: 5.00}")}) + "\n")
    assert invoke("fmt", str(path)).exit_code == 0
    assert json.loads(path.read_text()) == {"id": "x", "trace": GOOD}


def test_fmt_stdin_to_stdout() -> None:
    result = invoke("fmt", "-", stdin=GOOD.replace("value: 5}", "value: '5'}"))
    assert result.exit_code == 0 and result.output == GOOD


def test_schema_is_json_schema() -> None:
    schema = json.loads(invoke("schema").output)
    assert schema["title"] == "Program"
    steps = schema["$defs"]["Block"]["properties"]["trace"]["items"]
    assert set(steps["discriminator"]["mapping"]) >= {"init", "compute", "query", "percent_of", "transfer"}


def test_version(runner) -> None:
    from tracelang import __version__
    from tracelang.cli import app

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"tracelang {__version__}"
