"""Sampling under the grammar constraint, for RL rollouts, rejection sampling and greedy decoding.

A minimal loop over ``Constraint.fill_mask`` / ``try_advance`` with a KV cache (the decoding
package had no generation loop of its own when this was written). All ``n`` samples of a prompt
run together: the prompt is prefilled once and its cache repeated, so no padding is needed.

What makes it fit for on-policy RL:

- the next-token distribution is the model's softmax renormalised over the allowed tokens, computed
  with the same head code as the training loss (``PartialModel.rows`` / ``subset_weight``), and the
  allowed set of every step is recorded (masks.PositionMasks) so the loss normalises over exactly it;
- the frozen prefix's output at every position is captured on the way (a hook on the last frozen
  layer), so the policy update runs only the trainable layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..decoding.constraint import Constraint, compile_tokenizer, make_config
from ..decoding.generate import _CACHE_ARG, _cache_of
from ..decoding.guide import Levels
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


def _layer_output(output):
    return output[0] if isinstance(output, tuple) else output


class Sampler:
    def __init__(self, pm: PartialModel, tokenizer, table: MaskTable, subset_index: np.ndarray,
                 levels: Levels = Levels(), capture_states: bool = False):
        self.pm, self.tokenizer, self.table = pm, tokenizer, table
        self.compiled = compile_tokenizer(tokenizer)
        self.recorder = Recorder(subset_index, table, len(tokenizer))
        self.levels = levels
        self.capture_states = capture_states and pm.prefix_frozen

    def _hook_module(self) -> torch.nn.Module:
        pm = self.pm
        return pm.base.layers[pm.k - 1] if pm.k > 0 else pm.model.get_input_embeddings()

    @torch.no_grad()
    def sample(self, prompt_ids: list[int], question: str | None, n: int, temperature: float, max_new_tokens: int,
               generator: torch.Generator | None = None) -> list[Rollout]:
        """``n`` constrained samples (``temperature`` 0: greedy, then n should be 1)."""
        pm = self.pm
        device = pm.head_weight.device
        captured: list[Tensor] = []
        handle = None
        if self.capture_states:
            handle = self._hook_module().register_forward_hook(
                lambda _m, _i, out: captured.append(_layer_output(out).detach()))
        try:
            return self._sample(prompt_ids, question, n, temperature, max_new_tokens, generator, device, captured)
        finally:
            if handle is not None:
                handle.remove()

    def _sample(self, prompt_ids, question, n, temperature, max_new_tokens, generator, device, captured):
        pm = self.pm
        config = make_config(self.levels, question=question if self.levels.grounding else None)
        cons = [Constraint(self.compiled, config) for _ in range(n)]
        masks = [PositionMasks() for _ in range(n)]
        out = pm.base(input_ids=torch.tensor([prompt_ids], device=device), use_cache=True)
        cache, cache_arg = _cache_of(out), _CACHE_ARG(pm.base)  # `past_key_values` before transformers 5.24
        cache.batch_repeat_interleave(n)
        h = out.last_hidden_state[:, -1].expand(n, -1)
        done = [False] * n
        failed = [False] * n
        tokens: list[list[int]] = [[] for _ in range(n)]
        logps: list[list[float]] = [[] for _ in range(n)]
        eos = int(self.tokenizer.eos_token_id)
        for _ in range(max_new_tokens):
            choice, chosen_logp = self._choose(cons, masks, h, done, failed, temperature, generator)
            for r, t in enumerate(choice):
                if done[r] or t is None:
                    continue
                logps[r].append(chosen_logp[r])
                if not cons[r].try_advance(t):  # cannot happen: t came from the mask
                    failed[r] = done[r] = True
                    continue
                tokens[r].append(t)
                done[r] = cons[r].done
            if all(done):
                break
            step = torch.tensor([[t if t is not None and not done[r] else (tokens[r][-1] if tokens[r] else eos)]
                                 for r, t in enumerate(choice)], device=device)
            out = pm.base(input_ids=step, use_cache=True, **{cache_arg: cache})
            cache = _cache_of(out)
            h = out.last_hidden_state[:, -1]
        states = self._states(captured, prompt_ids, tokens, n) if self.capture_states else [None] * n
        vocab = self.compiled.vocab
        rollouts = []
        for r in range(n):
            text = b"".join(vocab.bytes_of[t] or b"" for t in tokens[r] if t not in vocab.eos).decode(
                "utf-8", errors="replace")
            rollouts.append(Rollout(list(prompt_ids), tokens[r], cons[r].done and not failed[r], text, masks[r],
                                    logps[r], states[r]))
        return rollouts

    def _choose(self, cons, masks, h, done, failed, temperature, generator) -> tuple[list[int | None], list[float]]:
        """One token per live row, from the model's distribution renormalised over the allowed tokens."""
        pm = self.pm
        choice: list[int | None] = [None] * len(cons)
        logp = [0.0] * len(cons)
        dense_rows, dense_ids = [], []
        for r, con in enumerate(cons):
            if done[r]:
                continue
            ids = self.recorder.allowed(con)
            if len(ids) == 0:  # the decoder guarantees a continuation; be safe anyway
                failed[r] = done[r] = True
                continue
            self.recorder.file(ids, masks[r])
            if len(ids) == 1:
                choice[r] = int(ids[0])
            elif len(ids) > DENSE_AT:
                dense_rows.append(r)
                dense_ids.append(ids)
            else:
                t = torch.from_numpy(ids).to(h.device)
                logits = pm.softcap(pm.rows(t) @ h[r])
                pick, logp[r] = self._pick(logits, temperature, generator)
                choice[r] = int(t[pick])
        if dense_rows:
            logits = pm.softcap(h[dense_rows] @ pm.subset_weight().T)
            for j, r in enumerate(dense_rows):
                allowed = torch.from_numpy(self.recorder.subset_index[dense_ids[j]]).to(h.device)
                pick, logp[r] = self._pick(logits[j].index_select(0, allowed), temperature, generator)
                choice[r] = int(dense_ids[j][pick])
        return choice, logp

    @staticmethod
    def _pick(logits: Tensor, temperature: float, generator: torch.Generator | None) -> tuple[int, float]:
        """The chosen index and its log-probability under the distribution it was drawn from."""
        if temperature <= 0:
            i = int(torch.argmax(logits))
            return i, float(torch.log_softmax(logits.float(), dim=-1)[i])
        logp = torch.log_softmax(logits.float() / temperature, dim=-1)
        i = int(torch.multinomial(logp.exp().cpu(), 1, generator=generator))
        return i, float(logp[i])

    @staticmethod
    def _states(captured: list[Tensor], prompt_ids: list[int], tokens: list[list[int]], n: int) -> list[Tensor]:
        """Per row: the prefix output at the prompt's positions and at each fed completion token."""
        prompt = captured[0][0]  # the prefill ran on one row
        steps = torch.cat([c[:, -1:] for c in captured[1:]], dim=1) if len(captured) > 1 else None
        out = []
        for r in range(n):
            m = len(tokens[r]) - 1  # the last token is never fed back
            parts = [prompt] + ([steps[r, :m]] if m > 0 and steps is not None else [])
            out.append(torch.cat(parts, dim=0).cpu())
        return out


def greedy_texts(sampler: Sampler, prompts_ids: list[list[int]], questions: list[str | None],
                 max_new_tokens: int) -> list[Rollout]:
    return [sampler.sample(p, q, 1, 0.0, max_new_tokens)[0] for p, q in zip(prompts_ids, questions, strict=True)]
