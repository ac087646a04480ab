"""User errors are one line (`error: ...`, exit 2), never a traceback: bad values are refused when
the recipe loads, unusable data when the stage prepares."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracelang.cli import app

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "corpora" / "shots.jsonl"


def _recipe(tmp_path: Path, data: Path = SHOTS) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(f"""
model: tiny
output_dir: {tmp_path / "run"}
unfreeze_layers: 1
progress: false
tensorboard: false
sft:
  data: [{data}]
  max_steps: 1
rl:
  init: null
  data: [{data}]
  max_steps: 1
  prompts_per_step: 1
  num_generations: 2
  max_new_tokens: 4
""")
    return path


def _one_line_error(res, message: str) -> None:
    assert res.exit_code == 2, res.output
    assert "error:" in res.output and message in res.output and "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


@pytest.mark.parametrize(("stage", "setting", "message"), [
    ("sft", "logging_steps=0", "logging_steps: must be >= 1"),
    ("sft", "constraint_levels=scope,colour", "constraint_levels: unknown level(s) colour"),
    ("sft", "data.0.weight=-1", "data.0.weight: -1 is negative"),
    ("rl", "temperature=0", "temperature: 0 must be > 0"),
    ("rl", "data.0.weight=-0.5", "data.0.weight: -0.5 is negative"),
    ("rl", "gsm8k_weight=-1", "gsm8k_weight: -1 is negative"),
])
def test_bad_values_are_refused_at_load(runner: CliRunner, tmp_path: Path, stage: str, setting: str,
                                        message: str) -> None:
    res = runner.invoke(app, ["train", stage, "--config", str(_recipe(tmp_path)), "--no-eval", "--set", setting])
    _one_line_error(res, message)


def test_no_usable_examples(runner: CliRunner, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = runner.invoke(app, ["train", "sft", "--config", str(_recipe(tmp_path, empty)), "--no-eval"])
    _one_line_error(res, "no usable training examples")
    res = runner.invoke(app, ["train", "sft", "--config", str(_recipe(tmp_path)), "--no-eval",
                              "--set", "data.0.weight=0"])
    _one_line_error(res, "no usable training examples")


def test_grammar_loss_target_outside_the_subset(runner: CliRunner, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelang.data.schema import read_records
    from tracelang.models import Prompter, load_model
    from tracelang.training import setup
    from tracelang.training.data import tokenize
    from tracelang.training.emittable import emittable_ids

    tok = load_model("tiny").tokenizer
    trace = next(iter(read_records(SHOTS)))["trace"]
    first = tokenize(tok, Prompter(tok), "", trace)[1][0]  # the first target token
    monkeypatch.setattr(setup, "emittable_ids", lambda t: tuple(i for i in emittable_ids(t) if i != first))
    res = runner.invoke(app, ["train", "sft", "--config", str(_recipe(tmp_path)), "--no-eval",
                              "--set", "loss_vocab=grammar"])
    _one_line_error(res, "is outside the grammar's tokens; use loss_vocab: full")
