"""Evaluation directories know which model they evaluated: the same model resumes, a retrained one
starts afresh, and a plain `tracelang eval` directory is written exactly as before."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from conftest import GSM8K
from typer.testing import CliRunner

from tracelang.cli import app
from tracelang.evaluation.backends import Generated
from tracelang.evaluation.runner import EvalConfig, EvalError, run
from tracelang.paths import SHOTS

pytestmark = pytest.mark.skipif(not (GSM8K / "train.jsonl").exists(), reason="GSM-8K not present")


class Fixed:
    def __init__(self) -> None:
        self.calls = 0

    def generate(self, prompts: list[str], questions: list[str]) -> list[Generated]:  # noqa: ARG002
        self.calls += 1
        return [Generated("expert: arithmetic\ntrace:\n- {op: query, var: x}\n", 5, 0.01) for _ in prompts]


def _mark(out: Path) -> None:
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    (out / "predictions.jsonl").write_text("".join(json.dumps({**r, "trace": "MARK"}) + "\n" for r in rows))


def _marked(out: Path) -> bool:
    return all(json.loads(x)["trace"] == "MARK" for x in (out / "predictions.jsonl").read_text().splitlines())


def test_the_runner_restarts_for_another_model_only(tmp_path: Path) -> None:
    config = EvalConfig(model="sft-step-1", split="dev", n=3, batch_size=3, data_dir=str(GSM8K))
    out, lines = tmp_path / "e", []
    run(config, out, Fixed(), str, identity={"trained_sha256": "a"}, echo=lines.append)
    _mark(out)
    backend = Fixed()
    run(config, out, backend, str, identity={"trained_sha256": "a"}, echo=lines.append)
    assert backend.calls == 0 and _marked(out) and not lines  # the same model: resumed
    run(config, out, backend, str, identity={"trained_sha256": "b"}, echo=lines.append)
    assert backend.calls == 1 and not _marked(out) and len(lines) == 1 and "evaluating afresh" in lines[0]
    assert json.loads((out / "config.json").read_text())["model_identity"] == {"trained_sha256": "b"}
    with pytest.raises(EvalError, match="other settings"):  # other settings are still refused
        run(EvalConfig(model="sft-step-1", split="dev", n=2, data_dir=str(GSM8K)), out, backend, str,
            identity={"trained_sha256": "b"})
    plain = tmp_path / "plain"  # `tracelang eval`: no identity, config.json as before
    run(config, plain, Fixed(), str)
    assert json.loads((plain / "config.json").read_text()) == asdict(config)


def test_a_model_retrained_into_the_same_run_is_evaluated_afresh(tmp_path: Path) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(f"""
model: tiny
output_dir: {tmp_path / "run"}
unfreeze_layers: 1
progress: false
tensorboard: false
eval_at_end: true
sft:
  data: [{SHOTS}]
  max_steps: 1
eval:
  n: 2
  free: false
  max_new_tokens: 6
  data: {GSM8K}
""")
    runner = CliRunner()
    out = tmp_path / "run" / "eval" / "sft-step-1-constrained"

    def train(*args: str) -> str:
        res = runner.invoke(app, ["train", "sft", "--config", str(recipe), *args])
        assert res.exit_code == 0, res.output
        return res.output

    train()
    first = json.loads((out / "config.json").read_text())["model_identity"]
    assert first["base_model"] == "tiny" and first["init"] == []
    _mark(out)
    assert "evaluating afresh" not in train() and _marked(out)  # resumed: the same weights, the same predictions
    assert "evaluating afresh" in train("--no-resume", "--set", "learning_rate=0.5")
    assert not _marked(out)
    assert json.loads((out / "config.json").read_text())["model_identity"] != first


def test_the_recorded_dtype_is_the_weights_and_old_float32_records_are_redone(tmp_path: Path) -> None:
    from types import SimpleNamespace

    import torch

    from tracelang.training.config import EvalSettings
    from tracelang.training.evaluate import _forget_unrecorded_dtype, weights_dtype

    setup = SimpleNamespace(pm=SimpleNamespace(head_weight=torch.zeros(2, 2, dtype=torch.bfloat16)))
    assert weights_dtype(setup) == "bfloat16"  # type: ignore[arg-type]
    settings = EvalSettings(n=3, data=str(GSM8K))
    old = settings.run_config(label="sft-step-1", constrain=True, shots=0, prompt_version="v", dtype="float32")
    new = settings.run_config(label="sft-step-1", constrain=True, shots=0, prompt_version="v", dtype="bfloat16")
    out = tmp_path / "sft-step-1-constrained"
    run(old, out, Fixed(), str, identity={"trained_sha256": "a"}, echo=lambda _: None)
    lines: list[str] = []
    _forget_unrecorded_dtype(out, new, lines.append)
    assert not (out / "predictions.jsonl").exists() and "evaluating afresh" in lines[0]
    run(new, out, Fixed(), str, identity={"trained_sha256": "a"}, echo=lambda _: None)
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    _forget_unrecorded_dtype(out, new, lines.append)  # recorded right: kept
    assert (out / "predictions.jsonl").exists() and len(lines) == 1
