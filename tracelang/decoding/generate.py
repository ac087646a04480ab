"""Our own generation loop: batched, with a KV cache, the constraint's mask, and fast-forward.

Fast-forward: where the constraint leaves exactly one continuation (most of ``- {op: compute,
compute_op: ``), the forced text is tokenized and appended without sampling; all of a row's new
tokens go through the model in one forward pass. Rows advance by different numbers of tokens, so a
step feeds a right-padded block: pad positions get attention mask 0 (and stay masked in the cache)
and explicit position ids keep every real token at its true position.

``generate`` is what evaluation and RL call. With ``reference`` token ids it is teacher-forced (the
chosen token at every sampling point is the reference's): the generation benchmark uses that to
time constrained and unconstrained decoding of the very same traces.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .constraint import Constraint


@dataclass
class Result:
    text: str
    token_ids: list[int]
    logprobs: list[float | None]  # None for fast-forwarded tokens (not sampled)
    finished: bool  # ended with EOS
    forced: int = 0  # tokens appended by fast-forward
    forward_passes: int = 0
    stats: dict = field(default_factory=dict)


def mask_tensor(constraint: Constraint, buf: np.ndarray, width: int) -> torch.Tensor:
    """The constraint's allowed tokens as a bool tensor of the model's vocabulary width."""
    constraint.fill_mask(buf)
    bits = np.unpackbits(buf.view(np.uint8), bitorder="little")
    out = np.zeros(width, dtype=bool)
    n = min(width, len(bits))
    out[:n] = bits[:n]
    return torch.from_numpy(out)


def _forced_tokens(tokenizer, constraint: Constraint, max_tokens: int) -> list[int]:
    """Tokens for the text the constraint forces next; the last token is left to the model, since
    the text after it may merge with it into another token."""
    text = constraint.forced_text()
    if len(text) < 2:
        return []
    ids = tokenizer.encode(text, add_special_tokens=False)[:-1][:max_tokens]
    return ids


def _CACHE_ARG(model) -> str:  # noqa: N802 - transformers renamed `past_key_values` to `cache`
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _cache_of(out) -> object:
    return getattr(out, "cache", None) or out.past_key_values


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[str],
    constraint_factory: Callable[[int], Constraint] | None = None,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    seed: int = 0,
    fast_forward: bool = True,
    reference: list[list[int]] | None = None,
) -> list[Result]:
    """Generate one completion per prompt. ``constraint_factory(i)`` gives row i's constraint
    (None: unconstrained). Greedy when ``temperature`` is 0; else sampling with a seeded generator."""
    device = next(model.parameters()).device
    cache_arg = _CACHE_ARG(model)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    n = len(prompts)
    cons = [constraint_factory(i) if constraint_factory else None for i in range(n)]
    eos = set(cons[0].vocab.eos) if cons[0] is not None else {tokenizer.eos_token_id}
    width = model.get_output_embeddings().weight.shape[0]
    bufs = [c.new_mask() if c is not None else None for c in cons]

    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else min(eos)
    encoded = [tokenizer.encode(p, add_special_tokens=True) if p else [start] for p in prompts]
    longest = max(len(e) for e in encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((n, longest), pad, dtype=torch.long)
    attn = torch.zeros((n, longest), dtype=torch.long)
    for i, e in enumerate(encoded):  # left padding
        ids[i, longest - len(e):] = torch.tensor(e)
        attn[i, longest - len(e):] = 1
    positions = (attn.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids.to(device), attention_mask=attn.to(device), position_ids=positions.to(device),
                use_cache=True)
    cache = _cache_of(out)
    last_logits = out.logits[:, -1, :].float().cpu()
    next_pos = attn.sum(-1)  # position of each row's next token
    results = [Result("", [], [], False) for _ in range(n)]
    done = [False] * n
    passes = 1
    t_mask = 0.0

    forced: list[list[int]] = [[] for _ in range(n)]
    while not all(done):
        new_tokens: list[list[int]] = []
        for i in range(n):
            if done[i]:
                new_tokens.append([])
                continue
            logits = last_logits[i]
            c = cons[i]
            if c is not None:
                t0 = time.perf_counter()
                allowed = mask_tensor(c, bufs[i], width)
                t_mask += time.perf_counter() - t0
                logits = logits.masked_fill(~allowed, float("-inf"))
            step = len(results[i].token_ids)
            if reference is not None:
                tok = reference[i][step] if step < len(reference[i]) else next(iter(eos))
                lp = None
            else:
                if temperature > 0:
                    probs = torch.softmax(logits / temperature, -1)
                    tok = int(torch.multinomial(probs, 1, generator=gen))
                else:
                    tok = int(torch.argmax(logits))
                lp = float(torch.log_softmax(logits / max(temperature, 1e-6), -1)[tok]) \
                    if temperature > 0 else float(torch.log_softmax(logits, -1)[tok])
            if c is not None:
                c.advance(tok)
            results[i].token_ids.append(tok)
            results[i].logprobs.append(lp)
            row = [tok]
            if tok in eos or len(results[i].token_ids) >= max_new_tokens:
                done[i] = True
                results[i].finished = tok in eos
            elif fast_forward and c is not None:
                room = max_new_tokens - len(results[i].token_ids)
                forced[i] = _forced_tokens(tokenizer, c, room)
            new_tokens.append(row)
        if fast_forward and any(forced):
            # Rows feed different numbers of tokens; the block is padded to the longest. Cap the
            # forced run near the median so padding never costs more than the tokens it carries
            # (a row's remaining forced text is simply forced again next step).
            lens = sorted(len(f) for f in forced if f)
            cap = lens[len(lens) // 2] if n > 1 else lens[-1]
            for i, f in enumerate(forced):
                c = cons[i]
                for tok in f[:cap]:
                    if reference is not None:
                        pos = len(results[i].token_ids)
                        if pos >= len(reference[i]) or reference[i][pos] != tok:
                            break
                    if not c.try_advance(tok):  # type: ignore[union-attr]
                        break
                    results[i].token_ids.append(tok)
                    results[i].logprobs.append(None)
                    results[i].forced += 1
                    new_tokens[i].append(tok)
                forced[i] = []
        if all(done):
            break
        k = max(len(r) for r in new_tokens)
        block = torch.full((n, k), pad, dtype=torch.long)
        mask_new = torch.zeros((n, k), dtype=torch.long)
        pos = torch.zeros((n, k), dtype=torch.long)
        for i, r in enumerate(new_tokens):
            if done[i] and not r:
                continue
            block[i, :len(r)] = torch.tensor(r)
            mask_new[i, :len(r)] = 1
            pos[i, :] = next_pos[i] + torch.arange(k).clamp(max=max(len(r) - 1, 0))
            next_pos[i] += len(r)
        attn = torch.cat([attn, mask_new], dim=1)
        out = model(input_ids=block.to(device), attention_mask=attn.to(device), position_ids=pos.to(device),
                    use_cache=True, **{cache_arg: cache})
        passes += 1
        cache = _cache_of(out)
        lens = torch.tensor([max(len(r), 1) - 1 for r in new_tokens])
        last_logits = out.logits[torch.arange(n), lens.to(out.logits.device), :].float().cpu()

    for r in results:
        body = [t for t in r.token_ids if t not in eos]
        r.text = tokenizer.decode(body, skip_special_tokens=True) if cons[0] is None else \
            b"".join(cons[0].vocab.bytes_of[t] or b"" for t in body).decode("utf-8", "replace")
        r.forward_passes = passes
        r.stats = {"mask_seconds": t_mask}
    return results
