"""`tracelang eval --data`: any question/answer set, and answers that are not exact numbers refused."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from tracelang.cli import app
from tracelang.evaluation.datasets import load_file
from tracelang.fileio import InputError


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_answers_in_every_accepted_shape(tmp_path: Path) -> None:
    rows = [{"question": "a?", "answer": "so 72\n#### 72"}, {"question": "b?", "answer": "1,000"},
            {"question": "c?", "answer": 3}, {"question": "d?", "answer": -2.5}, {"question": "e?", "answer": "2/3"},
            {"id": "own", "problem": "f?", "solution": "7"}]
    problems = load_file(str(_write(tmp_path / "set.jsonl", rows[:5])))
    assert [p.gold for p in problems] == [72, 1000, 3, Fraction(-5, 2), Fraction(2, 3)]
    assert [p.id for p in problems][:2] == ["set-00000", "set-00001"]
    (own,) = load_file(str(_write(tmp_path / "own.jsonl", rows[5:])), "problem", "solution")
    assert own.id == "own" and own.question == "f?" and own.gold == 7


@pytest.mark.parametrize("answer", ["1/0", float("nan"), float("inf"), True, [1], "seven", None, {"v": 1}])
def test_an_answer_that_is_not_a_finite_exact_number_is_an_error(tmp_path: Path, answer) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"question": "ok?", "answer": 1}) + "\n"
                    + json.dumps({"question": "x?", "answer": answer}, allow_nan=True) + "\n", encoding="utf-8")
    # NaN and Infinity are not JSON: the shared line reader refuses them before the answer is read
    with pytest.raises(InputError, match=r"bad.jsonl:2:(1: not JSON: `-?(NaN|Infinity)`| the answer in field)"):
        load_file(str(path))


def test_eval_json_puts_only_the_metrics_on_stdout(tmp_path: Path, runner) -> None:
    data = _write(tmp_path / "one.jsonl", [{"question": "Tom has 3 apples and buys 2. How many now?", "answer": 5}])
    result = runner.invoke(app, ["eval", "--model", "tiny", "--data", str(data), "--out", str(tmp_path / "e"),
                                 "--max-new-tokens", "4", "--shots", "0", "--dtype", "float32", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["n"] == 1  # stdout is exactly one JSON object
    assert "wrote" in result.stderr


def test_eval_on_a_dataset_file_names_it(tmp_path: Path, runner) -> None:
    data = _write(tmp_path / "mine.jsonl", [{"question": f"Tom has {i} apples and buys 2. How many now?",
                                              "answer": i + 2} for i in range(3, 6)])
    out = tmp_path / "eval"
    result = runner.invoke(app, ["eval", "--model", "tiny", "--data", str(data), "--n", "2", "--out", str(out),
                                 "--max-new-tokens", "8", "--shots", "0", "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 2 and metrics["dataset"].startswith(str(data))
    lm = json.loads((out / "results.json").read_text())  # lm-evaluation-harness's shape
    task = lm["results"]["tracelang_gsm8k"]
    assert task["exact_match,none"] == metrics["accuracy"] and "exact_match_stderr,none" in task
    assert lm["n-samples"]["tracelang_gsm8k"] == {"original": 2, "effective": 2}
    assert [s["exact_match"] for s in lm["samples"]["tracelang_gsm8k"]] == [0.0, 0.0]
    report = (out / "report.md").read_text()
    assert report.startswith(f"# {data}") and "wall time" in report
    if __import__("importlib").util.find_spec("matplotlib"):  # charts beside the report, linked from it
        assert (out / "failure_taxonomy.png").read_bytes()[:4] == b"\x89PNG"
        assert "![failure taxonomy](failure_taxonomy.png)" in report


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "no/such/dir"], "--data no/such/dir: not a GSM-8K folder"),
    (["--n", "0"], "--n"),
    (["--n", "-1"], "--n"),
])
def test_usage_errors_before_any_model_loads(tmp_path: Path, runner, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["eval", "--model", "no-such-model", "--out", str(tmp_path / "e"), *args])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output and not (tmp_path / "e").exists()


def test_maj_at_k_votes_on_exact_answers(tmp_path: Path, runner) -> None:
    from tracelang.evaluation.backends import Generated
    from tracelang.evaluation.voting import VotingBackend

    traces = {  # three samples: two distinct plans run to 6, one to 5, one does not parse
        0: "expert: arithmetic\ntrace:\n- {op: init, var: a, value: 3}\n- {op: init, var: b, value: 2}\n"
           "- {op: compute, compute_op: add, args: [a, b], var: result}\n- {op: query, var: result}\n",
        1: "expert: arithmetic\ntrace:\n- {op: init, var: a, value: 3}\n- {op: init, var: b, value: 2}\n"
           "- {op: compute, compute_op: mul, args: [a, b], var: result}\n- {op: query, var: result}\n",
        2: "not a trace",
        3: "expert: arithmetic\ntrace:\n- {op: init, var: a, value: 3}\n- {op: init, var: b, value: 3}\n"
           "- {op: compute, compute_op: add, args: [a, b], var: result}\n- {op: query, var: result}\n",
    }

    class Samples:
        def generate(self, prompts, questions):
            assert len(prompts) == 4 and len(set(questions)) == 1
            return [Generated(traces[i], 10, 0.5) for i in range(4)]

    (out,) = VotingBackend(Samples(), 4).generate(["p"], ["Tom has 3 apples and 2 or 3 more. How many?"])
    assert out.text == traces[1] and out.new_tokens == 40  # 6 wins 2-1; the first trace that gives it
    assert out.sample_answers == ("5", "6", None, "6")  # every sample's answer, for pass@k


def test_samples_need_constrained_sampling(tmp_path: Path, runner) -> None:
    for args in (["--samples", "3", "--no-constrain"], ["--samples", "3", "--temperature", "0"]):
        result = runner.invoke(app, ["eval", "--model", "tiny", "--out", str(tmp_path / "e"), *args])
        assert result.exit_code == 2 and "--samples" in result.output and not (tmp_path / "e").exists()


def test_a_hostile_shots_corpus_is_one_line(tmp_path: Path, runner) -> None:
    bad = tmp_path / "shots.jsonl"
    bad.write_text('{"question": "q", "trace": "t"}\n' + "[" * 5000 + "\n", encoding="utf-8")
    result = runner.invoke(app, ["solve", "x?", "--model", "tiny", "--shots", "1", "--shots-from", str(bad)])
    assert result.exit_code == 2 and f"{bad}:2:" in result.output and "Traceback" not in result.output


def test_pass_at_k_is_reported_beside_maj_at_k(tmp_path: Path) -> None:
    from tracelang.data.gsm8k import Problem
    from tracelang.evaluation.metrics import summarize
    from tracelang.evaluation.report import write_report
    from tracelang.evaluation.runner import predict
    from tracelang.numbers import Exact

    trace = ("expert: arithmetic\ntrace:\n- {op: init, var: a, value: 3}\n- {op: init, var: b, value: 2}\n"
             "- {op: compute, compute_op: mul, args: [a, b], var: result}\n- {op: query, var: result}\n")
    question = "Tom has 3 bags of 2 apples. How many?"
    rows = [predict(Problem(f"p-{i}", i, "x", question, "", Exact(gold)), trace, 10, 0.1, False, samples)
            for i, (gold, samples) in enumerate([(5, ["6", "5", None]), (6, ["6", "6", "6"]), (7, [None, "6", "6"])])]
    assert [r["correct"] for r in rows] == [False, True, False]  # the vote's trace runs to 6
    assert [r["pass"] for r in rows] == [True, True, False]  # 5 was among the first problem's samples
    metrics = summarize(rows)
    assert metrics["correct"] == 1 and metrics["pass_at_k"] == 2
    metrics["config"] = {"samples": 3, "temperature": 0.7, "constrain": True}
    write_report(tmp_path / "report.md", metrics, rows)
    assert "| pass@3 (a right answer among the samples) | 2/3 = 66.7%" in (tmp_path / "report.md").read_text()
    assert "pass_at_k" not in summarize([{k: v for k, v in r.items() if k not in ("pass", "sample_answers")}
                                         for r in rows])  # greedy runs have none
