"""A trained checkpoint as models/ reads it: its ``training.json``, the checkpoints it started from,
its trained tensors, and how one is applied to a model (tensors written in, an adapter merged).

Training writes these directories (training/checkpoint.py); evaluation, export and the shipped
adapter only read them, through here and ``loading.load_trained``, so nothing below training
imports it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from . import adapters

if TYPE_CHECKING:  # torch loads when a checkpoint is applied, not when the command line starts
    import torch

FORMAT = "tracelang-train-v1"


class CheckpointError(UsageError, RuntimeError):
    pass


def read_meta(path: Path) -> dict[str, Any]:
    file = Path(path) / "training.json"
    try:
        meta = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{file}: not a tracelang training checkpoint ({err})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{file}: format {meta.get('format')!r}, expected {FORMAT}")
    return meta


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The trained tensors, by their names in the training model (what a resume puts back)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = Path(path) / "trained.safetensors"
    try:
        return load_file(str(file))
    except (OSError, SafetensorError) as err:
        raise CheckpointError(f"{file}: not readable safetensors ({err})") from None


def chain(path: Path) -> list[Path]:
    """This checkpoint and the ones it started from, oldest first."""
    out: list[Path] = []
    cur: Path | None = Path(path)
    while cur is not None:
        if cur in out:
            raise CheckpointError(f"{cur}: checkpoints start from each other in a loop")
        out.append(cur)
        init = read_meta(cur).get("init_checkpoint")
        cur = Path(init) if init else None
    return out[::-1]


def materialize(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    """The model with one checkpoint applied: its trained tensors written in, its adapter (if any)
    merged into the weights. Returns the model to use from now on."""
    if (Path(path) / "trained.safetensors").is_file():
        tensors = {k: v for k, v in read_tensors(path).items() if "lora_" not in k}
        write_tensors(model, tensors)
    if adapters.is_adapter(path):
        try:
            model = adapters.merge(model, Path(path))
        except adapters.AdapterError as err:
            raise CheckpointError(str(err)) from None
    return model


def write_tensors(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Write trained tensors into a model of the base architecture. Head rows make the head an
    untied copy of the embeddings with those rows replaced."""
    import torch

    state = model.state_dict()
    rows = tensors.get("head_rows")
    for name, value in tensors.items():
        if name in ("head_rows", "head_rows_ids"):
            continue
        key = name[len("model."):] if name.startswith("model.") else name
        if key not in state:
            raise CheckpointError(f"trained tensor {name} has no counterpart {key!r} in {type(model).__name__}")
        with torch.no_grad():
            state[key].copy_(value.to(state[key].dtype))
    if rows is not None:
        ids = tensors["head_rows_ids"].long()
        embed = model.get_input_embeddings().weight
        head = model.get_output_embeddings()
        weight = head.weight.detach().clone() if head.weight is embed else head.weight.detach()
        with torch.no_grad():
            weight[ids] = rows.to(weight.dtype)
        if head.weight is embed:
            new = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, device=weight.device,
                                  dtype=weight.dtype)
            new.weight = torch.nn.Parameter(weight, requires_grad=False)
            model.set_output_embeddings(new)
            model.config.tie_word_embeddings = False
            if hasattr(model.config, "get_text_config"):
                model.config.get_text_config().tie_word_embeddings = False
