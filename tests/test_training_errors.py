"""User errors are one line (`error: ...`, exit 2), never a traceback: bad values are refused when
the recipe loads, unusable data when the stage prepares."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracelang.cli import app
from tracelang.paths import SHOTS

ROOT = Path(__file__).resolve().parents[1]


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
    ("sft", "logging_steps=0", "tiny.yaml: sft.logging_steps: must be an integer >= 1, got 0"),
    ("sft", "constraint_levels=scope,colour", "sft.constraint_levels: unknown level(s) colour"),
    ("sft", "data.0.weight=-1", "sft.data.0.weight: must be a finite number >= 0, got -1"),
    ("sft", "max_steps=-5", "sft.max_steps: must be an integer >= 1"),
    ("sft", "learning_rate=.nan", "sft.learning_rate: must be a finite number > 0, got nan"),
    ("sft", "learning_rate=.inf", "sft.learning_rate: must be a finite number > 0, got inf"),
    ("sft", "learning_rate=0", "sft.learning_rate: must be a finite number > 0, got 0"),
    ("sft", "lr_scheduler_type=cosin", "sft.lr_scheduler_type: must be one of constant, constant_with_warmup, "
                                       "linear, cosine, got 'cosin'"),
    ("sft", "seed=-1", "sft.seed: must be an integer >= 0"),
    ("rl", "temperature=0", "rl.temperature: must be a finite number > 0, got 0"),
    ("rl", "data.0.weight=-0.5", "rl.data.0.weight: must be a finite number >= 0, got -0.5"),
    ("rl", "gsm8k_weight=-1", "rl.gsm8k_weight: must be a finite number >= 0, got -1"),
    ("rl", "max_steps=0", "rl.max_steps: must be an integer >= 1, got 0"),
    ("rl", "loss_type=ppo", "rl.loss_type: must be one of grpo, dr_grpo, dapo, got 'ppo'"),
    ("rl", "learnin_rate=1", "rl.learnin_rate: unknown key"),
])
def test_bad_values_are_refused_at_load(runner: CliRunner, tmp_path: Path, stage: str, setting: str,
                                        message: str) -> None:
    res = runner.invoke(app, ["train", stage, "--config", str(_recipe(tmp_path)), "--no-eval", "--set", setting])
    _one_line_error(res, message)


@pytest.mark.parametrize("args", [
    ["train", "sft", "--set", "eval.n=0"],
    ["train", "rl", "--set", "eval.batch_size=-1"],
    ["train", "run", "--stages", "base,foo"],
    ["train", "run", "--stages", ","],
    ["train", "run", "--set", "rl.max_steps=0"],  # refused before SFT trains, not after
])
def test_usage_errors_come_before_any_model_loads(runner: CliRunner, tmp_path: Path, args: list[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelang.training import setup

    def no_model(*_a, **_k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(setup, "load_stacked", no_model)
    res = runner.invoke(app, [*args[:2], "--config", str(_recipe(tmp_path)), *args[2:]])
    _one_line_error(res, "")
    assert len(res.output.strip().splitlines()) == 1, res.output


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
    from tracelang.models import Prompter, load_model
    from tracelang.record import read_records
    from tracelang.training import setup
    from tracelang.training.data import tokenize
    from tracelang.training.emittable import emittable_ids

    tok = load_model("tiny").tokenizer
    trace = next(iter(read_records(SHOTS)))["trace"]
    first = tokenize(tok, Prompter(tok), "", trace)[1][0]  # the first target token
    monkeypatch.setattr(setup, "emittable_ids",
                        lambda t, surface="yaml": tuple(i for i in emittable_ids(t, surface) if i != first))
    res = runner.invoke(app, ["train", "sft", "--config", str(_recipe(tmp_path)), "--no-eval",
                              "--set", "loss_vocab=grammar"])
    _one_line_error(res, "is outside the grammar's tokens; use loss_vocab: full")


def test_a_prepare_step_runs_on_the_same_command_tree(runner: CliRunner, tmp_path: Path) -> None:
    """A recipe's prepare step is a tracelang command; its usage error is its own line, then the step's."""
    recipe = _recipe(tmp_path)
    made = tmp_path / "train.jsonl"
    recipe.write_text(recipe.read_text() + f"prepare:\n  - {{creates: {made}, run: [gsm8k, split]}}\n")
    res = runner.invoke(app, ["train", "masks", "--config", str(recipe)])
    assert res.exit_code == 2, res.output
    assert res.stderr.splitlines() == [
        "error: give --input (with --dev/--train) or --ids",
        f"error: {recipe}: prepare.0: `tracelang gsm8k split` did not create {made}"]
