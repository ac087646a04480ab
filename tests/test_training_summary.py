"""A stage's summary: the learning curve PNG and the markdown page, from metrics.jsonl alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracelang.cli import app
from tracelang.training.summary import chain_metrics, learning_curve, read_metrics, write_summary


def _log(stage: Path) -> None:
    rows = [{"kind": "train", "step": s, "loss": 1.0 / s, "grad_norm": 0.5, "epoch": s / 4, "tokens": 100,
             "seconds": 2.0} for s in range(1, 9)]
    rows.insert(4, {"kind": "eval", "step": 4, "constrained_accuracy": 0.25, "constrained_n": 8,
                    "constrained_valid": 1.0})
    rows.append({"kind": "eval", "step": 8, "constrained_accuracy": 0.5, "constrained_n": 8,
                 "constrained_valid": 1.0})
    stage.mkdir(parents=True)
    (stage / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "{cut line\n[1]\n")


def test_summary_tabulates_epochs_and_evaluations(tmp_path: Path) -> None:
    stage = tmp_path / "run" / "sft"
    _log(stage)
    train, evals = read_metrics(stage)
    assert len(train) == 8 and [e["step"] for e in evals] == [4, 8]  # the cut line and the non-object are skipped
    text = write_summary(stage).read_text()
    assert "| 1 | 4 | 0.5208 | 0.50 | 50 |" in text  # epoch 1: steps 1-4, mean loss, 400 tokens / 8 s
    assert "| 8 | constrained | 8 | 50.0% | 21.5–78.5% | 100% |" in text  # Wilson interval of 4/8
    assert not list(stage.glob("*.part*"))


def test_learning_curve_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    stage = tmp_path / "run" / "sft"
    _log(stage)
    png = learning_curve(stage)
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "![learning curve](learning_curve.png)" in write_summary(stage).read_text()


def test_continued_stages_are_laid_end_to_end(tmp_path: Path) -> None:
    first, second = tmp_path / "stage1" / "sft", tmp_path / "stage2" / "sft"
    _log(first)
    _log(second)
    with (first / "metrics.jsonl").open("a") as f:  # a hand-edited row without a usable step is left out
        f.write(json.dumps({"kind": "train", "step": "9", "loss": 0.1}) + "\n")
    train, evals, starts = chain_metrics([first, second])
    assert [r["step"] for r in train] == list(range(1, 17))
    assert [r["loss"] for r in train[8:]] == [r["loss"] for r in train[:8]]  # the rows themselves, moved
    assert [e["step"] for e in evals] == [4, 8, 12, 16] and starts == [(0, "stage1"), (8, "stage2")]
    # hours of step time run on across the stages (2 s a step), and each evaluation sits at its step's
    assert [round(r["hours"] * 3600) for r in train] == list(range(2, 34, 2))
    assert [round(e["hours"] * 3600) for e in evals] == [8, 16, 24, 32]


def test_summary_draws_continued_stages_as_one_curve(runner, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    first, second = tmp_path / "stage1" / "sft", tmp_path / "stage2" / "sft"
    _log(first)
    _log(second)
    result = runner.invoke(app, ["train", "summary", str(first), str(second)])
    assert result.exit_code == 2 and "--out" in result.output and "Traceback" not in result.output
    png = tmp_path / "chain.png"
    result = runner.invoke(app, ["train", "summary", str(first), str(second), "--out", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(tmp_path.glob("*.part*"))
    assert not (first / "summary.md").exists()  # only the file named was written
    hours = tmp_path / "hours.png"
    result = runner.invoke(app, ["train", "summary", str(first), str(second), "--out", str(hours), "--hours"])
    assert result.exit_code == 0, result.output
    assert hours.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and hours.read_bytes() != png.read_bytes()


def test_nothing_to_draw_without_a_log(tmp_path: Path) -> None:
    assert learning_curve(tmp_path) is None


def test_rows_without_a_loss_are_left_out(tmp_path: Path) -> None:
    stage = tmp_path / "run" / "rl"
    stage.mkdir(parents=True)
    rows = [{"kind": "train", "step": 1, "reward_mean": 0.1}, {"kind": "train", "step": 2, "reward_mean": 0.2,
                                                                 "loss": 0.5, "epoch": 0.5, "seconds": 1.0}]
    (stage / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert "| 1 | 1 | 0.5000 |" in write_summary(stage).read_text()


def test_resume_truncates_the_log_keeping_rows_as_written(tmp_path: Path) -> None:
    """A diverged loss (NaN) stays in the log; a cut line and a line that is no object are dropped."""
    from tracelang.training.runlog import RunLog, metric_rows

    log = RunLog(tmp_path, echo=lambda _line: None)
    for step in (1, 2, 3):
        log.metrics(step, {"loss": float("nan") if step == 2 else 1.0})
    with log.path.open("a", encoding="utf-8") as fh:
        fh.write("[1, 2]\n{cut line\n")
    before = log.path.read_text(encoding="utf-8").splitlines()
    log.truncate_after(2)
    assert log.path.read_text(encoding="utf-8").splitlines() == before[:2]
    assert [r["step"] for r in metric_rows(log.path)] == [1, 2] and not list(tmp_path.glob(".*.part"))
