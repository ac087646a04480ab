"""Generation backends behind one call: ``generate(prompts, questions) -> list[Generated]``.

``free`` decodes without a constraint (greedy, batched, our generation loop) and cuts the text
where the trace visibly ends; ``constrained`` decodes under the grammar with scope, ops and
grounding (tracelang.decoding), so every output parses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from ..models import LoadedModel, Prompter


@dataclass
class Generated:
    text: str  # the trace text as generated (cut at the stop for free decoding)
    new_tokens: int
    seconds: float  # this row's share of its batch's wall time
    budget_closed: bool = False  # the decoder ended the trace when the token budget ran out: not an answer
    # maj@k only: the exact answer (rendered) of each of the k samples, None where a sample gave none;
    # pass@k is whether the gold answer is among them
    sample_answers: tuple[str | None, ...] | None = None


class Backend(Protocol):
    def generate(self, prompts: list[str], questions: list[str]) -> list[Generated]: ...


def cut_trace(text: str, stops: list[str]) -> str:
    """The trace part of a free completion: up to the first stop string, ending with a newline."""
    end = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:end].rstrip() + "\n"


class FreeBackend:
    """Unconstrained greedy decoding in the same generation loop as ``constrained`` (KV cache,
    shared prompt prefix computed once, finished rows leave the batch), so the two differ only by
    the constraint."""

    def __init__(self, loaded: LoadedModel, prompter: Prompter, max_new_tokens: int = 256):
        from ..decoding.generate import PrefixCache

        self.loaded, self.prompter, self.max_new_tokens = loaded, prompter, max_new_tokens
        self.prefix = PrefixCache()

    def generate(self, prompts: list[str], questions: list[str]) -> list[Generated]:
        from ..decoding.generate import generate

        stops = self.prompter.stop_strings()
        start = time.perf_counter()
        results = generate(self.loaded.model, self.loaded.tokenizer, prompts, None,
                           max_new_tokens=self.max_new_tokens, stop_strings=stops, prefix_cache=self.prefix)
        seconds = (time.perf_counter() - start) / len(prompts)
        return [Generated(cut_trace(r.text, stops), len(r.token_ids), seconds) for r in results]
