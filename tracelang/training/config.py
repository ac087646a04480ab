"""Training recipes, as typed settings (pydantic models whose field descriptions are the help text).

A recipe is one YAML file: top-level keys are defaults shared by every stage (``model``, ``seed``,
``output_dir``, ...), and the ``sft``, ``rl`` and ``eval`` sections configure each stage; a
section's keys win over the top level, and ``--set key=value`` on the command line wins over both.
Unknown keys are errors (a typo must not silently train with a default). A bad value is one line
naming the file and the key, before any model loads:
``recipe.yaml: sft.learning_rate: must be a finite number > 0, got nan``.

YAML, not TOML: the interface is ``--config RECIPE.yaml``, accelerate's own launch configs
(``training/accelerate/*.yaml``) are YAML, and PyYAML is a declared runtime dependency.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import TracelangError, UsageError
from ..evaluation.runner import EvalConfig
from ..fileio import InputError, read_text
from .stages import SECTIONS

HeadMode = Literal["none", "full", "grammar"]
Surface = Literal["yaml", "compact"]
LossVocab = Literal["full", "grammar", "constrained"]
LossType = Literal["grpo", "dr_grpo", "dapo"]
Schedule = Literal["constant", "constant_with_warmup", "linear", "cosine"]
WeightsDtype = Literal["float32", "bfloat16", "auto"]
MixedPrecision = Literal["no", "bf16", "fp16", "auto"]
HeadDtype = Literal["float32", "auto"]
HEAD_MODES, LOSS_VOCABS, LOSS_TYPES, SCHEDULES, DTYPES = (get_args(t) for t in (HeadMode, LossVocab, LossType,
                                                                                 Schedule, WeightsDtype))
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class ConfigError(UsageError, ValueError):
    """A recipe or override that cannot be used; the message names the file and key."""


class Invalid(TracelangError, ValueError):
    """A problem a whole-model check finds, pinned to the key it is about (for the one-line message)."""

    def __init__(self, key: str, problem: str):
        super().__init__(problem)
        self.key, self.problem = key, problem


def shown(value: Any, limit: int = 60, depth: int = 2) -> str:
    """A bounded repr for error messages: a value from a recipe may be an integer of 5,000 digits
    (whose repr Python refuses) or an alias bomb of 10⁹ items (whose repr never ends)."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        text = repr(value)
    elif isinstance(value, int):
        bits = value.bit_length()
        text = repr(value) if bits < 200 else f"<an integer of about {int(bits * 0.30103) + 1} digits>"
    elif isinstance(value, str):
        text = repr(value[:limit])
    elif isinstance(value, (list, tuple, dict)):
        if depth <= 0 or len(value) > 4:
            kind = "mapping" if isinstance(value, dict) else "list"
            return f"<a {kind} of {len(value)} items>"
        inner = (f"{shown(k, limit, 0)}: {shown(v, limit, depth - 1)}" for k, v in value.items()) \
            if isinstance(value, dict) else (shown(v, limit, depth - 1) for v in value)
        text = ("{%s}" if isinstance(value, dict) else "[%s]") % ", ".join(inner)
    else:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ---------------------------------------------------------------- value types
# The recipe's own coercion rules, stricter than pydantic's lax mode where that would hide a typo:
# `true` is not an integer, `1` is not a boolean, "5" (a quoted number) is not a count.

def _bounds(ge: float | None, gt: float | None, lt: float | None, le: float | None) -> str:
    parts = [f"{op} {v}" for op, v in ((">=", ge), (">", gt), ("<", lt), ("<=", le)) if v is not None]
    return " " + " and ".join(parts) if parts else ""


def _within(x: float, ge: float | None, gt: float | None, lt: float | None, le: float | None) -> bool:
    return ((ge is None or x >= ge) and (gt is None or x > gt) and (lt is None or x < lt)
            and (le is None or x <= le))


_HUGE = 2**63  # no count, step or seed reaches this; past it, a value is a typo (or hostile)


def _integer(ge: int | None = None, lt: int | None = None, optional: bool = False) -> Any:
    need = f"must be an integer{_bounds(ge, None, lt, None)}"

    def check(value: Any) -> int | None:
        if value is None and optional:
            return None
        ok = not isinstance(value, bool) and (isinstance(value, int) or (isinstance(value, float)
                                                                         and value.is_integer()))
        if not ok or not _within(int(value), ge, None, lt, None) or abs(int(value)) >= _HUGE:
            raise ValueError(f"{need}{' (or null)' if optional else ''}, got {shown(value)}")
        return int(value)

    return Annotated[int | None if optional else int, BeforeValidator(check)]


def _number(ge: float | None = None, gt: float | None = None, lt: float | None = None, le: float | None = None,
            optional: bool = False) -> Any:
    need = f"must be a finite number{_bounds(ge, gt, lt, le)}"

    def check(value: Any) -> float | None:
        if value is None and optional:
            return None
        x = math.nan
        if isinstance(value, int | float) and not isinstance(value, bool):
            with contextlib.suppress(OverflowError):  # an integer of 400 digits is no float
                x = float(value)
        elif isinstance(value, str) and len(value) < 100:  # YAML 1.1 reads `1e-4` (no dot) as a string
            with contextlib.suppress(ValueError):
                x = float(value)
        if not (math.isfinite(x) and _within(x, ge, gt, lt, le)):
            raise ValueError(f"{need}{' (or null)' if optional else ''}, got {shown(value)}")
        return x

    return Annotated[float | None if optional else float, BeforeValidator(check)]


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {shown(value)}")
    return value


def _text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # `model: 1` or a numeric path part
    raise ValueError(f"must be a string, got {shown(value)}")


def _one_of(kind: Any) -> Callable[[Any], Any]:
    choices = get_args(kind)

    def check(value: Any) -> Any:
        if value is not None and value not in choices:
            hint = ' (quote "no": YAML reads a bare no as false)' if value is False and "no" in choices else ""
            raise ValueError(f"must be one of {', '.join(choices)}, got {shown(value)}{hint}")
        return value

    return check


Count = _integer(ge=1)
MaybeCount = _integer(ge=1, optional=True)
Natural = _integer(ge=0)
MaybeNatural = _integer(ge=0, optional=True)
Seed = _integer(ge=0, lt=2**32)  # numpy's seeds are 32-bit
GroupSize = _integer(ge=2)  # GRPO's group baseline needs two samples
Positive = _number(gt=0)
NonNegative = _number(ge=0)
MaybeNonNegative = _number(ge=0, optional=True)
Fraction = _number(ge=0, lt=1)
Ratio = _number(ge=0, le=1)
Real = _number()
Flag = Annotated[bool, BeforeValidator(_flag)]
Text = Annotated[str, BeforeValidator(_text)]
MaybeText = Annotated[str | None, BeforeValidator(_text)]


class Settings(BaseModel):
    """A recipe section: unknown keys are errors, values are checked when it is built."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    def validate(self) -> None:  # type: ignore[override]  # pydantic's is a deprecated v1 classmethod
        """Check the settings again, as they are now: construction checked them, in-place edits are not."""
        checked(type(self), self.model_dump())


S = TypeVar("S", bound=BaseModel)


def describe(err: ValidationError) -> str:
    """The first problem as ``key.path: what is wrong``."""
    problems = err.errors(include_url=False)
    first = problems[0]
    loc = [str(part) for part in first["loc"]]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, Invalid):
        loc.append(cause.key)
        text = cause.problem
    elif isinstance(cause, ValueError):
        text = str(cause)
    elif first["type"] == "extra_forbidden":
        text = "unknown key"
    elif first["type"] == "missing":
        text = "required"
    elif first["type"] in ("model_type", "dict_type", "model_attributes_type"):
        text = f"must be a mapping, got {shown(first['input'])}"
    elif first["type"] == "list_type":
        text = f"must be a list, got {shown(first['input'])}"
    else:
        text = f"{first['msg']}, got {shown(first['input'])}"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{'.'.join(loc)}: {text}{more}" if loc else f"{text}{more}"


def checked(cls: type[S], values: dict[str, Any], where: str = "") -> S:
    """``cls`` built from ``values``; a bad value is a ``ConfigError`` prefixed with ``where``."""
    try:
        return cls.model_validate(values)
    except ValidationError as err:
        raise ConfigError(f"{where}{describe(err)}") from None


# ---------------------------------------------------------------- the sections

class DataSource(Settings):
    """One corpus (JSONL, the shared record schema) and how often each record is used per epoch."""

    path: Text = Field(description="The corpus file (JSON Lines, the shared record schema).")
    weight: NonNegative = Field(1.0, description="Uses per record per epoch: 2 = every record twice, 0.5 = a "
                                "seeded half of them (a fresh half each epoch), 0 = left out.")

    @model_validator(mode="before")
    @classmethod
    def _bare_path(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"path": value}
        if not isinstance(value, dict | DataSource):
            raise ValueError(f"a data source is a path or {{path, weight}}, got {shown(value)}")
        return value


class PeftSettings(Settings):
    """LoRA adapters through ``peft`` (the recipe's ``peft:`` section), instead of unfreezing whole
    layers. Saved as ``adapter_config.json`` + ``adapter_model.safetensors``, which
    ``peft.PeftModel.from_pretrained`` loads."""

    r: Count = Field(16, description="Adapter rank.")
    lora_alpha: Positive = Field(32.0, description="LoRA scaling numerator (the update is scaled by alpha / r).")
    lora_dropout: Fraction = Field(0.0, description="Dropout on the adapters' input, in [0, 1).")
    target_modules: list[Text] = Field(default_factory=lambda: list(LORA_TARGETS), min_length=1,
                                       description="Module names that get adapters (at least one).")
    layers: MaybeCount = Field(None, description="The last N decoder layers get adapters (null: all); the layers "
                               "before them are a frozen prefix whose output is cached across epochs.")


class TrainConfig(Settings):
    """What SFT and RL share: the model, which parameters train, the loss, the optimiser, logging."""

    model: Text = Field("embedded", description="`embedded`, `tiny`, a local directory or a hub id.")
    seed: Seed = Field(0, description="One seed for data order, sampling and initialisation.")
    output_dir: Text = Field("runs/train", description="The run directory; each stage writes OUTPUT_DIR/<stage>.")
    peft: PeftSettings | None = Field(None, description="LoRA adapters instead of whole layers.")
    unfreeze_layers: MaybeNatural = Field(None, description="The last N decoder layers train whole (default 6; "
                                          "0 with peft).")
    train_lm_head: Annotated[HeadMode | None, BeforeValidator(_one_of(HeadMode))] = Field(
        None, description="none | full (the whole lm_head: the shared embedding matrix when tied) | grammar (an "
        "untied copy of the rows the grammar can emit, see partial.py); default grammar, none with peft.")
    dtype: Annotated[WeightsDtype, BeforeValidator(_one_of(WeightsDtype))] = Field(
        "float32", description="The frozen weights; trained parameters stay float32. bfloat16 (auto: where the "
        "hardware computes it natively) needs peft: whole unfrozen layers would train in bfloat16.")
    init: MaybeText = Field(None, description="Start from this checkpoint or adapter directory, or `shipped`, "
                            "with a fresh optimiser.")
    prompt_instructions: Flag = Field(True, description="The prompt's instruction preamble (false: the bare "
                                      "prompt).")
    surface: Annotated[Surface, BeforeValidator(_one_of(Surface))] = Field(
        "yaml", description="The surface the model reads and writes traces in: yaml (the canonical form) or "
        "compact (the same IR in about half the tokens). The prompt version records it.")
    train_final_norm: Flag = Field(True, description="The norm after the last layer trains with the unfrozen "
                                   "layers.")
    loss_vocab: Annotated[LossVocab, BeforeValidator(_one_of(LossVocab))] = Field(
        "constrained", description="SFT's normalisation: full | grammar (tokens the grammar can emit) | "
        "constrained (the decoder's mask at each position).")
    head_dtype: Annotated[HeadDtype, BeforeValidator(_one_of(HeadDtype))] = Field(
        "float32", description="float32: the head and the loss in float32, outside autocast; auto: in the compute "
        "dtype (faster under bf16, but bf16 logits are too coarse once the loss is small: spec/training.md).")
    constraint_levels: Text = Field("all", description="Decoder levels for `constrained` masks and RL rollouts: "
                                    "level names (decoding/levels.py), comma-separated, or all or none.")
    shots: Natural = Field(0, description="Worked examples in the training prompt.")
    shots_from: MaybeText = Field(None, description="The corpus the shots are drawn from (null: "
                                  "corpora/shots.jsonl).")
    learning_rate: Positive = Field(1e-4, description="AdamW's learning rate.")
    weight_decay: NonNegative = Field(0.0, description="AdamW's weight decay, on matrices only.")
    adam_beta1: Fraction = Field(0.9, description="AdamW's beta1, in [0, 1).")
    adam_beta2: Fraction = Field(0.999, description="AdamW's beta2, in [0, 1).")
    adam_epsilon: Positive = Field(1e-8, description="AdamW's epsilon.")
    max_grad_norm: NonNegative = Field(1.0, description="Gradient clipping over the trained parameters; 0 turns "
                                       "it off.")
    lr_scheduler_type: Annotated[Schedule, BeforeValidator(_one_of(Schedule))] = Field(
        "cosine", description="transformers' get_scheduler name.")
    warmup_ratio: Ratio = Field(0.0, description="Warmup steps = ceil(ratio x optimiser steps).")
    mixed_precision: Annotated[MixedPrecision | None, BeforeValidator(_one_of(MixedPrecision))] = Field(
        None, description="no | bf16 | fp16 for the Accelerator; auto: bf16 where the hardware computes it "
        "natively, else no (without AVX512-BF16/AMX a CPU runs bf16 matmuls through a slow fallback); null: what "
        "accelerate is configured with (quote \"no\": YAML reads a bare no as false).")
    logging_steps: Count = Field(1, description="A metrics row every K optimiser steps (and at the last).")
    save_steps: Natural = Field(50, description="A resumable checkpoint every K optimiser steps (0: only at the "
                                "end).")
    save_total_limit: Natural = Field(2, description="Step checkpoints kept (0: all); `final` is never pruned.")
    report_to: list[Text] = Field(default_factory=list, description="Experiment trackers through accelerate "
                                  "(tensorboard, wandb, mlflow, trackio, ...); none by default. metrics.jsonl is "
                                  "always written.")
    tensorboard: Flag = Field(False, description="The older switch: true adds tensorboard to report_to when "
                              "it is installed (as it always did, so recorded configs still load without it).")
    progress: Flag = Field(True, description="Progress bars.")
    eval_steps: MaybeNatural = Field(None, description="Dev evaluation every K optimiser steps (null or 0: not "
                                     "during training); settings in the recipe's `eval` section.")
    eval_at_end: Flag = Field(False, description="Dev evaluation at the end of the stage.")

    @field_validator("constraint_levels")
    @classmethod
    def _levels(cls, value: str) -> str:
        from ..decoding.levels import Levels  # lazily: reading a recipe needs no decoder

        Levels.parse(value)  # its ValueError names the unknown levels
        return value

    @model_validator(mode="after")
    def _trackers(self) -> TrainConfig:
        from .trackers import check

        try:
            self.report_to = check(self.report_to, optional=("tensorboard",) if self.tensorboard else ())
        except ValueError as err:
            raise Invalid("report_to", str(err).removeprefix("report_to: ")) from None
        return self

    @model_validator(mode="after")
    def _what_trains(self) -> TrainConfig:
        if self.unfreeze_layers is None:
            self.unfreeze_layers = 0 if self.peft is not None else 6
        if self.train_lm_head is None:
            self.train_lm_head = "none" if self.peft is not None else "grammar"
        if self.dtype != "float32" and (self.peft is None or self.unfreeze_layers or self.train_lm_head != "none"):
            raise Invalid("dtype", f"{self.dtype} needs peft adapters as the only trained parameters "
                          "(unfreeze_layers: 0, train_lm_head: none); whole layers train in float32")
        if self.unfreeze_layers == 0 and self.train_lm_head == "none" and self.peft is None:
            raise Invalid("unfreeze_layers", "nothing to train: unfreeze_layers is 0 and train_lm_head is none")
        return self


class SFTConfig(TrainConfig):
    data: list[DataSource] = Field(default_factory=list, description="Corpora: paths or {path, weight} "
                                   "(required).")
    per_device_train_batch_size: Count = Field(4, description="Examples per micro-batch and process.")
    gradient_accumulation_steps: Count = Field(1, description="Micro-batches per optimiser step.")
    num_train_epochs: Positive = Field(1.0, description="Epochs (may be fractional).")
    max_steps: MaybeCount = Field(None, description="Optimiser steps; overrides the epochs when set.")
    max_length: Count = Field(1024, description="Prompt + target tokens; longer examples are skipped and counted.")
    cache_prefix: Flag = Field(True, description="Keep the frozen layers' output per example across epochs.")
    mask_cache: Flag = Field(True, description="Keep the constrained loss's decoder masks on disk "
                             "(cache_dir/masks).")
    prefix_store: Flag = Field(True, description="With cache_prefix, keep the frozen layers' output on disk too "
                               "(cache_dir/prefix), so a resumed run or a later stage on the same base and split "
                               "starts at the cached speed.")

    @model_validator(mode="after")
    def _has_data(self) -> SFTConfig:
        if not self.data:
            raise Invalid("data", "no corpus given")
        return self


class RLConfig(TrainConfig):
    init: MaybeText = Field("sft", description="`sft` (this recipe's SFT result), a checkpoint directory, or "
                            "null (the plain model).")
    data: list[DataSource] = Field(default_factory=list, description="Corpora whose questions and answers are "
                                   "prompts.")
    gsm8k_train: MaybeText = Field(None, description="GSM-8K train.jsonl: its problems are prompts too (dev "
                                   "excluded, test refused).")
    gsm8k_weight: NonNegative = Field(1.0, description="The mixing weight of gsm8k_train.")
    max_steps: Count = Field(20, description="RL steps (each: rollouts, then num_iterations optimiser updates).")
    prompts_per_step: Count = Field(4, description="Questions per step.")
    num_generations: GroupSize = Field(8, description="G: samples per question (at least 2: the advantage is "
                                       "relative to the group).")
    num_iterations: Count = Field(1, description="mu: updates on each step's rollouts (>1 makes the clipping "
                                  "bite).")
    temperature: Positive = Field(1.0, description="Sampling temperature; the loss divides by it too.")
    max_new_tokens: Count = Field(256, description="Longest rollout; also Dr. GRPO's normaliser.")
    loss_type: Annotated[LossType, BeforeValidator(_one_of(LossType))] = Field("grpo", description="grpo | "
                                                                               "dr_grpo | dapo.")
    epsilon: NonNegative = Field(0.2, description="Lower clip: ratio >= 1 - epsilon.")
    epsilon_high: MaybeNonNegative = Field(None, description="Upper clip: ratio <= 1 + epsilon_high (null: 0.28 "
                                           "for dapo, epsilon otherwise).")
    beta: NonNegative = Field(0.0, description="Weight of the KL to the start-of-RL model (k3); 0 turns the "
                              "reference off.")
    reward_correct: Real = Field(1.0, description="The trace runs to the gold answer.")
    reward_valid: Real = Field(0.2, description="Checks and runs, wrong answer.")
    reward_parsed: Real = Field(0.05, description="Parses, but has an error or no answer.")
    reward_invalid: Real = Field(0.0, description="Does not parse.")
    reward_warning: Real = Field(0.0, description="Taken off a valid trace's reward per warning (e.g. W701).")
    cache_prefix: Flag = Field(True, description="Reuse the frozen layers' output captured during the rollout.")

    @model_validator(mode="after")
    def _has_prompts(self) -> RLConfig:
        if not self.data and not self.gsm8k_train:
            raise Invalid("data", "no prompts: give `data` corpora and/or `gsm8k_train`")
        if self.epsilon_high is None:
            self.epsilon_high = 0.28 if self.loss_type == "dapo" else self.epsilon
        return self


class EvalSettings(Settings):
    """Dev-split evaluation of the base model and of each stage's result. The keys it shares with
    ``tracelang eval`` take that command's defaults (``EvalConfig``): one default for both."""

    n: Count = Field(50, description="A seeded sample of the 500 dev problems.")
    seed: Seed = Field(EvalConfig.seed, description="The sample's seed (and the shots').")
    shots: Natural = Field(0, description="Shots for trained models (prompted as they were trained).")
    base_shots: Natural = Field(3, description="Shots for the untrained model (`train run`'s base stage).")
    shots_from: MaybeText = Field(None, description="The corpus the shots are drawn from (null: "
                                  "corpora/shots.jsonl).")
    constrained: Flag = Field(True, description="Evaluate under the constrained decoder.")
    free: Flag = Field(True, description="Evaluate unconstrained.")
    batch_size: Count = Field(EvalConfig.batch_size, description="Problems decoded together.")
    max_new_tokens: Count = Field(EvalConfig.max_new_tokens, description="Longest trace, in tokens.")
    data: MaybeText = Field(None, description="GSM-8K directory (null: $TRACELANG_GSM8K, then "
                            "../shared/data/gsm8k, then shared/data/gsm8k).")

    def run_config(self, *, label: str, constrain: bool, shots: int, prompt_version: str,
                   dtype: str) -> EvalConfig:
        """The evaluation harness's settings for one run on the dev split (what its config.json records)."""
        return EvalConfig(model=label, split="dev", n=self.n, seed=self.seed, constrain=constrain,
                          batch_size=self.batch_size, shots=shots, shots_from=self.shots_from if shots else None,
                          max_new_tokens=self.max_new_tokens, data_dir=self.data, prompt_version=prompt_version,
                          dtype=dtype)


# each stage's settings (stages.py names the stages; this must cover exactly those, in order)
STAGE_SETTINGS: dict[str, type[TrainConfig]] = {"sft": SFTConfig, "rl": RLConfig}
_STAGES: dict[str, type[Settings]] = {**STAGE_SETTINGS, "eval": EvalSettings}
if tuple(_STAGES) != SECTIONS:
    raise ImportError(f"training/config.py: settings for {tuple(_STAGES)}, but stages.py names {SECTIONS}")
# top-level keys a section has but must not inherit: a top-level `data` is the training corpora,
# `eval.data` the GSM-8K directory
_NOT_INHERITED: dict[str, set[str]] = {"eval": {"data"}}
STAGE_KEYS = frozenset(name for cls in _STAGES.values() for name in cls.model_fields)


# ---------------------------------------------------------------- the recipe

class PrepareStep(Settings):
    """A tracelang command the recipe runs before training when what it creates is missing."""

    creates: Text = Field(description="The path the command creates; the step runs only while it is missing.")
    run: list[Text] = Field(min_length=1, description="The command's arguments, e.g. [gsm8k, import, ...].")


def _section(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"a section is a mapping of keys to values, got {shown(value)}")
    return value


Section = Annotated[dict[str, Any], BeforeValidator(_section)]


class Recipe(BaseModel):
    """A recipe file: stage defaults at the top level, then a section per stage. Stage settings are
    built per stage (``stage_config``), after the overrides; this checks the rest when it loads."""

    model_config = ConfigDict(extra="allow")  # the stage defaults, checked against the stages' keys

    name: MaybeText = Field(None, description="The recipe's name.")
    description: MaybeText = Field(None, description="What the recipe is for.")
    prepare: list[PrepareStep] = Field(default_factory=list, description="Commands that create missing data.")
    sft: Section = Field(default_factory=dict, description="SFT settings (SFTConfig).")
    rl: Section = Field(default_factory=dict, description="RL settings (RLConfig).")
    eval: Section = Field(default_factory=dict, description="Dev-evaluation settings (EvalSettings).")
    _path: str = PrivateAttr("recipe")
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _known_top_level(self) -> Recipe:
        for key in self.model_extra or {}:
            if key not in STAGE_KEYS:
                raise Invalid(key, "unknown key (neither a recipe key nor a stage setting)")
        return self

    @property
    def path(self) -> str:
        """The file it was read from."""
        return self._path

    @property
    def raw(self) -> dict[str, Any]:
        """The mapping as written (what every checkpoint's training.json records)."""
        return self._raw

    def defaults(self) -> dict[str, Any]:
        """The top-level stage settings."""
        return dict(self.model_extra or {})


class _NoAliases(yaml.SafeLoader):
    """YAML without aliases: a recipe needs none, and ``*a`` nine levels deep is 10⁹ items to any
    code that walks the value (an error message's repr, a deep copy, training.json)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "an alias (*name): recipes take none",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


def _yaml(text: str) -> Any:
    """``text`` as YAML without aliases. Python's refusal of an integer over 4,300 digits is a
    ``ValueError`` from inside the loader: it is reported as the YAMLError it is."""
    try:
        return yaml.load(text, Loader=_NoAliases)  # noqa: S506 - a SafeLoader
    except (ValueError, RecursionError) as err:
        raise yaml.YAMLError(f"a value too large or too deep to read ({str(err).split(';')[0]})") from None


def load_recipe(path: str | Path) -> Recipe:
    try:
        text = read_text(path, 1 << 20)
    except InputError as err:
        raise ConfigError(str(err)) from None
    try:
        data = _yaml(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not YAML: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of keys to values")
    recipe = checked(Recipe, data, f"{path}: ")
    recipe._path, recipe._raw = str(path), data
    return recipe


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values read as YAML scalars (``3``, ``1e-4``, ``true``, ``[a, b]``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {shown(item)}: expected key=value")
        try:
            out[key.strip()] = _yaml(value) if value.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {shown(item)}: the value is not a YAML scalar "
                              f"({getattr(err, 'problem', None) or err})") from None
    return out


def _apply_override(values: dict[str, Any], key: str, value: Any) -> None:
    """``a=1`` sets a key; ``data.0.weight=2`` reaches into lists and mappings."""
    parts = key.split(".")
    target: Any = values
    for i, part in enumerate(parts[:-1]):
        if isinstance(target, list) and part.isdigit() and int(part) < len(target):
            nxt = target[int(part)]
        elif isinstance(target, dict):
            nxt = target.setdefault(part, {})
        else:
            raise ConfigError(f"--set {key}: cannot reach `{'.'.join(parts[:i + 1])}`")
        if isinstance(nxt, str) and parts[i + 1] in ("path", "weight"):  # a bare path as {path, weight}
            nxt = {"path": nxt}
            target[int(part) if isinstance(target, list) else part] = nxt
        target = nxt
    last = parts[-1]
    if isinstance(target, list) and last.isdigit() and int(last) < len(target):
        target[int(last)] = value
    elif isinstance(target, dict):
        target[last] = value
    else:
        raise ConfigError(f"--set {key}: cannot set `{last}` here")


def stage_config(recipe: Recipe, stage: str, overrides: dict[str, Any] | None = None) -> Any:
    """The settings of one stage: top-level defaults, then the section, then the overrides."""
    cls = _STAGES[stage]
    skip = _NOT_INHERITED.get(stage, set())
    values = {k: v for k, v in recipe.defaults().items() if k in cls.model_fields and k not in skip}
    values.update(getattr(recipe, stage))
    values = yaml.safe_load(yaml.safe_dump(values))  # a deep copy: the overrides must not touch the recipe
    for key, value in (overrides or {}).items():
        _apply_override(values, key, value)
    return checked(cls, values, f"{recipe.path}: {stage}.")


def to_dict(config: BaseModel) -> dict[str, Any]:
    """What a checkpoint's training.json records as ``config``."""
    return config.model_dump()
