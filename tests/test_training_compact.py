"""Training and evaluation on the compact surface: a recipe key chooses it, the prompt version
records it, and a checkpoint or a shipped adapter carries it to `solve` and `eval`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import GSM8K
from test_training_cli import _recipe
from typer.testing import CliRunner

from tracelang.cli import app
from tracelang.compact import is_compact
from tracelang.models.prompt import (
    BARE_PROMPT_VERSION,
    COMPACT_INSTRUCTIONS,
    INSTRUCTIONS,
    PROMPT_VERSION,
    Prompter,
)
from tracelang.models.tokenizer_store import tiny_bpe
from tracelang.paths import SHOTS
from tracelang.pipeline import analyze
from tracelang.training.data import DataTally, canonical_trace


def test_the_prompt_version_records_the_surface() -> None:
    tok = tiny_bpe()
    shots = [json.loads(line) for line in SHOTS.read_text().splitlines()[:2]]
    yaml_prompter = Prompter(tok, shots)
    assert yaml_prompter.version == PROMPT_VERSION and yaml_prompter.surface == "yaml"
    assert INSTRUCTIONS in yaml_prompter.prompt("Q?") and shots[0]["trace"].rstrip("\n") in yaml_prompter.prompt("Q?")
    compact = Prompter(tok, shots, instructions=False, surface="compact")
    assert compact.version == BARE_PROMPT_VERSION + "-compact"
    text = compact.prompt("How many?")
    assert "trace:\n- {op:" not in text and COMPACT_INSTRUCTIONS not in text
    assert all(is_compact(s["trace"]) and analyze(s["trace"]).ok for s in compact.shots)
    for version in (PROMPT_VERSION, BARE_PROMPT_VERSION, compact.version, PROMPT_VERSION + "-compact"):
        again = Prompter.for_version(tok, version)
        assert again.version == version
    assert Prompter.for_version(tok, BARE_PROMPT_VERSION).surface == "yaml"  # the shipped adapter's: unchanged
    assert Prompter.for_version(tok, compact.version, surface="yaml").version == BARE_PROMPT_VERSION
    assert COMPACT_INSTRUCTIONS in Prompter.for_version(tok, PROMPT_VERSION + "-compact").prompt("Q?")
    with pytest.raises(ValueError):
        Prompter(tok, surface="toml")


def test_training_targets_are_written_in_the_surface() -> None:
    record = json.loads(SHOTS.read_text().splitlines()[0])
    yaml_text = canonical_trace(record, DataTally())
    compact_text = canonical_trace(record, DataTally(), "compact")
    assert yaml_text == record["trace"] and is_compact(compact_text)  # type: ignore[arg-type]
    assert analyze(compact_text).answer == analyze(yaml_text).answer  # type: ignore[arg-type]


@pytest.mark.skipif(not (GSM8K / "train.jsonl").exists(), reason="GSM-8K not present")
def test_sft_on_the_compact_surface_then_eval_ship_and_solve(runner: CliRunner, tmp_path: Path) -> None:
    """`--set surface=compact` end to end: the masks, the checkpoint's prompt version, the in-training
    evaluation (predictions in both surfaces), a shipped adapter that `solve` decodes in compact."""
    res = runner.invoke(app, ["train", "sft", "--config", str(_recipe(tmp_path)), "--set", "surface=compact",
                              "--set", "max_steps=2", "--set", "unfreeze_layers=0", "--set", "train_lm_head=none",
                              "--set", "peft={r: 2, lora_alpha: 4}", "--set", "eval_at_end=true",
                              "--set", "eval.n=2", "--set", "eval.free=false", "--set", "eval.max_new_tokens=24",
                              "--set", f"eval.data={GSM8K}"])
    assert res.exit_code == 0, res.output
    final = tmp_path / "run" / "sft" / "final"
    meta = json.loads((final / "training.json").read_text())
    assert meta["prompt_version"] == PROMPT_VERSION + "-compact" and meta["config"]["surface"] == "compact"
    evaluated = tmp_path / "run" / "eval" / "sft-step-2-constrained"
    assert json.loads((evaluated / "config.json").read_text())["prompt_version"] == PROMPT_VERSION + "-compact"
    rows = [json.loads(line) for line in (evaluated / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(is_compact(r["trace"]) for r in rows)
    for r in rows:  # the YAML beside it reads the same (None only where the trace did not parse whole)
        if r["trace_yaml"] is not None:
            assert not is_compact(r["trace_yaml"]) and analyze(r["trace_yaml"]).answer == analyze(r["trace"]).answer
    shipped = tmp_path / "shipped"
    res = runner.invoke(app, ["train", "ship", str(final), "--out", str(shipped)])
    assert res.exit_code == 0, res.output
    assert json.loads((shipped / "training.json").read_text())["prompt_version"] == PROMPT_VERSION + "-compact"
    question = "Tom has 3 apples and buys 2. How many now?"
    res = runner.invoke(app, ["solve", question, "--model", str(shipped), "--max-new-tokens", "24",
                              "--dtype", "float32"])
    assert res.exit_code in (0, 1) and "Traceback" not in res.output
    assert is_compact(res.stdout), res.stdout  # decoded as it was trained: compact
    res = runner.invoke(app, ["solve", question, "--model", str(shipped), "--max-new-tokens", "24",
                              "--dtype", "float32", "--surface", "yaml"])
    assert res.exit_code in (0, 1) and not is_compact(res.stdout), res.stdout
    res = runner.invoke(app, ["solve", question, "--model", str(shipped), "--surface", "xml"])
    assert res.exit_code == 2 and "--surface takes yaml or compact" in res.output


def test_a_bad_surface_in_a_recipe_is_a_one_line_error(runner: CliRunner, tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", "sft", "--config", str(_recipe(tmp_path)), "--no-eval",
                              "--set", "surface=json"])
    assert res.exit_code == 2 and "surface" in res.output and "Traceback" not in res.output
