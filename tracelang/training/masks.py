"""The constrained decoder's masks along a token sequence, kept in a form the loss can batch.

Along an SFT target (teacher forcing) or an RL rollout, each scored position gets the set of
tokens the decoder allows there, as indices into the grammar subset (emittable.py). Small sets
(almost every position: literal text, an op, a grounded number) are kept as index arrays; large
ones (a fresh name may start with ~100k tokens) as boolean rows over the subset, deduplicated in a
``MaskTable`` because the same few recur everywhere.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..decoding.constraint import Constraint

DENSE_AT = 4096  # allowed sets larger than this are kept as boolean rows


class MaskTable:
    """Deduplicated dense masks (boolean rows over the subset)."""

    def __init__(self, subset_size: int):
        self.subset_size = subset_size
        self.rows: list[torch.Tensor] = []
        self.digests: list[bytes] = []  # row -> its content digest (the on-disk name)
        self.index: dict[bytes, int] = {}

    def add(self, sidx: np.ndarray) -> int:
        key = hashlib.blake2b(np.ascontiguousarray(sidx, dtype=np.int64).tobytes(), digest_size=16).digest()
        hit = self.index.get(key)
        if hit is None:
            row = torch.zeros(self.subset_size, dtype=torch.bool)
            row[torch.from_numpy(np.asarray(sidx, dtype=np.int64))] = True
            hit = self._append(key, row)
        return hit

    def add_row(self, key: bytes, row: torch.Tensor) -> int:
        hit = self.index.get(key)
        return hit if hit is not None else self._append(key, row)

    def _append(self, key: bytes, row: torch.Tensor) -> int:
        # append-only, the index last: a reader on another thread never sees a key without its row
        self.rows.append(row)
        self.digests.append(key)
        self.index[key] = len(self.rows) - 1
        return len(self.rows) - 1


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
        return self.ids(self.buf)

    def ids(self, mask: np.ndarray) -> np.ndarray:
        """The token ids of a mask (packed bits, as ``Constraint.fill_mask`` writes them), sorted."""
        return self.within(np.flatnonzero(np.unpackbits(mask.view(np.uint8), bitorder="little")))

    def within(self, ids: np.ndarray) -> np.ndarray:
        """The ids that are tokens of the tokenizer (a head may be wider than its vocabulary)."""
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


REFUSED = "refused"


class MaskStore:
    """Teacher-forced masks on disk, so that a run, a resume or the next run does not rebuild them.

    Keyed by everything a mask depends on: the tokenizer, the grammar and decoder code, the
    levels, and the example's question and trace. One ``.npz`` per example (no pickle: plain
    arrays), and each dense row once, by content digest, as packed bits. A file that cannot be
    read is a miss; files are written beside their name and renamed into place.
    """

    FORMAT = "masks-v1"

    def __init__(self, root: Path, namespace: str, table: MaskTable):
        self.dir = Path(root) / hashlib.sha256(f"{self.FORMAT}:{namespace}".encode()).hexdigest()[:20]
        self.table = table
        (self.dir / "dense").mkdir(parents=True, exist_ok=True)

    def _file(self, question: str, trace: str) -> Path:
        h = hashlib.sha256(f"{question}\0{trace}".encode()).hexdigest()
        return self.dir / h[:2] / f"{h[2:34]}.npz"

    def get(self, question: str, trace: str) -> tuple[PositionMasks | str, int] | None:
        """(masks or REFUSED, index of the levels tried that worked), or None on a miss."""
        file = self._file(question, trace)
        try:
            with np.load(file, allow_pickle=False) as z:
                tried = int(z["tried"])
                if bool(z["refused"]):
                    return REFUSED, tried
                kinds, digests = z["kinds"], z["digests"]
                sparse, lens = z["sparse"], z["lens"]
        except (OSError, ValueError, KeyError, EOFError):
            return None
        rows = []
        for d in digests:
            key = d.tobytes()
            hit = self.table.index.get(key)
            if hit is None:
                try:
                    bits = np.load(self.dir / "dense" / f"{key.hex()}.npy", allow_pickle=False)
                    row = torch.from_numpy(np.unpackbits(bits)[:self.table.subset_size].astype(bool))
                except (OSError, ValueError):
                    return None
                if row.numel() != self.table.subset_size:
                    return None
                hit = self.table.add_row(key, row)
            rows.append(hit)
        out = PositionMasks()
        bounds = np.concatenate([[0], np.cumsum(lens)])
        j = 0
        for k in kinds.tolist():
            if k < 0:
                out.dense.append(-1)
                out.sparse.append(sparse[bounds[j]:bounds[j + 1]].astype(np.int32))
                j += 1
            else:
                out.dense.append(rows[k])
        return out, tried

    def put(self, question: str, trace: str, masks: PositionMasks | None, tried: int) -> None:
        file = self._file(question, trace)
        file.parent.mkdir(exist_ok=True)
        digests: list[bytes] = []
        kinds: list[int] = []
        for key in (masks.dense if masks is not None else []):
            if key < 0:
                kinds.append(-1)
                continue
            d = self.table.digests[key]
            if d not in digests:
                digests.append(d)
                row_file = self.dir / "dense" / f"{d.hex()}.npy"
                if not row_file.is_file():
                    _atomic_npy(row_file, np.packbits(self.table.rows[key].numpy()))
            kinds.append(digests.index(d))
        sparse = masks.sparse if masks is not None else []
        tmp = file.with_name(f"{file.name}.{os.getpid()}.part")
        with tmp.open("wb") as fh:
            np.savez(fh, tried=np.int64(tried), refused=np.bool_(masks is None),
                     kinds=np.asarray(kinds, dtype=np.int32),
                     digests=np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(digests), 16),
                     sparse=np.concatenate(sparse).astype(np.int32) if sparse else np.zeros(0, np.int32),
                     lens=np.asarray([len(x) for x in sparse], dtype=np.int32))
        os.replace(tmp, file)


def _atomic_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    with tmp.open("wb") as fh:
        np.save(fh, array, allow_pickle=False)
    os.replace(tmp, path)
