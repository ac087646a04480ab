"""The frozen prefix's output on disk, beside the masks, so that a continued stage or a resumed run
starts at the cached speed instead of recomputing every example's first layers.

Keyed, like the mask store, by everything the value depends on: a digest of the frozen part's weights
and buffers (embeddings and the layers before the first trained one), the split point, their dtypes,
and the example's token ids. Any later stage that trains the same layers of the same base (LoRA on the
last 9 layers, say) reads what an earlier stage wrote. One safetensors file per example (no pickle);
files are written beside their name and renamed into place, and one that cannot be read is a miss.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn


def frozen_digest(base: nn.Module, first_trained: int) -> str:
    """A digest of what the prefix computes with: every parameter and buffer of ``base`` (the decoder)
    outside layers ``first_trained``.. and the final norm, with its name, dtype and shape."""
    digest = hashlib.sha256(f"split:{first_trained}".encode())
    tensors = [*base.named_parameters(), *base.named_buffers()]
    for name, tensor in sorted(tensors, key=lambda kv: kv[0]):
        parts = name.split(".")
        if name.startswith("norm.") or (parts[0] == "layers" and int(parts[1]) >= first_trained):
            continue
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{flat.dtype}:{tuple(tensor.shape)}\0".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:20]


class PrefixStore:
    FORMAT = "prefix-v1"

    def __init__(self, root: Path, namespace: str):
        self.dir = Path(root) / hashlib.sha256(f"{self.FORMAT}:{namespace}".encode()).hexdigest()[:20]
        self.dir.mkdir(parents=True, exist_ok=True)

    def _file(self, ids: list[int]) -> Path:
        h = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()
        return self.dir / h[:2] / f"{h[2:34]}.safetensors"

    def get(self, ids: list[int]) -> torch.Tensor | None:
        try:
            states = load_file(self._file(ids))["states"]
        except (OSError, SafetensorError, KeyError):
            return None
        return states if states.shape[0] == len(ids) else None

    def put(self, ids: list[int], states: torch.Tensor) -> None:
        file = self._file(ids)
        file.parent.mkdir(exist_ok=True)
        part = file.with_name(f"{file.name}.{os.getpid()}.part")
        try:
            save_file({"states": states.detach().cpu().contiguous()}, str(part))
            part.replace(file)
        except OSError:  # a full disk or a read-only cache costs speed, never the run
            part.unlink(missing_ok=True)
