"""The evaluation path end to end on a tiny random model with a real tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import GSM8K, ROOT

from tracelang.evaluation.backends import FreeBackend, Generated, cut_trace
from tracelang.evaluation.metrics import summarize, wilson
from tracelang.evaluation.runner import EvalConfig, EvalError, run
from tracelang.models import Prompter, load_model
from tracelang.models.prompt import load_shots

pytestmark = pytest.mark.skipif(not (GSM8K / "test.jsonl").exists(), reason="GSM-8K not present")


def test_wilson_interval() -> None:
    lo, hi = wilson(5, 30)
    assert 0.07 < lo < 0.08 and 0.33 < hi < 0.34  # 5/30: 7.3%–33.6%
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == pytest.approx(1.0)
    assert wilson(0, 0) == (0.0, 0.0)


def test_cut_trace() -> None:
    assert cut_trace("expert: a\ntrace:\n- {op: query, var: x}\n\nQuestion: y", ["\nQuestion:", "\n\n"]) == \
        "expert: a\ntrace:\n- {op: query, var: x}\n"


class Replay:
    """A backend that answers with given traces (the gold one or a broken one), to test the runner
    itself; model decoding is tested with the real tiny model below."""

    def __init__(self, answers: dict[str, str]):
        self.answers, self.calls = answers, 0

    def generate(self, prompts: list[str], questions: list[str]) -> list[Generated]:
        self.calls += 1
        return [Generated(self.answers.get(q, "expert: arithmetic\ntrace:\n- {op: query, var: x}\n"), 10, 0.01)
                for q in questions]


def _gold_traces(config: EvalConfig) -> dict[str, str]:
    from tracelang.data.importer import convert
    from tracelang.evaluation.runner import problems

    out = {}
    for p in problems(config):
        record = convert(p).record
        if record is not None:
            out[p.question] = record["trace"]
    return out


def test_metrics_add_up_and_resume_works(tmp_path: Path) -> None:
    config = EvalConfig(model="replay", split="test", n=12, seed=42, batch_size=5, data_dir=str(GSM8K))
    golds = _gold_traces(config)
    half = dict(list(golds.items())[:6])  # six right answers, the rest wrong
    out = tmp_path / "run"
    metrics = run(config, out, Replay(half), prompt=lambda q: q)
    assert metrics["n"] == 12
    assert metrics["correct"] == 6
    assert metrics["valid"] + metrics["invalid_trace"] == 12
    assert metrics["correct"] + metrics["wrong_answer"] == metrics["valid"]
    assert sum(r["n"] for r in metrics["by_expert"].values()) == 12
    assert metrics["ci95"][0] < 0.5 < metrics["ci95"][1]
    assert (out / "report.md").read_text().startswith("# GSM-8K test")
    # interrupt: keep 7 rows and half a line, then resume; only the missing 5 are decoded again
    rows = (out / "predictions.jsonl").read_text().splitlines()
    (out / "predictions.jsonl").write_text("\n".join(rows[:7]) + "\n" + rows[7][:20])
    backend = Replay(half)
    again = run(config, out, backend, prompt=lambda q: q)
    assert backend.calls == 1  # 5 problems, one batch
    assert {k: again[k] for k in ("n", "correct", "valid")} == {k: metrics[k] for k in ("n", "correct", "valid")}
    ids = [json.loads(line)["id"] for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 12
    with pytest.raises(EvalError):
        run(EvalConfig(model="other", split="test", n=12, data_dir=str(GSM8K)), out, backend, prompt=lambda q: q)


def test_summarize_counts_failures() -> None:
    rows = [{"correct": True, "valid": True, "parsed": True, "codes": [], "gold_expert": "arithmetic"},
            {"correct": False, "valid": False, "parsed": False, "codes": ["E001"], "failure": "invalid:E001"},
            {"correct": False, "valid": True, "parsed": True, "codes": ["W201"], "failure": "wrong_operation"}]
    m = summarize(rows)
    assert (m["n"], m["correct"], m["valid"], m["wrong_answer"], m["invalid_trace"]) == (3, 1, 2, 1, 1)
    assert m["failures"] == {"E001": 1, "W201": 1}
    assert m["taxonomy"] == {"invalid:E001": 1, "wrong_operation": 1}


def test_free_decoding_with_a_tiny_model(tmp_path: Path) -> None:
    loaded = load_model("tiny", seed=0)
    prompter = Prompter(loaded.tokenizer, load_shots(ROOT / "corpora/shots.jsonl", 2, seed=0))
    config = EvalConfig(model="tiny", split="test", n=4, constrain=False, batch_size=2, max_new_tokens=24,
                        data_dir=str(GSM8K))
    metrics = run(config, tmp_path / "free", FreeBackend(loaded, prompter, 24), prompter.prompt)
    assert metrics["n"] == 4
    rows = [json.loads(x) for x in (tmp_path / "free" / "predictions.jsonl").read_text().splitlines()]
    assert all(0 < r["new_tokens"] <= 24 for r in rows)
    assert metrics["valid"] + metrics["invalid_trace"] == 4


def test_eval_command_in_bfloat16_records_the_dtype_and_resumes_older_runs(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import tracelang.evaluation.commands  # noqa: F401 - registers `eval` on the app
    from tracelang.cli import app

    out = tmp_path / "bf16"
    args = ["eval", "--model", "tiny", "--split", "test", "--n", "3", "--batch-size", "3", "--shots", "1",
            "--max-new-tokens", "24", "--data", str(GSM8K), "--out", str(out)]
    res = CliRunner().invoke(app, [*args, "--dtype", "bfloat16"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == metrics["parsed"] == 3  # constrained decoding parses in bf16 too

    # a directory written before --dtype existed ran in float32: it resumes as such, and only as such
    settings = json.loads((out / "config.json").read_text())
    del settings["dtype"]
    (out / "config.json").write_text(json.dumps(settings))
    assert CliRunner().invoke(app, [*args, "--dtype", "bfloat16"]).exit_code == 2
    res = CliRunner().invoke(app, [*args, "--dtype", "float32"])
    assert res.exit_code == 0, res.output
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3

    res = CliRunner().invoke(app, [*args, "--dtype", "half"])
    assert res.exit_code == 2 and "--dtype" in res.output and "float32" in res.output
    res = CliRunner().invoke(app, [*args, "--batch-size", "0"])  # the last --batch-size counts
    assert res.exit_code == 2 and "--batch-size" in res.output

