"""Right-padded batches of sequences whose tail is scored (SFT examples, RL rollouts)."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from .masks import MaskTable, PositionMasks, collate
from .partial import Batch


class Scored(Protocol):
    @property
    def input_ids(self) -> list[int]: ...

    @property
    def first_scored(self) -> int: ...

    target_ids: list[int]
    masks: PositionMasks | None


def make_batch(seqs: list[Scored], pad_id: int, table: MaskTable | None = None,
               states: list[Tensor] | None = None) -> Batch:
    """``states``: each sequence's frozen-prefix output [len, d] (cached), padded with zeros."""
    inputs = [s.input_ids for s in seqs]
    width = max(len(x) for x in inputs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    pred: list[Tensor] = []
    offsets: list[int] = []
    n = 0
    for b, (s, x) in enumerate(zip(seqs, inputs, strict=True)):
        ids[b, :len(x)] = torch.tensor(x, dtype=torch.long)
        attn[b, :len(x)] = 1
        offsets.append(n)
        pred.append(b * width + s.first_scored + torch.arange(len(s.target_ids)))
        n += len(s.target_ids)
    targets = torch.tensor([t for s in seqs for t in s.target_ids], dtype=torch.long)
    allowed = None
    if table is not None:
        allowed = collate([s.masks for s in seqs], offsets, table)  # type: ignore[misc]
    prefix = None
    if states is not None:
        prefix = torch.zeros((len(seqs), width, states[0].shape[-1]), dtype=states[0].dtype)
        for b, st in enumerate(states):
            prefix[b, :st.shape[0]] = st
    return Batch(ids, attn, torch.cat(pred), targets, allowed, prefix)
