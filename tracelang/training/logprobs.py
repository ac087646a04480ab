"""Log-probabilities of target tokens, computed only where a loss is taken and only over the
tokens that loss normalises over. With a 262k vocabulary the head is the dominant cost of a
training step; these three normalisations trade it away to different degrees:

- ``full``: the model's own softmax over the whole vocabulary (what a plain HF loop computes,
  but at target positions only);
- ``grammar``: a softmax over the tokens the grammar can ever emit (emittable.py) — the
  distribution a constrained decoder samples from, before its per-step mask;
- ``constrained``: a softmax over the tokens the constrained decoder allows at that very position
  (the mask it would apply there, recorded along the target). This is exactly the decoder's own
  log-likelihood, the quantity RL needs for on-policy updates; most positions allow a handful of
  tokens, so the head costs almost nothing except at name positions.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from .batching import Allowed


class Head(Protocol):
    """The output head as the losses see it (``partial.PartialModel``): declared here so that this
    module needs nothing from the model's module, which imports it."""

    subset: Tensor  # [|S|] token ids of the grammar subset
    subset_index: Tensor  # [V] token id -> index in the subset, -1 outside

    def softcap(self, logits: Tensor) -> Tensor: ...

    def rows(self, token_ids: Tensor) -> Tensor: ...

    def subset_weight(self) -> Tensor: ...

    def full_logits(self, h: Tensor) -> Tensor: ...


def target_logprobs(pm: Head, h: Tensor, targets: Tensor, vocab: str, allowed: Allowed | None,
                    temperature: float = 1.0) -> Tensor:
    """``h``: final hidden states at the scored positions [P, d]; ``targets``: token ids [P].
    ``temperature`` divides the (soft-capped) logits, as the sampler does."""
    if vocab == "full":
        logits = pm.full_logits(h) / temperature
        return logits.gather(1, targets.unsqueeze(1)).squeeze(1) - torch.logsumexp(logits, dim=-1)
    if vocab == "grammar":
        s = pm.subset_index[targets]
        if bool((s < 0).any()):
            raise ValueError("a target token is outside the grammar's tokens; use loss_vocab: full")
        logits = pm.softcap(h @ pm.subset_weight().T) / temperature
        return logits.gather(1, s.unsqueeze(1)).squeeze(1) - torch.logsumexp(logits, dim=-1)
    if vocab != "constrained":
        raise ValueError(f"unknown loss vocabulary {vocab!r}")
    if allowed is None:
        raise ValueError("the constrained loss needs the decoder's masks")
    return constrained_logprobs(pm, h, targets, allowed, temperature)


def constrained_logprobs(pm: Head, h: Tensor, targets: Tensor, allowed: Allowed,
                         temperature: float = 1.0) -> Tensor:
    target_logit = pm.softcap((h * pm.rows(targets)).sum(-1)) / temperature
    lse = torch.zeros_like(target_logit)
    if allowed.sparse_pos.numel():
        tokens = pm.subset.index_select(0, allowed.pair_sidx)
        at = allowed.sparse_pos.index_select(0, allowed.pair_seg)
        pair_logit = pm.softcap((h.index_select(0, at) * pm.rows(tokens)).sum(-1)) / temperature
        n = allowed.sparse_pos.numel()
        top = torch.full((n,), float("-inf"), dtype=pair_logit.dtype, device=pair_logit.device)
        top = top.scatter_reduce(0, allowed.pair_seg, pair_logit.detach(), reduce="amax")
        total = torch.zeros(n, dtype=pair_logit.dtype, device=pair_logit.device).index_add(
            0, allowed.pair_seg, torch.exp(pair_logit - top.index_select(0, allowed.pair_seg)))
        lse = lse.index_copy(0, allowed.sparse_pos, top + torch.log(total))
    if allowed.dense_pos.numel():
        logits = pm.softcap(h.index_select(0, allowed.dense_pos) @ pm.subset_weight().T) / temperature
        logits = logits.masked_fill(~allowed.dense_mask, float("-inf"))
        lse = lse.index_copy(0, allowed.dense_pos, torch.logsumexp(logits, dim=-1))
    return target_logit - lse
