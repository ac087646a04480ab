"""Packed grouped-query attention gives the logits of transformers' own SDPA path, with padding
and a cache, and the model goes back to SDPA after the block."""

from __future__ import annotations

import pytest
import torch
from transformers.integrations import sdpa_attention as sdpa_module

from tracelang.decoding import attention
from tracelang.decoding.attention import packed_attention
from tracelang.models.tiny_model import tiny_model
from tracelang.models.tokenizer_store import tiny_spm


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_packed_attention_equals_sdpa(arch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model(tiny_spm(), seed=2, layers=2, arch=arch)
    assert model.config.num_attention_heads > model.config.num_key_value_heads  # grouped-query
    first = torch.randint(5, 200, (3, 12))
    block = torch.randint(5, 200, (3, 4))  # a fast-forward step: several tokens per row, right-padded
    attn = torch.ones(3, 16, dtype=torch.long)
    attn[0, :3] = 0  # a left-padded prompt
    attn[1, 14:] = 0  # a row that feeds two tokens of four
    copies: list[int] = []  # repeat_kv calls: SDPA's copy of the key/value heads
    real = sdpa_module.repeat_kv
    monkeypatch.setattr(sdpa_module, "repeat_kv", lambda x, n: copies.append(n) or real(x, n))

    def run() -> torch.Tensor:
        with torch.no_grad():
            out = model(input_ids=first, attention_mask=attn[:, :12], use_cache=True)
            return model(input_ids=block, attention_mask=attn, cache=out.past_key_values, use_cache=True).logits

    plain = run()
    assert copies  # the plain path copies keys and values per query head
    copies.clear()
    with packed_attention(model):
        assert model.config._attn_implementation == attention.NAME
        fast = run()
    assert not copies
    assert model.config._attn_implementation == "sdpa"
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
