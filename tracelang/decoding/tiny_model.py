"""A tiny randomly initialised causal LM for tests and the generation benchmark (no download)."""

from __future__ import annotations

import torch


def tiny_model(tokenizer, seed: int = 0, layers: int = 2, hidden: int = 64):
    """A Llama-architecture model sized for CPU tests; random weights from a fixed seed."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    model = LlamaForCausalLM(config)
    model.eval()
    return model
