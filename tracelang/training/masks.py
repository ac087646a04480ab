"""The constrained decoder's masks along a token sequence, kept in a form the loss can batch.

Along an SFT target (teacher forcing) or an RL rollout, each scored position gets the set of
tokens the decoder allows there, as indices into the grammar subset (emittable.py). Small sets
(almost every position: literal text, an op, a grounded number) are kept as index arrays; large
ones (a fresh name may start with ~100k tokens) as boolean rows over the subset, deduplicated in a
``MaskTable`` because the same few recur everywhere.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from ..decoding.constraint import Constraint
from .partial import Allowed

DENSE_AT = 4096  # allowed sets larger than this are kept as boolean rows


class MaskTable:
    """Deduplicated dense masks (boolean rows over the subset)."""

    def __init__(self, subset_size: int):
        self.subset_size = subset_size
        self.rows: list[torch.Tensor] = []
        self.index: dict[bytes, int] = {}

    def add(self, sidx: np.ndarray) -> int:
        key = hashlib.blake2b(np.ascontiguousarray(sidx, dtype=np.int64).tobytes(), digest_size=16).digest()
        hit = self.index.get(key)
        if hit is None:
            row = torch.zeros(self.subset_size, dtype=torch.bool)
            row[torch.from_numpy(np.asarray(sidx, dtype=np.int64))] = True
            hit = self.index[key] = len(self.rows)
            self.rows.append(row)
        return hit


@dataclass
class PositionMasks:
    """One sequence's scored positions: a table key per position (-1: sparse), and the sparse sets."""

    dense: list[int] = field(default_factory=list)
    sparse: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.dense)


class Recorder:
    """Reads a constraint's current mask as subset indices and files it."""

    def __init__(self, subset_index: np.ndarray, table: MaskTable, vocab_size: int):
        self.subset_index = subset_index
        self.table = table
        self.vocab_size = vocab_size
        self.buf: np.ndarray | None = None

    def allowed(self, con: Constraint) -> np.ndarray:
        """Token ids the constraint allows now (sorted)."""
        if self.buf is None or len(self.buf) != con.compiled.words:
            self.buf = con.new_mask()
        con.fill_mask(self.buf)
        ids = np.flatnonzero(np.unpackbits(self.buf.view(np.uint8), bitorder="little"))
        return ids[ids < self.vocab_size]

    def file(self, ids: np.ndarray, into: PositionMasks) -> np.ndarray:
        """Add this position's allowed set to ``into``; returns it as subset indices."""
        sidx = self.subset_index[ids]
        if len(sidx) and int(sidx.min()) < 0:
            bad = int(ids[np.argmin(sidx)])
            raise RuntimeError(f"the decoder allowed token {bad}, which the grammar subset lacks (emittable.py)")
        if len(sidx) > DENSE_AT:
            into.dense.append(self.table.add(sidx))
        else:
            into.dense.append(-1)
            into.sparse.append(sidx.astype(np.int32))
        return sidx


def teacher_masks(con: Constraint, targets: list[int], recorder: Recorder) -> PositionMasks | None:
    """Masks along ``targets`` (trace tokens then EOS); None if the constraint refuses a token."""
    out = PositionMasks()
    for t in targets:
        ids = recorder.allowed(con)
        i = int(np.searchsorted(ids, t))
        if i >= len(ids) or ids[i] != t:
            return None
        recorder.file(ids, out)
        if not con.try_advance(int(t)):
            return None
    return out


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
