"""What SFT and RL set up the same way: the model and its split, the prompt, the optimiser."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models import LoadedModel, Prompter, adapters
from ..models.loading import load_stacked, resolve_dtype
from ..models.prompt import load_shots
from ..models.trained import chain, read_meta
from ..paths import SHOTS
from .checkpoint import fingerprint
from .config import ConfigError, TrainConfig
from .emittable import emittable_ids
from .masks import MaskTable, Recorder
from .partial import PartialModel, decoder_of


@dataclass
class Setup:
    loaded: LoadedModel
    prompter: Prompter
    pm: PartialModel
    subset_index: np.ndarray  # token id -> index in the grammar subset, -1 outside
    table: MaskTable
    origin: dict[str, Any] = field(default_factory=dict)  # the base model and the checkpoints applied to it
    adapter: Any = None  # the peft model around loaded.model, when LoRA adapters train
    # the checkpoint merged into the base weights last (what a new checkpoint starts from), and the
    # adapter whose weights the live adapters started from (a continued run: self-contained)
    merged_into_base: Path | None = None
    continued_from: Path | None = None

    def recorder(self) -> Recorder:
        return Recorder(self.subset_index, self.table, len(self.loaded.tokenizer))


def prompter_for(cfg: TrainConfig, tokenizer) -> Prompter:
    instructions = getattr(cfg, "prompt_instructions", True)
    if not cfg.shots:
        return Prompter(tokenizer, instructions=instructions, surface=cfg.surface)
    source = Path(cfg.shots_from) if cfg.shots_from else SHOTS
    if not source.is_file():
        raise ConfigError(f"shots: no corpus at {source}")
    return Prompter(tokenizer, load_shots(source, cfg.shots, cfg.seed), instructions=instructions, surface=cfg.surface)


def build(cfg: TrainConfig, init_checkpoint: Path | None = None, device: torch.device | None = None) -> Setup:
    """Load the model (applying ``init_checkpoint`` and what it started from), split it."""
    links = chain(init_checkpoint) if init_checkpoint is not None else []
    if links:
        base = read_meta(links[0]).get("base_model")
        if base != cfg.model:
            raise ConfigError(f"model: {cfg.model!r}, but {init_checkpoint} was trained from {base!r}")
    # An adapter to continue (the last link, when this run trains adapters too) is loaded into the
    # live adapters; everything before it is merged into the base weights.
    resume_adapter = links[-1] if links and cfg.peft is not None and adapters.is_adapter(links[-1]) else None
    merged = links[:-1] if resume_adapter is not None else links
    dtype = cfg.dtype if cfg.peft is not None else "float32"
    if merged:  # the cast after merging goes to what the training device runs (the model loads on the CPU)
        dtype = resolve_dtype(dtype, str(device) if device else None)
    loaded = load_stacked(cfg.model, merged, seed=cfg.seed, dtype=dtype)
    peft_model = None
    if cfg.peft is not None:
        p = cfg.peft
        n = len(decoder_of(loaded.model).layers)
        layers = list(range(n - p.layers, n)) if p.layers is not None and p.layers < n else None
        peft_model = adapters.attach(loaded.model, p.r, p.lora_alpha, p.lora_dropout, p.target_modules, layers)
        if resume_adapter is not None:
            adapters.load_into(peft_model, resume_adapter)
    subset = emittable_ids(loaded.tokenizer, cfg.surface)
    pm = PartialModel(loaded.model, cfg.unfreeze_layers, cfg.train_lm_head, cfg.train_final_norm, subset,
                      adapters=peft_model is not None)
    if cfg.head_dtype == "float32":
        pm.head_dtype = torch.float32
    if device is not None:
        pm.to(device)
    sample = loaded.tokenizer("expert: arithmetic\ntrace:\n", add_special_tokens=False)["input_ids"]
    pm.verify_split(torch.tensor([sample], device=device))
    index = pm.subset_index.cpu().numpy()
    origin = {"base_model": cfg.model, "init": [{"path": str(link), "sha256": fingerprint(link)} for link in links]}
    return Setup(loaded, prompter_for(cfg, loaded.tokenizer), pm, index, MaskTable(len(pm.subset)), origin,
                 peft_model, merged[-1] if merged else None, resume_adapter)


def optimizer_for(cfg: TrainConfig, pm: PartialModel) -> torch.optim.Optimizer:
    """AdamW; no weight decay on norms and other vectors."""
    decay, plain = [], []
    for p in pm.trained_parameters().values():
        (decay if p.ndim >= 2 else plain).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.learning_rate,
                             betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon)


def scheduler_for(cfg: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int):
    from transformers import get_scheduler

    warmup = math.ceil(cfg.warmup_ratio * total_steps)
    return get_scheduler(cfg.lr_scheduler_type, optimizer, num_warmup_steps=warmup,
                         num_training_steps=max(1, total_steps))


def trained_tensors(pm: PartialModel, accelerator=None, model=None) -> dict[str, torch.Tensor]:
    """The trained parameters by name. Under FSDP they are gathered from the shards (a collective:
    every process must call this)."""
    out = {name: p.detach() for name, p in pm.trained_parameters().items()}
    if accelerator is not None and model is not None and accelerator.distributed_type == "FSDP":
        full = {k.replace("_fsdp_wrapped_module.", ""): v for k, v in accelerator.get_state_dict(model).items()}
        out = {name: full[name.replace("_fsdp_wrapped_module.", "")] for name in out}
    if pm.head_rows is not None:
        out["head_rows_ids"] = pm.subset.detach()
    return out


def load_trained_into(pm: PartialModel, tensors: dict[str, torch.Tensor]) -> None:
    """Resume: put a checkpoint's trained tensors back into the live parameters."""
    params = pm.trained_parameters()
    missing = set(params) - set(tensors)
    if missing:
        raise ConfigError(f"the checkpoint lacks {sorted(missing)[0]} (trained with other settings?)")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(tensors[name].to(p.device, p.dtype))
