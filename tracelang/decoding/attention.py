"""Grouped-query attention without copying the keys and values per query head.

transformers' SDPA path copies each key/value head once per query head it serves (``repeat_kv``)
whenever a step feeds more than one token with a padding mask — every fast-forward step does.
On Gemma 3 270M (4 query heads, 1 key/value head) that copy and the attention over it are most of
a decode step's attention time on CPU. Packing the query heads of a group into the query length
instead gives the same attention (the mask is shared by the heads) over the cache as it is.

``packed_attention(model)`` switches a model to it for the duration of a ``with`` block;
``with_packed_attention`` does so around a function whose first argument is the model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch

NAME = "tracelang_packed_sdpa"
F = TypeVar("F", bound=Callable)


def packed_sdpa(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                **kwargs) -> tuple[torch.Tensor, None]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    if groups == 1 or attention_mask is None or attention_mask.shape[1] != 1 or dropout or \
            kwargs.get("position_bias") is not None or kwargs.get("softcap") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    b, heads, q, d = query.shape
    # (b, kv_heads * g, q, d) -> (b, kv_heads, g * q, d): row gi * q + qi is query qi of head gi
    packed = query.reshape(b, heads // groups, groups * q, d)
    mask = attention_mask.repeat(1, 1, groups, 1) if q > 1 else attention_mask
    out = torch.nn.functional.scaled_dot_product_attention(packed, key, value, attn_mask=mask, scale=scaling)
    return out.reshape(b, heads, q, value.shape[-1]).transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    if NAME not in AttentionInterface():
        AttentionInterface.register(NAME, packed_sdpa)
        ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)


@contextmanager
def packed_attention(model) -> Iterator[None]:
    """Run ``model`` with packed grouped-query attention inside the block where it used SDPA."""
    config = model.config
    before = getattr(config, "_attn_implementation", None)
    if before != "sdpa" or not hasattr(model, "set_attn_implementation"):
        yield
        return
    _register()
    model.set_attn_implementation(NAME)
    try:
        yield
    finally:
        model.set_attn_implementation(before)


def with_packed_attention(fn: F) -> F:
    """``fn(model, ...)`` run inside ``packed_attention(model)``."""

    @functools.wraps(fn)
    def run(model, *args, **kwargs):
        with packed_attention(model):
            return fn(model, *args, **kwargs)

    return run  # type: ignore[return-value]
