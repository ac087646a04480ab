"""`tracelang train ...` and `tracelang corpus filter` end to end on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import GSM8K
from typer.testing import CliRunner

from tracelang.cli import app
from tracelang.paths import SHOTS
from tracelang.record import read_records

ROOT = Path(__file__).resolve().parents[1]


def _recipe(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(f"""
model: tiny
seed: 1
output_dir: {tmp_path / "run"}
unfreeze_layers: 1
progress: false
tensorboard: false
sft:
  data: [{{path: {SHOTS}, weight: 1.0}}]
  per_device_train_batch_size: 3
  learning_rate: 1.0e-3
rl:
  init: sft
  data: [{SHOTS}]
  max_steps: 1
  prompts_per_step: 1
  num_generations: 2
  max_new_tokens: 8
""")
    return path


def test_sft_then_rl_from_the_cli(runner: CliRunner, tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    res = runner.invoke(app, ["train", "sft", "--config", str(recipe), "--set", "max_steps=2", "--no-eval"])
    assert res.exit_code == 0, res.output
    assert "trained parameters:" in res.output and "lm_head: an untied copy" in res.output
    final = tmp_path / "run" / "sft" / "final"
    assert json.loads((final / "training.json").read_text())["config"]["max_steps"] == 2
    res = runner.invoke(app, ["train", "rl", "--config", str(recipe), "--no-eval"])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "run" / "rl" / "final" / "training.json").read_text())
    assert meta["init_checkpoint"] == str(final) and meta["base_model"] == "tiny"
    out = tmp_path / "exported"
    res = runner.invoke(app, ["train", "export", str(tmp_path / "run" / "rl" / "final"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "model.safetensors").is_file()


def test_sft_json_puts_only_the_result_on_stdout(runner: CliRunner, tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    res = runner.invoke(app, ["train", "sft", "--config", str(recipe), "--set", "max_steps=1", "--no-eval", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["steps"] == 1  # one JSON object, nothing else
    assert "trained parameters:" in res.stderr and (tmp_path / "run" / "sft" / "summary.md").is_file()


def test_lora_from_the_cli_then_ship_and_solve(runner: CliRunner, tmp_path: Path) -> None:
    """A LoRA recipe end to end: train, ship the adapter, load it by path for `solve`."""
    recipe = _recipe(tmp_path)
    res = runner.invoke(app, ["train", "sft", "--config", str(recipe), "--no-eval", "--set", "max_steps=2",
                              "--set", "unfreeze_layers=0", "--set", "train_lm_head=none",
                              "--set", "peft={r: 2, lora_alpha: 4}", "--set", "prompt_instructions=false"])
    assert res.exit_code == 0, res.output
    shipped = tmp_path / "shipped"
    res = runner.invoke(app, ["train", "ship", str(tmp_path / "run" / "sft" / "final"), "--out", str(shipped)])
    assert res.exit_code == 0, res.output
    meta = json.loads((shipped / "training.json").read_text())
    assert sorted(p.name for p in shipped.iterdir()) == ["adapter_config.json", "adapter_model.safetensors",
                                                         "training.json"]
    assert meta["data"][0]["sha256"] and len(meta["adapter_sha256"]) == 64
    res = runner.invoke(app, ["solve", "Tom has 3 apples and buys 2. How many now?", "--model", str(shipped),
                              "--max-new-tokens", "6", "--dtype", "float32"])
    assert res.exit_code in (0, 1) and "answer:" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "learnin_rate=1"], "tiny.yaml: sft.learnin_rate: unknown key"),
    (["--set", "train_lm_head=maybe"], "train_lm_head"),
    (["--set", "data.0.path=/nonexistent/c.jsonl"], "/nonexistent/c.jsonl"),
])
def test_bad_settings_are_one_line_errors(runner: CliRunner, tmp_path: Path, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["train", "sft", "--config", str(_recipe(tmp_path)), "--no-eval", *args])
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output


def test_rl_without_an_sft_checkpoint_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", "rl", "--config", str(_recipe(tmp_path)), "--no-eval"])
    assert res.exit_code == 2 and "run `tracelang train sft` first" in res.output


@pytest.mark.skipif(not (GSM8K / "train.jsonl").exists(), reason="GSM-8K not present")
def test_eval_overrides_and_shots_reach_the_in_training_evaluation(runner: CliRunner, tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", "sft", "--config", str(_recipe(tmp_path)), "--set", "max_steps=1",
                              "--set", "eval_at_end=true", "--set", "eval.n=2", "--set", "eval.free=false",
                              "--set", "eval.max_new_tokens=8", "--set", f"eval.data={GSM8K}",
                              "--set", "eval.shots=1", "--set", f"eval.shots_from={SHOTS}"])
    assert res.exit_code == 0, res.output
    config = json.loads((tmp_path / "run" / "eval" / "sft-step-1-constrained" / "config.json").read_text())
    assert (config["n"], config["shots"], config["shots_from"]) == (2, 1, str(SHOTS))
    assert (config["dtype"], config["batch_size"]) == ("float32", 32)  # the tiny model's weights; one default
    assert not (tmp_path / "run" / "eval" / "sft-step-1-free").exists()


def test_corpus_filter_writes_only_verified_traces(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "kept.jsonl"
    res = runner.invoke(app, ["corpus", "filter", "--model", "tiny", "--data", str(SHOTS), "--n", "2", "--k", "3",
                              "--max-new-tokens", "24", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.output.splitlines()[0])
    assert stats["questions"] == 2 and stats["samples"] == 6
    assert sum(stats["outcomes"].values()) == 6
    records = list(read_records(out))  # the file exists and follows the schema, even when nothing was kept
    assert len(records) == stats["kept"]
    from tracelang.pipeline import analyze

    for r in records:
        assert analyze(r["trace"], expected=r["answer"]).correct
