"""Right-padded batches of sequences whose tail is scored (SFT examples, RL rollouts), with the
constrained decoder's allowed tokens at each scored position."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from .masks import MaskTable, PositionMasks


@dataclass
class Allowed:
    """The constrained decoder's allowed tokens at each scored position, as indices into the
    grammar subset: small sets as (segment, token) pairs, large ones as boolean rows. Every scored
    position is in exactly one of ``sparse_pos`` and ``dense_pos``."""

    sparse_pos: Tensor  # [Sn] long: scored positions with a small allowed set
    pair_seg: Tensor  # [N] long: index into sparse_pos
    pair_sidx: Tensor  # [N] long: subset index of an allowed token
    dense_pos: Tensor  # [D] long
    dense_mask: Tensor  # [D, |S|] bool

    def to(self, device) -> Allowed:
        return Allowed(self.sparse_pos.to(device), self.pair_seg.to(device), self.pair_sidx.to(device),
                       self.dense_pos.to(device), self.dense_mask.to(device))


@dataclass
class Batch:
    input_ids: Tensor  # [B, T], right-padded
    attention_mask: Tensor  # [B, T]
    pred_pos: Tensor  # [P] flat (row-major) positions whose next token is scored
    targets: Tensor  # [P] the token ids scored there
    allowed: Allowed | None = None  # for the `constrained` loss
    prefix_states: Tensor | None = None  # [B, T, d]: the frozen prefix's output, when cached

    def to(self, device) -> Batch:
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.pred_pos.to(device),
                     self.targets.to(device), self.allowed.to(device) if self.allowed is not None else None,
                     self.prefix_states.to(device) if self.prefix_states is not None else None)


def collate(masks: list[PositionMasks], offsets: list[int], table: MaskTable) -> Allowed:
    """The ``Allowed`` of a batch whose sequences' scored positions start at ``offsets``."""
    sparse_pos: list[int] = []
    pair_seg: list[np.ndarray] = []
    pair_sidx: list[np.ndarray] = []
    dense_pos: list[int] = []
    dense_rows: list[torch.Tensor] = []
    for m, start in zip(masks, offsets, strict=True):
        it = iter(m.sparse)
        for j, key in enumerate(m.dense):
            if key < 0:
                sidx = next(it)
                pair_seg.append(np.full(len(sidx), len(sparse_pos), dtype=np.int64))
                pair_sidx.append(sidx.astype(np.int64))
                sparse_pos.append(start + j)
            else:
                dense_pos.append(start + j)
                dense_rows.append(table.rows[key])
    long = torch.long
    return Allowed(
        torch.tensor(sparse_pos, dtype=long),
        torch.from_numpy(np.concatenate(pair_seg)) if pair_seg else torch.zeros(0, dtype=long),
        torch.from_numpy(np.concatenate(pair_sidx)) if pair_sidx else torch.zeros(0, dtype=long),
        torch.tensor(dense_pos, dtype=long),
        torch.stack(dense_rows) if dense_rows else torch.zeros((0, table.subset_size), dtype=torch.bool),
    )


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
