"""Constrained decoding for evaluation: the decoder's generation loop (KV cache, fast-forward) with
one constraint per row, grounded in that row's question. Every output parses by construction."""

from __future__ import annotations

import time

from ..decoding.constraint import Constraint, compile_tokenizer, make_config
from ..decoding.generate import PrefixCache, generate
from ..models import LoadedModel, Prompter
from .backends import Generated


class ConstrainedBackend:
    def __init__(self, loaded: LoadedModel, prompter: Prompter, max_new_tokens: int = 320, seed: int = 0,
                 temperature: float = 0.0):
        self.loaded, self.prompter = loaded, prompter
        self.max_new_tokens, self.seed, self.temperature = max_new_tokens, seed, temperature
        self.compiled = compile_tokenizer(loaded.tokenizer, surface=prompter.surface)
        self.prefix = PrefixCache()  # the prompt's shared head (instructions, shots), computed once

    def generate(self, prompts: list[str], questions: list[str]) -> list[Generated]:
        configs = [make_config(question=q) for q in questions]
        start = time.perf_counter()
        results = generate(self.loaded.model, self.loaded.tokenizer, prompts,
                           lambda i: Constraint(self.compiled, configs[i]), max_new_tokens=self.max_new_tokens,
                           temperature=self.temperature, seed=self.seed, prefix_cache=self.prefix)
        seconds = (time.perf_counter() - start) / len(prompts)
        return [Generated(r.text, len(r.token_ids), seconds, r.budget_closed) for r in results]
