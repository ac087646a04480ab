"""Constrained samples for RL rollouts and rejection sampling, from the decoder's generation loop
(``decoding.generate``) with what on-policy RL needs on top:

- the next-token distribution is the model's softmax renormalised over the allowed tokens, with
  the logits from the same head code as the training loss (``PolicyHead``: ``PartialModel.rows`` /
  ``subset_weight``, the trained rows where they train), and the allowed set of every step is
  recorded (masks.PositionMasks) so the loss normalises over exactly it;
- every token is chosen from that distribution: no fast-forward (its forced tokens are the
  tokenizer's, not the policy's) and no closing when the budget runs out;
- the frozen prefix's output at every position is captured on the way (a hook on the last frozen
  layer), so the policy update runs only the trainable layers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..decoding.constraint import Constraint, compile_tokenizer, make_config
from ..decoding.generate import Head, Observer, generate
from ..decoding.levels import Levels
from .masks import DENSE_AT, MaskTable, PositionMasks, Recorder
from .partial import PartialModel


@dataclass
class Rollout:
    prompt_ids: list[int]
    completion: list[int]  # sampled tokens, EOS included when the trace ended
    finished: bool
    text: str
    masks: PositionMasks
    sample_logp: list[float] = field(default_factory=list)  # log-prob of each token as sampled (masked, /T)
    states: Tensor | None = None  # frozen prefix output for input_ids [len(input_ids), d]
    reward: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def input_ids(self) -> list[int]:
        return self.prompt_ids + self.completion[:-1]

    @property
    def first_scored(self) -> int:
        return len(self.prompt_ids) - 1

    @property
    def target_ids(self) -> list[int]:
        return self.completion


class PolicyHead(Head):
    """The policy's head as the loss computes it (``logprobs.py``): the trained rows where they
    train, in the head's dtype, soft-capped. Over a few allowed tokens it gathers their rows;
    over many (or the whole vocabulary) it runs the grammar subset, which holds every token the
    decoder can allow (``Recorder.file`` checks)."""

    whole = True

    def __init__(self, pm: PartialModel):
        super().__init__(pm.base, pm.head_weight, pm.cap)
        self.pm = pm
        self.subset = pm.subset.cpu()

    def rows(self, vocab: Tensor | None, device: torch.device) -> tuple[Tensor, Tensor]:
        if vocab is not None and len(vocab) <= DENSE_AT:
            return vocab, self.pm.rows(vocab.to(device))
        return self.subset, self.pm.subset_weight()

    def scores(self, h: Tensor, w: Tensor) -> Tensor:
        return self.pm.softcap(h.to(w.dtype) @ w.T).float()  # capped in the head's dtype, as the loss does


class _Watch(Observer):
    """Records each row's allowed sets and, with ``module``, its output at every position fed."""

    def __init__(self, recorder: Recorder, n: int, module: torch.nn.Module | None):
        self.recorder, self.module = recorder, module
        self.masks = [PositionMasks() for _ in range(n)]
        self.parts: list[list[Tensor]] = [[] for _ in range(n)]
        self.last: Tensor | None = None  # the module's output in the latest forward pass

    @contextmanager
    def hooked(self) -> Iterator[None]:
        if self.module is None:
            yield
            return
        handle = self.module.register_forward_hook(self._keep)
        try:
            yield
        finally:
            handle.remove()

    def _keep(self, _module, _inputs, output) -> None:
        self.last = (output[0] if isinstance(output, tuple) else output).detach()

    watches_masks = True

    def masked(self, row: int, ids: np.ndarray) -> None:
        self.recorder.file(self.recorder.within(ids), self.masks[row])

    def prefix(self, lengths: list[int]) -> None:
        if self.module is not None:
            for i, m in enumerate(lengths):
                self.parts[i].append(self.last[0, :m])  # type: ignore[index]

    def fed(self, rows: list[int], real: Tensor) -> None:
        if self.module is not None:
            real = real.bool().to(self.last.device)  # type: ignore[union-attr]
            for b, i in enumerate(rows):
                self.parts[i].append(self.last[b][real[b]])  # type: ignore[index]

    def states(self, row: int) -> Tensor:
        return torch.cat(self.parts[row], dim=0).cpu()


class Sampler:
    def __init__(self, pm: PartialModel, tokenizer, table: MaskTable, subset_index: np.ndarray,
                 levels: Levels = Levels(), capture_states: bool = False, surface: str = "yaml"):
        self.pm, self.tokenizer, self.table = pm, tokenizer, table
        self.compiled = compile_tokenizer(tokenizer, surface=surface)
        self.recorder = Recorder(subset_index, table, len(tokenizer))
        self.levels = levels
        self.capture_states = capture_states and pm.prefix_frozen
        self.head = PolicyHead(pm)

    def _hook_module(self) -> torch.nn.Module:
        pm = self.pm
        return pm.base.layers[pm.k - 1] if pm.k > 0 else pm.model.get_input_embeddings()

    @torch.no_grad()
    def sample(self, prompt_ids: list[int], question: str | None, n: int, temperature: float, max_new_tokens: int,
               generator: torch.Generator | None = None) -> list[Rollout]:
        """``n`` constrained samples (``temperature`` 0: greedy, then n should be 1)."""
        config = make_config(self.levels, question=question if self.levels.grounding else None)
        watch = _Watch(self.recorder, n, self._hook_module() if self.capture_states else None)
        with watch.hooked():
            results = generate(self.pm.model, self.tokenizer, [prompt_ids] * n,
                               lambda _i: Constraint(self.compiled, config), max_new_tokens=max_new_tokens,
                               temperature=temperature, fast_forward=False, close_on_budget=False,
                               generator=generator, head=self.head, observer=watch)
        rollouts = []
        for r, res in enumerate(results):
            states = watch.states(r) if self.capture_states else None
            if states is not None and len(states) != len(prompt_ids) + len(res.token_ids) - 1:
                raise RuntimeError(f"captured {len(states)} prefix states for {len(prompt_ids)} prompt and "
                                   f"{len(res.token_ids)} completion tokens")
            logp = [float(x) for x in res.logprobs]  # type: ignore[arg-type] - every token was sampled
            rollouts.append(Rollout(list(prompt_ids), res.token_ids, res.finished, res.text, watch.masks[r], logp,
                                    states))
        return rollouts
