"""Generation backends behind one call: ``generate(prompts, questions) -> list[Generated]``.

``free`` decodes without a constraint (greedy, batched, transformers' ``generate``) and cuts the
text where the trace visibly ends; ``constrained`` decodes under the grammar with scope, ops and
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


class Backend(Protocol):
    def generate(self, prompts: list[str], questions: list[str]) -> list[Generated]: ...


def cut_trace(text: str, stops: list[str]) -> str:
    """The trace part of a free completion: up to the first stop string, ending with a newline."""
    end = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:end].rstrip() + "\n"


class FreeBackend:
    def __init__(self, loaded: LoadedModel, prompter: Prompter, max_new_tokens: int = 256):
        self.loaded, self.prompter, self.max_new_tokens = loaded, prompter, max_new_tokens

    def generate(self, prompts: list[str], questions: list[str]) -> list[Generated]:
        import torch

        tok, model = self.loaded.tokenizer, self.loaded.model
        tok.padding_side = "left"
        batch = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=not self.prompter.chat)
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**batch, max_new_tokens=self.max_new_tokens, do_sample=False,
                                 stop_strings=self.prompter.stop_strings(), tokenizer=tok,
                                 pad_token_id=tok.pad_token_id)
        seconds = (time.perf_counter() - start) / len(prompts)
        new = out[:, batch["input_ids"].shape[1]:]
        results = []
        for row in new:
            ids = [int(t) for t in row if int(t) != tok.pad_token_id]
            text = tok.decode(ids, skip_special_tokens=True)
            results.append(Generated(cut_trace(text, self.prompter.stop_strings()), len(ids), seconds))
        return results
