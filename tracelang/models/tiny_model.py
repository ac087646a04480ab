"""A tiny randomly initialised causal LM for tests and the generation benchmark (no download)."""

from __future__ import annotations

import torch


def tiny_model(tokenizer, seed: int = 0, layers: int = 2, hidden: int = 64, arch: str = "llama",
               sliding_window: int = 16):
    """A model sized for CPU tests; random weights from a fixed seed. ``arch="gemma3"`` is the
    embedded model's architecture (sliding-window layers, then a global one), with a window short
    enough that test prompts outgrow it."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    ids = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id,
           "bos_token_id": tokenizer.bos_token_id}
    if arch == "gemma3":
        config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                                  num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=1,
                                  head_dim=16, sliding_window=sliding_window, max_position_embeddings=4096,
                                  layer_types=["sliding_attention"] * (layers - 1) + ["full_attention"], **ids)
        model = Gemma3ForCausalLM(config)
    else:
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                             num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=4096, **ids)
        model = LlamaForCausalLM(config)
    model.eval()
    return model
