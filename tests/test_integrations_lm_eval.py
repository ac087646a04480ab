"""lm-eval end to end: its own command line runs the ``tracelang`` model (the constrained decoder) on
the local-file task, and what it decodes and scores is what `tracelang eval` decodes and scores with
the same settings. lm-eval is in the dev extras, so this runs in CI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracelang.cli import app
from tracelang.integrations.lm_eval import BUDGET_CLOSED_NOTE, process_results
from tracelang.pipeline import parse

pytest.importorskip("lm_eval")  # in the dev extras; absent only in a bare install

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = [  # made up here (GSM-8K's text is never committed)
    ("Sara buys 4 notebooks that cost $3 each. How much does she spend?", "#### 12"),
    ("Tom has 7 apples and gets 5 more. How many apples does he have?", "#### 12"),
    ("A box holds 6 eggs. How many eggs are in 3 boxes?", "#### 18"),
]
TOKENS = 24  # the tiny model writes until the budget: keep it short


def test_lm_eval_cli_runs_the_constrained_tracelang_model_and_agrees_with_tracelang_eval(
        tmp_path: Path, runner) -> None:
    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in PROBLEMS))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # lm-eval's own CLI; the task named by its YAML file registers `--model tracelang` (utils.py)
    cmd = [sys.executable, "-m", "lm_eval", "run", "--model", "tracelang", "--model_args", "model=tiny",
           "--batch_size", "2", "--device", "cpu", "--gen_kwargs", f"max_gen_toks={TOKENS}",
           "--tasks", str(ROOT / "integrations" / "lm_eval" / "tracelang_gsm8k_local.yaml"),
           "--metadata", json.dumps({"data_file": str(data)}), "--output_path", str(tmp_path / "lm_eval"),
           "--log_samples"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (samples_file,) = (tmp_path / "lm_eval").rglob("samples_tracelang_gsm8k_local_*.jsonl")
    samples = sorted((json.loads(line) for line in samples_file.read_text().splitlines()), key=lambda s: s["doc_id"])
    (results_file,) = (tmp_path / "lm_eval").rglob("results_*.json")
    results = json.loads(results_file.read_text())["results"]["tracelang_gsm8k_local"]

    # `tracelang eval` on the same file, same model, seed, batch size and token budget
    out = tmp_path / "eval"
    result = runner.invoke(app, ["eval", "--model", "tiny", "--data", str(data), "--batch-size", "2",
                                 "--max-new-tokens", str(TOKENS), "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]

    assert len(samples) == len(predictions) == len(PROBLEMS)
    for sample, row in zip(samples, predictions, strict=True):
        text = sample["resps"][0][0]
        assert sample["doc"]["question"] == row["question"]
        # constrained: the trace is the grammar's (it parses), and the same trace tracelang eval decoded
        trace = text.removesuffix(BUDGET_CLOSED_NOTE)
        assert trace == row["trace"] and parse(trace).program is not None
        assert text.endswith(BUDGET_CLOSED_NOTE) == bool(row.get("budget_closed"))
        assert sample["exact_match"] == float(row["correct"])
    assert results["exact_match,none"] == sum(r["correct"] for r in predictions) / len(PROBLEMS)


def test_a_budget_closed_trace_scores_zero_even_when_it_runs_to_the_gold() -> None:
    question = "Sara buys 4 notebooks that cost $3 each. How much does she spend?"
    trace = ("expert: arithmetic\ntrace:\n- {op: init, var: notebooks, value: 4}\n- {op: init, var: price, value: 3}\n"
             "- {op: compute, compute_op: mul, args: [notebooks, price], var: result}\n- {op: query, var: result}\n")
    doc = {"question": question, "answer": "#### 12"}
    assert process_results(doc, [trace]) == {"exact_match": 1.0}
    assert process_results(doc, [trace + BUDGET_CLOSED_NOTE]) == {"exact_match": 0.0}


def test_the_tracelang_model_refuses_loglikelihood_tasks_in_one_line() -> None:
    from lm_eval.api.registry import get_model

    from tracelang.errors import UsageError
    from tracelang.integrations.lm_eval_model import TracelangLM

    assert get_model("tracelang") is TracelangLM and get_model("hf") is not None  # lm-eval's own still there
    with pytest.raises(UsageError, match="generate_until tasks only"):
        TracelangLM.loglikelihood(object.__new__(TracelangLM), [])
