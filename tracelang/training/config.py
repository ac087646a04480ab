"""Training configurations (TRL-style dataclasses) and recipes.

A recipe is one YAML file: top-level keys are defaults shared by every stage (``model``, ``seed``,
``output_dir``, ...), and the ``sft``, ``rl`` and ``eval`` sections configure each stage; a
section's keys win over the top level, and ``--set key=value`` on the command line wins over both.
Unknown keys are errors (a typo must not silently train with a default).

YAML, not TOML: the issue's interface is ``--config RECIPE.yaml``, accelerate's own launch configs
(``training/accelerate/*.yaml``) are YAML, and PyYAML is already installed as a dependency of
accelerate; we list it as a runtime dependency rather than lean on that.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HEAD_MODES = ("none", "full", "grammar")
LOSS_VOCABS = ("full", "grammar", "constrained")
LOSS_TYPES = ("grpo", "dr_grpo", "dapo")
SCHEDULES = ("constant", "constant_with_warmup", "linear", "cosine")


class ConfigError(ValueError):
    """A recipe or override that cannot be used; the message names the file and key."""


@dataclass
class DataSource:
    """One corpus (JSONL, the shared record schema) and how often each record is used per epoch:
    weight 2 = every record twice, 0.5 = a seeded half of them (a fresh half each epoch)."""

    path: str
    weight: float = 1.0


LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DTYPES = ("float32", "bfloat16", "auto")


@dataclass
class PeftSettings:
    """LoRA adapters through ``peft`` (the recipe's ``peft:`` section), instead of unfreezing whole
    layers. Saved as ``adapter_config.json`` + ``adapter_model.safetensors``, which
    ``peft.PeftModel.from_pretrained`` loads."""

    r: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGETS))
    # the last N decoder layers get adapters (None: all); the layers before them are a frozen
    # prefix whose output is cached across epochs
    layers: int | None = None

    def validate(self) -> None:
        if self.r < 1:
            raise ConfigError(f"peft.r: {self.r} must be >= 1")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"peft.lora_dropout: {self.lora_dropout:g} must be in [0, 1)")
        if not self.lora_alpha > 0:
            raise ConfigError(f"peft.lora_alpha: {self.lora_alpha:g} must be > 0")
        if not self.target_modules:
            raise ConfigError("peft.target_modules: name at least one module")
        if self.layers is not None and self.layers < 1:
            raise ConfigError(f"peft.layers: {self.layers} must be >= 1 (or null for all)")


@dataclass
class TrainConfig:
    """What SFT and RL share: the model, which parameters train, the loss, the optimiser, logging."""

    model: str = "embedded"  # `embedded`, `tiny`, a local directory or a hub id
    seed: int = 0  # one seed for data order, sampling and initialisation
    output_dir: str = "runs/train"
    # parameters that train: LoRA adapters (`peft`), or whole layers (`unfreeze_layers`)
    peft: PeftSettings | None = None
    unfreeze_layers: int | None = None  # the last N decoder layers (default 6; 0 with peft)
    # none | full (the whole lm_head: the shared embedding matrix when tied) | grammar (see partial.py);
    # default grammar, none with peft
    train_lm_head: str | None = None
    # weights of the frozen model; trained parameters stay float32. bfloat16 (auto: where the CPU
    # computes it natively) needs peft: whole unfrozen layers would train in bfloat16
    dtype: str = "float32"
    init: str | None = None  # start from this checkpoint or adapter (fresh optimiser), e.g. the shipped one
    prompt_instructions: bool = True  # the prompt's instruction preamble (false: the bare prompt)
    train_final_norm: bool = True  # the norm after the last layer trains with the unfrozen layers
    # the loss
    loss_vocab: str = "constrained"  # full | grammar (tokens the grammar can emit) | constrained (the decoder's mask)
    constraint_levels: str = "all"  # decoder levels for `constrained` masks and RL rollouts
    shots: int = 0  # worked examples in the prompt (0-shot for training unless the recipe says otherwise)
    shots_from: str | None = None  # corpus to draw them from (default corpora/shots.jsonl)
    # the optimiser (AdamW) and schedule
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.0
    mixed_precision: str | None = None  # no | bf16 | fp16; None: what accelerate is configured with
    # logging and checkpoints
    logging_steps: int = 1
    save_steps: int = 50  # a resumable checkpoint every K optimiser steps (and at the end)
    save_total_limit: int = 2  # step checkpoints kept (the final one is always kept)
    # experiment trackers through accelerate (tensorboard, wandb, mlflow, trackio, ...); none by default.
    # metrics.jsonl is always written
    report_to: list[str] = field(default_factory=list)
    tensorboard: bool = False  # the older switch: true adds tensorboard to report_to
    progress: bool = True
    # evaluation on the dev split (settings in the recipe's `eval` section)
    eval_steps: int | None = None  # every K optimiser steps (None: not during training)
    eval_at_end: bool = False

    def validate(self) -> None:
        if self.unfreeze_layers is None:
            self.unfreeze_layers = 0 if self.peft is not None else 6
        if self.train_lm_head is None:
            self.train_lm_head = "none" if self.peft is not None else "grammar"
        if self.peft is not None:
            self.peft.validate()
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype: {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.dtype != "float32" and (self.peft is None or self.unfreeze_layers or self.train_lm_head != "none"):
            raise ConfigError(f"dtype: {self.dtype} needs peft adapters as the only trained parameters "
                              "(unfreeze_layers: 0, train_lm_head: none); whole layers train in float32")
        if self.train_lm_head not in HEAD_MODES:
            raise ConfigError(f"train_lm_head: {self.train_lm_head!r} is not one of {', '.join(HEAD_MODES)}")
        if self.loss_vocab not in LOSS_VOCABS:
            raise ConfigError(f"loss_vocab: {self.loss_vocab!r} is not one of {', '.join(LOSS_VOCABS)}")
        if self.lr_scheduler_type not in SCHEDULES:
            raise ConfigError(f"lr_scheduler_type: {self.lr_scheduler_type!r} is not one of {', '.join(SCHEDULES)}")
        if self.unfreeze_layers < 0:
            raise ConfigError("unfreeze_layers: must be >= 0")
        if self.unfreeze_layers == 0 and self.train_lm_head == "none" and self.peft is None:
            raise ConfigError("nothing to train: unfreeze_layers is 0 and train_lm_head is none")
        if self.mixed_precision not in (None, "no", "bf16", "fp16"):
            raise ConfigError(f"mixed_precision: {self.mixed_precision!r} is not no, bf16 or fp16")
        if self.logging_steps < 1:
            raise ConfigError("logging_steps: must be >= 1")
        from .trackers import check

        try:
            self.report_to = check([*self.report_to, *(["tensorboard"] if self.tensorboard else [])])
        except ValueError as err:
            raise ConfigError(str(err)) from None
        from ..decoding.guide import Levels  # lazily: the decoder is not needed to read a recipe

        try:
            Levels.parse(self.constraint_levels)
        except ValueError as err:
            raise ConfigError(f"constraint_levels: {err}") from None


def _check_weights(data: list[DataSource]) -> None:
    for i, src in enumerate(data):
        if src.weight < 0:
            raise ConfigError(f"data.{i}.weight: {src.weight:g} is negative ({src.path})")


@dataclass
class SFTConfig(TrainConfig):
    data: list[DataSource] = field(default_factory=list)
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    num_train_epochs: float = 1.0
    max_steps: int | None = None  # overrides the epochs when set
    max_length: int = 1024  # prompt + target tokens; longer examples are skipped and counted
    cache_prefix: bool = True  # keep the frozen layers' output per example across epochs
    mask_cache: bool = True  # keep the constrained loss's decoder masks on disk (cache_dir/masks)

    def validate(self) -> None:
        super().validate()
        if not self.data:
            raise ConfigError("sft.data: no corpus given")
        _check_weights(self.data)
        if self.per_device_train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ConfigError("batch size and gradient accumulation must be >= 1")


@dataclass
class RLConfig(TrainConfig):
    init: str | None = "sft"  # `sft` (this recipe's SFT result), a checkpoint directory, or null (the model)
    data: list[DataSource] = field(default_factory=list)  # corpora whose questions and answers are prompts
    gsm8k_train: str | None = None  # GSM-8K train.jsonl: its problems (not dev, never test) are prompts too
    gsm8k_weight: float = 1.0
    max_steps: int = 20  # RL iterations (one optimiser update of the policy each, times num_iterations)
    prompts_per_step: int = 4
    num_generations: int = 8  # G: samples per prompt
    num_iterations: int = 1  # mu: updates on each batch of rollouts (>1 makes the clipping bite)
    temperature: float = 1.0
    max_new_tokens: int = 256
    loss_type: str = "grpo"  # grpo | dr_grpo | dapo
    epsilon: float = 0.2
    epsilon_high: float | None = None  # DAPO's clip-higher (default 0.28 for dapo, epsilon otherwise)
    beta: float = 0.0  # KL to the starting model (k3 estimator); 0 turns the reference off
    reward_correct: float = 1.0
    reward_valid: float = 0.2  # a valid trace (checks and runs) with a wrong answer
    reward_parsed: float = 0.05  # parses but does not check
    reward_invalid: float = 0.0
    reward_warning: float = 0.0  # taken off a valid trace's reward per warning (e.g. W701 ungrounded)
    cache_prefix: bool = True  # reuse the frozen layers' output from the rollout (never recomputed)

    def validate(self) -> None:
        super().validate()
        if self.loss_type not in LOSS_TYPES:
            raise ConfigError(f"loss_type: {self.loss_type!r} is not one of {', '.join(LOSS_TYPES)}")
        if not self.data and not self.gsm8k_train:
            raise ConfigError("rl: no prompts: give `data` corpora and/or `gsm8k_train`")
        if self.num_generations < 2:
            raise ConfigError("num_generations: GRPO needs at least 2 samples per prompt")
        if self.temperature <= 0:
            raise ConfigError(f"temperature: {self.temperature:g} must be > 0 (the loss divides by it)")
        _check_weights(self.data)
        if self.gsm8k_weight < 0:
            raise ConfigError(f"gsm8k_weight: {self.gsm8k_weight:g} is negative")
        if self.epsilon_high is None:
            self.epsilon_high = 0.28 if self.loss_type == "dapo" else self.epsilon


@dataclass
class EvalSettings:
    """Dev-split evaluation (the evaluation harness) of the base model and of each stage's result."""

    n: int = 50  # a seeded sample of the 500 dev problems
    seed: int = 42
    shots: int = 0  # trained models are prompted as they were trained (0-shot)
    base_shots: int = 3  # the untrained model gets worked examples
    shots_from: str | None = None  # corpus to draw them from (default corpora/shots.jsonl)
    constrained: bool = True
    free: bool = True
    batch_size: int = 8
    max_new_tokens: int = 320
    data: str | None = None  # GSM-8K directory (default ../shared/data/gsm8k)


_SECTION_TYPES: dict[str, type] = {"sft": SFTConfig, "rl": RLConfig, "eval": EvalSettings}
# top-level keys a section has but must not inherit: a top-level `data` is the training corpora,
# `eval.data` the GSM-8K directory
_NOT_INHERITED: dict[str, set[str]] = {"eval": {"data"}}


def load_recipe(path: str | Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of keys to values")
    data["__path__"] = str(path)
    return data


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values read as YAML scalars (``3``, ``1e-4``, ``true``, ``[a, b]``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not a YAML scalar") from None
    return out


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is DataSource:
        if isinstance(value, str):
            return DataSource(value)
        if isinstance(value, dict):
            unknown = set(value) - {"path", "weight"}
            if unknown or "path" not in value:
                raise ConfigError(f"{where}: a data source is {{path, weight}}; got keys {sorted(value)}")
            return DataSource(str(value["path"]), float(_coerce(value.get("weight", 1.0), float, f"{where}.weight")))
        raise ConfigError(f"{where}: a data source is a path or {{path, weight}}")
    if hint is PeftSettings:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of peft settings, got {value!r}")
        return _build(PeftSettings, value, where)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML 1.1 reads `1e-4` as a string
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown key `{key}`")
        kwargs[key] = _coerce(value, hints[key], f"{where}: {key}")
    try:
        obj = cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None
    if hasattr(obj, "validate"):
        try:
            obj.validate()
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
    return obj


def _apply_override(values: dict[str, Any], key: str, value: Any) -> None:
    """``a=1`` sets a key; ``data.0.weight=2`` reaches into lists and mappings."""
    parts = key.split(".")
    target: Any = values
    for i, part in enumerate(parts[:-1]):
        nxt = target[int(part)] if isinstance(target, list) and part.isdigit() else (
            target.setdefault(part, {}) if isinstance(target, dict) else None)
        if nxt is None:
            raise ConfigError(f"--set {key}: cannot reach `{'.'.join(parts[:i + 1])}`")
        if isinstance(nxt, str) and parts[i + 1] in ("path", "weight"):  # a bare path as {path, weight}
            nxt = {"path": nxt}
            if isinstance(target, list):
                target[int(part)] = nxt
            else:
                target[part] = nxt
        target = nxt
    last = parts[-1]
    if isinstance(target, list) and last.isdigit():
        target[int(last)] = value
    elif isinstance(target, dict):
        target[last] = value
    else:
        raise ConfigError(f"--set {key}: cannot set `{last}` here")


def stage_config(recipe: dict[str, Any], stage: str, overrides: dict[str, Any] | None = None) -> Any:
    """The dataclass of one stage: top-level defaults, then the section, then the overrides."""
    cls = _SECTION_TYPES[stage]
    where = f"{recipe.get('__path__', 'recipe')} [{stage}]"
    names = {f.name for f in dataclasses.fields(cls)}
    known_top = {"name", "description", "prepare", "sft", "rl", "eval", "__path__"}
    for f in _SECTION_TYPES.values():
        known_top |= {x.name for x in dataclasses.fields(f)}
    unknown = sorted(set(recipe) - known_top)
    if unknown:
        raise ConfigError(f"{recipe.get('__path__', 'recipe')}: unknown top-level key `{unknown[0]}`")
    section = recipe.get(stage) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: the section must be a mapping")
    skip = _NOT_INHERITED.get(stage, set()) | set(_SECTION_TYPES)
    values = {k: v for k, v in recipe.items() if k in names and k not in skip}
    values.update(section)
    values = yaml.safe_load(yaml.safe_dump(values))  # a deep copy, overrides must not touch the recipe
    for key, value in (overrides or {}).items():
        _apply_override(values, key, value)
    return _build(cls, values, where)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
