"""Recipes: every shipped recipe loads; overrides and unknown keys behave."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracelang.training.config import (
    ConfigError,
    DataSource,
    EvalSettings,
    RLConfig,
    SFTConfig,
    load_recipe,
    parse_overrides,
    stage_config,
)

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "training" / "recipes").glob("*.yaml"))


def test_recipes_are_shipped() -> None:
    names = {p.stem for p in RECIPES}
    assert {"embedded", "embedded-quick", "study-llama-3.2-1b", "study-llama-3.2-1b-instruct",
            "study-llama-3.2-3b-instruct"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_loads_every_stage(path: Path) -> None:
    recipe = load_recipe(path)
    sft = stage_config(recipe, "sft")
    rl = stage_config(recipe, "rl")
    ev = stage_config(recipe, "eval")
    assert isinstance(sft, SFTConfig) and isinstance(rl, RLConfig) and isinstance(ev, EvalSettings)
    assert sft.data and all(isinstance(d, DataSource) for d in sft.data)
    if sft.peft is not None:  # LoRA adapters: the same ones in both stages, nothing unfrozen whole
        assert sft.peft == rl.peft and sft.unfreeze_layers == rl.unfreeze_layers == 0
    else:
        assert sft.unfreeze_layers == rl.unfreeze_layers == 6  # the study's 6 layers (+ head)
    assert sft.model == rl.model == recipe["model"]
    if path.stem.startswith("study-"):
        assert sft.train_lm_head == "full" and sft.num_train_epochs == 1 and rl.max_steps == 20
        assert rl.max_steps * rl.prompts_per_step * rl.num_generations == 160  # the study's sample budget


def test_section_beats_top_level_and_overrides_beat_both(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("model: tiny\nlearning_rate: 1.0e-3\nsft:\n  data: [a.jsonl]\n  learning_rate: 2.0e-3\n"
                    "rl:\n  data: [{path: b.jsonl, weight: 0.5}]\n")
    recipe = load_recipe(path)
    assert stage_config(recipe, "sft").learning_rate == 2e-3
    assert stage_config(recipe, "rl").learning_rate == 1e-3
    over = parse_overrides(["learning_rate=5e-5", "data.0.weight=3", "max_steps=7"])
    sft = stage_config(recipe, "sft", over)
    assert sft.learning_rate == 5e-5 and sft.max_steps == 7
    assert sft.data == [DataSource("a.jsonl", 3.0)]
    assert stage_config(recipe, "sft").data == [DataSource("a.jsonl", 1.0)]  # the recipe itself is untouched


@pytest.mark.parametrize(("text", "message"), [
    ("sft:\n  data: [a.jsonl]\n  learnin_rate: 1\n", "unknown key `learnin_rate`"),
    ("lerning_rate: 1\n", "unknown top-level key `lerning_rate`"),
    ("sft:\n  data: [a.jsonl]\n  train_lm_head: tied\n", "train_lm_head"),
    ("sft:\n  data: [a.jsonl]\n  per_device_train_batch_size: two\n", "expected an integer"),
    ("sft:\n  data: []\n", "no corpus"),
    ("sft: [1\n", "not YAML"),
])
def test_bad_recipes_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        stage_config(load_recipe(path), "sft")


def test_override_syntax_errors() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["learning_rate"])


def test_mixed_precision_defaults_to_the_accelerate_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import accelerate

    from tracelang.training.sft import SFTTrainer

    seen: list[object] = []

    class Recorder:
        is_main_process = True

        def __init__(self, mixed_precision: str | None = None) -> None:
            seen.append(mixed_precision)

    monkeypatch.setattr(accelerate, "Accelerator", Recorder)
    path = tmp_path / "r.yaml"
    path.write_text("model: tiny\nsft:\n  data: [a.jsonl]\n")
    recipe = load_recipe(path)
    SFTTrainer(stage_config(recipe, "sft"), recipe)  # None: `accelerate launch`'s setting stands
    SFTTrainer(stage_config(recipe, "sft", {"mixed_precision": "bf16"}), recipe)
    assert seen == [None, "bf16"]
    with pytest.raises(ConfigError, match="mixed_precision: 'fp8'"):
        stage_config(recipe, "sft", {"mixed_precision": "fp8"})


def test_eval_inherits_only_its_own_keys_and_never_the_training_data(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("model: tiny\nseed: 3\nshots_from: s.jsonl\ndata: [a.jsonl]\neval:\n  n: 5\n")
    recipe = load_recipe(path)
    ev = stage_config(recipe, "eval", {"batch_size": 2})
    assert (ev.data, ev.seed, ev.shots_from, ev.n, ev.batch_size) == (None, 3, "s.jsonl", 5, 2)
    assert stage_config(recipe, "sft").data == [DataSource("a.jsonl")]
