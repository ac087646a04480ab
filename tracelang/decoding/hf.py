"""A ``transformers`` LogitsProcessor: the constraint inside ``model.generate`` (one state per row).

``model.generate(..., logits_processor=LogitsProcessorList([TraceLogitsProcessor(...)]))``. At each
call the processor feeds every row the token chosen last time (read from ``input_ids``), then masks
the logits. ``generate`` has no way to append several tokens per step, so fast-forward lives in
``tracelang.decoding.generate``; here a forced token is simply the only one left unmasked.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from transformers import LogitsProcessor

from .constraint import Constraint


class TraceLogitsProcessor(LogitsProcessor):
    def __init__(self, constraint_factory: Callable[[int], Constraint], prompt_length: int):
        """``prompt_length``: the width of the (padded) prompt batch; tokens after it are generated."""
        self.factory = constraint_factory
        self.prompt_length = prompt_length
        self.rows: list[Constraint] = []
        self.seen: list[int] = []
        self.bufs: list[np.ndarray] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch, width = scores.shape
        if not self.rows:
            self.rows = [self.factory(i) for i in range(batch)]
            self.seen = [0] * batch
            self.bufs = [c.new_mask() for c in self.rows]
        generated = input_ids[:, self.prompt_length:].tolist()
        allowed = np.zeros((batch, width), dtype=bool)
        for i, c in enumerate(self.rows):
            for tok in generated[i][self.seen[i]:]:
                if not c.done:
                    c.advance(tok)
            self.seen[i] = len(generated[i])
            if c.done:
                allowed[i, list(c.vocab.eos)[0]] = True  # finished rows only pad with EOS
                continue
            c.fill_mask(self.bufs[i])
            bits = np.unpackbits(self.bufs[i].view(np.uint8), bitorder="little")
            m = min(width, len(bits))
            allowed[i, :m] = bits[:m]
        mask = torch.from_numpy(allowed).to(scores.device)
        return scores.masked_fill(~mask, float("-inf"))
