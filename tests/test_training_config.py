"""Recipes: every shipped recipe loads; overrides and unknown keys behave."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tracelang.training.config import (
    ConfigError,
    DataSource,
    EvalSettings,
    PeftSettings,
    RLConfig,
    SFTConfig,
    checked,
    load_recipe,
    parse_overrides,
    stage_config,
    to_dict,
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
    assert sft.model == rl.model == recipe.raw["model"]
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
    assert sft.data == [DataSource(path="a.jsonl", weight=3.0)]
    assert stage_config(recipe, "sft").data == [DataSource(path="a.jsonl")]  # the recipe itself is untouched


@pytest.mark.parametrize(("text", "message"), [
    ("sft:\n  data: [a.jsonl]\n  learnin_rate: 1\n", "bad.yaml: sft.learnin_rate: unknown key"),
    ("lerning_rate: 1\n", "bad.yaml: lerning_rate: unknown key"),
    ("sft:\n  data: [a.jsonl]\n  train_lm_head: tied\n",
     "bad.yaml: sft.train_lm_head: must be one of none, full, grammar, got 'tied'"),
    ("sft:\n  data: [a.jsonl]\n  per_device_train_batch_size: two\n",
     "bad.yaml: sft.per_device_train_batch_size: must be an integer >= 1, got 'two'"),
    ("sft:\n  data: [a.jsonl]\n  progress: 1\n", "bad.yaml: sft.progress: must be true or false, got 1"),
    ("sft:\n  data: [a.jsonl]\n  max_steps: 0\n", "bad.yaml: sft.max_steps: must be an integer >= 1"),
    ("sft:\n  data: [a.jsonl]\n  learning_rate: .nan\n", "bad.yaml: sft.learning_rate: must be a finite number > 0"),
    ("sft:\n  data: [{path: a.jsonl, wieght: 2}]\n", "bad.yaml: sft.data.0.wieght: unknown key"),
    ("sft:\n  data: [a.jsonl]\n  peft: {r: 0}\n", "bad.yaml: sft.peft.r: must be an integer >= 1, got 0"),
    ("sft:\n  data: [a.jsonl]\n  mixed_precision: no\n", 'quote "no"'),
    ("sft:\n  data: []\n", "bad.yaml: sft.data: no corpus given"),
    ("sft: [1]\n", "bad.yaml: sft: a section is a mapping"),
    ("prepare: [{creates: x}]\n", "bad.yaml: prepare.0.run: required"),
    ("sft: [1\n", "not YAML"),
])
def test_bad_recipes_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
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

        def __init__(self, mixed_precision: str | None = None, log_with: list[str] | None = None, **_: object) -> None:
            seen.append(mixed_precision)
            assert log_with is None  # no trackers unless the recipe names them

    monkeypatch.setattr(accelerate, "Accelerator", Recorder)
    path = tmp_path / "r.yaml"
    path.write_text("model: tiny\nsft:\n  data: [a.jsonl]\n")
    recipe = load_recipe(path)
    SFTTrainer(stage_config(recipe, "sft"), recipe)  # None: `accelerate launch`'s setting stands
    SFTTrainer(stage_config(recipe, "sft", {"mixed_precision": "bf16"}), recipe)
    assert seen == [None, "bf16"]
    with pytest.raises(ConfigError, match="mixed_precision: must be one of no, bf16, fp16, auto, got 'fp8'"):
        stage_config(recipe, "sft", {"mixed_precision": "fp8"})


def test_eval_inherits_only_its_own_keys_and_never_the_training_data(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("model: tiny\nseed: 3\nshots_from: s.jsonl\ndata: [a.jsonl]\neval:\n  n: 5\n")
    recipe = load_recipe(path)
    ev = stage_config(recipe, "eval", {"batch_size": 2})
    assert (ev.data, ev.seed, ev.shots_from, ev.n, ev.batch_size) == (None, 3, "s.jsonl", 5, 2)
    assert stage_config(recipe, "sft").data == [DataSource(path="a.jsonl")]


# Key values of each shipped recipe, pinned: a change to the loader must not change what a recipe means.
KEY_FIELDS = {
    "embedded-quick": (("embedded", "float32", None, 6, "grammar", 1e-4, 1.0, None, 4, 2,
                        [("runs/embedded-quick/data/synthetic.jsonl", 1.0)]), ("dr_grpo", 6, 2e-5, 0.2, "sft"),
                       (30, 6, 0, 3, True)),
    "embedded": (("embedded", "auto", 32, 0, "none", 1e-4, 0.57, None, 4, 4, [("runs/data/gsm8k-train.jsonl", 1.0)]),
                 ("dr_grpo", 40, 2e-5, 0.2, "sft"), (100, 32, 0, 3, False)),
    "embedded-more": (("embedded", "auto", 32, 0, "none", 2e-4, 1.0, 300, 4, 4,
                       [("runs/data/gsm8k-train.jsonl", 1.0), ("runs/data/corpus-8k.jsonl", 1.0)]),
                      ("dr_grpo", 40, 2e-5, 0.2, "sft"), (100, 32, 0, 3, False)),
    "embedded-stage3": (("embedded", "auto", 32, 0, "none", 1e-4, 1.0, 360, 4, 4,
                         [("runs/data/gsm8k-train.jsonl", 1.0), ("runs/data/corpus-8k.jsonl", 1.0)]),
                        ("dr_grpo", 40, 2e-5, 0.2, "sft"), (100, 32, 0, 3, False)),
    "embedded-meaning": (("embedded", "auto", 32, 0, "none", 1e-4, 1.0, 600, 4, 4,
                          [("runs/data2/gsm8k-train.jsonl", 1.0), ("runs/data2/corpus-12k.jsonl", 1.0)]),
                         ("dr_grpo", 40, 2e-5, 0.2, "sft"), (300, 32, 0, 3, False)),
    "embedded-compact": (("embedded", "auto", 32, 0, "none", 1e-4, 1.0, 600, 4, 4,
                          [("runs/data2/gsm8k-train.jsonl", 1.0), ("runs/data2/corpus-12k.jsonl", 1.0)]),
                         ("dr_grpo", 40, 2e-5, 0.2, "sft"), (300, 32, 0, 3, False)),
    **{name: ((model, "float32", None, 6, "full", 5e-5, 1.0, None, 8, 2, [(f"runs/{name}/data/synthetic.jsonl", 1.0)]),
              ("grpo", 20, 1e-5, 0.2, "sft"), (30, 8, 0, 3, True))
       for name, model in (("study-llama-3.2-1b", "meta-llama/Llama-3.2-1B"),
                           ("study-llama-3.2-1b-instruct", "meta-llama/Llama-3.2-1B-Instruct"),
                           ("study-llama-3.2-3b-instruct", "meta-llama/Llama-3.2-3B-Instruct"))},
}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipes_keep_their_values(path: Path) -> None:
    recipe = load_recipe(path)
    s, r, e = (stage_config(recipe, stage) for stage in ("sft", "rl", "eval"))
    got = ((s.model, s.dtype, s.peft.r if s.peft else None, s.unfreeze_layers, s.train_lm_head, s.learning_rate,
            s.num_train_epochs, s.max_steps, s.per_device_train_batch_size, s.gradient_accumulation_steps,
            [(d.path, d.weight) for d in s.data]),
           (r.loss_type, r.max_steps, r.learning_rate, r.epsilon_high, r.init),
           (e.n, e.batch_size, e.shots, e.base_shots, e.free))
    assert got == KEY_FIELDS[path.stem]


def test_the_shipped_training_json_reads_back_as_its_recipe(tmp_path: Path) -> None:
    """The shipped adapter's training.json: its recorded config reads back as recorded, and the recipe
    it records (the file as it was at training time) gives that config again."""
    meta = json.loads((ROOT / "weights" / "shipped" / "training.json").read_text())
    again = to_dict(checked(SFTConfig, meta["config"]))
    # every recorded key reads back as recorded (keys added since take their defaults)
    assert {k: again[k] for k in meta["config"]} == meta["config"]
    recorded = tmp_path / "recipe.yaml"
    recorded.write_text(yaml.safe_dump(meta["recipe"]))
    from_recipe = to_dict(stage_config(load_recipe(recorded), "sft"))
    moved = {"tensorboard"}  # its default went from true (where installed) to false with report_to
    assert {k: from_recipe[k] for k in meta["config"] if k not in moved} == \
        {k: v for k, v in meta["config"].items() if k not in moved}


def test_every_setting_has_help_text() -> None:
    for cls in (SFTConfig, RLConfig, EvalSettings, PeftSettings, DataSource):
        missing = [name for name, field in cls.model_fields.items() if not field.description]
        assert not missing, f"{cls.__name__}: {missing}"


def test_one_eval_settings_class_with_one_default_batch_size(tmp_path: Path) -> None:
    from tracelang.evaluation.runner import EvalConfig

    path = tmp_path / "r.yaml"
    path.write_text("model: tiny\n")
    ev = stage_config(load_recipe(path), "eval")
    assert (ev.batch_size, ev.seed, ev.max_new_tokens) == (EvalConfig.batch_size, EvalConfig.seed,
                                                           EvalConfig.max_new_tokens) == (32, 42, 320)
    run = ev.run_config(label="sft-step-3", constrain=True, shots=0, prompt_version="v", dtype="bfloat16")
    assert (run.model, run.split, run.n, run.dtype, run.shots_from, run.batch_size) == \
        ("sft-step-3", "dev", 50, "bfloat16", None, 32)


def test_overrides_reach_list_items_and_refuse_missing_ones(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("model: tiny\nsft:\n  data: [a.jsonl, {path: b.jsonl, weight: 2}]\n")
    recipe = load_recipe(path)
    sft = stage_config(recipe, "sft", parse_overrides(["data.0.weight=0.5", "data.1.path=c.jsonl", "peft.r=4"]))
    assert sft.data == [DataSource(path="a.jsonl", weight=0.5), DataSource(path="c.jsonl", weight=2.0)]
    assert sft.peft == PeftSettings(r=4) and sft.unfreeze_layers == 0
    with pytest.raises(ConfigError, match="cannot reach `data.2`"):
        stage_config(recipe, "sft", parse_overrides(["data.2.weight=1"]))


def test_each_stage_is_named_once_and_its_trainer_registers_under_it() -> None:
    from tracelang.training import config, rl, sft, stages  # noqa: F401  (the trainers register as they load)
    from tracelang.training.commands import STAGES, _split_overrides
    from tracelang.training.stage import TRAINERS, Stage

    assert tuple(config.STAGE_SETTINGS) == tuple(stages.STAGES)
    assert set(TRAINERS) == set(stages.STAGES)  # registered as imported: rl before sft when a walk imports both
    assert ("base", *stages.STAGES) == STAGES
    assert set(stages.SECTIONS) == {name for name in config.Recipe.model_fields
                                    if name not in ("name", "description", "prepare")}
    assert _split_overrides(["seed=3", "rl.seed=4"]) == {"sft": {"seed": 3}, "rl": {"seed": 4}, "eval": {}}
    with pytest.raises(TypeError, match="'distill' is not a stage"):
        type("Distill", (Stage,), {"name": "distill"})
    assert "distill" not in TRAINERS


def test_mixed_precision_auto_follows_the_hardware(monkeypatch) -> None:
    import torch

    from tracelang.training import stage

    cfg = checked(SFTConfig, {"data": ["x.jsonl"], "mixed_precision": "auto"})
    assert cfg.mixed_precision == "auto"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for native, expected in ((True, "bf16"), (False, "no")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda n=native: n, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
        assert stage.mixed_precision("auto") == expected
    assert stage.mixed_precision("bf16") == "bf16" and stage.mixed_precision(None) is None
