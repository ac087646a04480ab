"""Our own generation loop: batched, with a KV cache, the constraint's mask, and fast-forward.

Fast-forward: where the constraint leaves exactly one continuation (most of ``- {op: compute,
compute_op: ``), the forced text is tokenized and appended without sampling; all of a row's new
tokens go through the model in one forward pass. Rows advance by different numbers of tokens, so a
step feeds a right-padded block: pad positions get attention mask 0 (and stay masked in the cache)
and explicit position ids keep every real token at its true position. Sliding-window layers get
masks written from those positions (see ``_Rows``), so a row decodes exactly as it would alone.

Prefill: the prompts' longest common token prefix (the instructions and k-shot examples of an
evaluation) goes through the model once, at batch size one, and its KV cache is copied to every
row; a ``PrefixCache`` keeps it across calls, so a whole evaluation computes it once. Each row's own
suffix follows as one left-padded block. Logits are computed only where a token is chosen (the
262k-wide head costs as much as the decoder at every position it runs on), and finished rows leave
the batch.

Budget: a constrained row whose token budget is about to run out is ended by
``Constraint.closing_text`` (the shortest way to a valid end), so its output still parses.

``generate`` is what evaluation calls, and what RL samples with (training/sampling.py: its own
``Head``, an ``Observer`` that records masks and hidden states, no fast-forward). With
``reference`` token ids it is teacher-forced (the chosen token at every sampling point is the
reference's): the generation benchmark uses that to time constrained and unconstrained decoding of
the very same traces. The loop's stages are the methods of ``_Loop``.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from .attention import with_packed_attention
from .constraint import Constraint


@dataclass
class Result:
    text: str
    token_ids: list[int]
    logprobs: list[float | None]  # None for fast-forwarded tokens (not sampled)
    finished: bool  # ended with EOS
    forced: int = 0  # tokens appended by fast-forward
    # The token budget ran out and the decoder wrote the trace's end (Constraint.closing_text): it
    # parses, but it is the decoder's, not the model's answer.
    budget_closed: bool = False
    forward_passes: int = 0
    stats: dict = field(default_factory=dict)


def mask_tensor(constraint: Constraint, buf: np.ndarray, width: int) -> torch.Tensor:
    """The constraint's allowed tokens as a bool tensor of the model's vocabulary width."""
    constraint.fill_mask(buf)
    return _bits(buf, width)


def _bits(buf: np.ndarray, width: int) -> torch.Tensor:
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
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Prompt ids with the tokenizer's special tokens, once (a chat template already wrote BOS)."""
    ids = tokenizer.encode(prompt, add_special_tokens=True)
    bos = tokenizer.bos_token_id
    if bos is not None and len(ids) > 1 and ids[0] == ids[1] == bos:
        ids = ids[1:]
    return ids


def _text_tokens(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False) if text else []


class PrefixCache:
    """The keys and values of one shared prompt prefix, kept across ``generate`` calls on the same
    model (an evaluation's instructions and shots). Owned by the caller, who drops it when the
    weights change."""

    def __init__(self) -> None:
        self.ids: tuple[int, ...] = ()
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.hits = 0

    def get(self, ids: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        if self.layers is None or tuple(ids) != self.ids:
            return None
        self.hits += 1
        return self.layers

    def put(self, ids: list[int], layers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.ids, self.layers = tuple(ids), layers


def _prefix_layers(model, ids: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """Each layer's keys and values for ``ids`` at batch size one, in a cache that keeps every
    position (sliding-window layers included), so that any slice of it can be reused."""
    from transformers import DynamicCache

    device = next(model.parameters()).device
    cache = DynamicCache()
    x = torch.tensor([ids], device=device)
    kw = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    out = model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=True, **{_CACHE_ARG(model): cache}, **kw)
    layers = getattr(_cache_of(out), "layers", None)
    if not layers or any(getattr(lay, "keys", None) is None or lay.keys.shape[-2] != len(ids) for lay in layers):
        return None  # a cache layout we cannot slice: the caller prefills in full
    return [(lay.keys, lay.values) for lay in layers]


def _left_padded_cache(layers: list[tuple[torch.Tensor, torch.Tensor]], pads: list[int], width: int) -> object:
    """A batch cache of ``width`` positions: row i is ``pads[i]`` empty slots, then the first
    ``width - pads[i]`` prefix positions (the layout of a left-padded prompt)."""
    from transformers import DynamicCache

    data = []
    for k, v in layers:
        kk = k.new_zeros((len(pads), *k.shape[1:-2], width, k.shape[-1]))
        vv = v.new_zeros((len(pads), *v.shape[1:-2], width, v.shape[-1]))
        for i, p in enumerate(pads):
            kk[i, ..., p:, :] = k[0, ..., :width - p, :]
            vv[i, ..., p:, :] = v[0, ..., :width - p, :]
        data.append((kk, vv))
    return DynamicCache(ddp_cache_data=data)


def _common_prefix(rows: list[list[int]]) -> int:
    first, n = rows[0], min(len(r) for r in rows)
    for k in range(n):
        t = first[k]
        if any(r[k] != t for r in rows):
            return k
    return n


class _Rows:
    """The active rows' model inputs: attention mask so far, next positions, the KV cache."""

    def __init__(self, model, pad: int, head: Head | None = None):
        self.model, self.pad = model, pad
        self.device = next(model.parameters()).device
        self.cache_arg = _CACHE_ARG(model)
        self.keep_arg = "logits_to_keep" in inspect.signature(model.forward).parameters
        self.head = head if head is not None else _plain_head(model)
        self.head_cache_arg = _CACHE_ARG(self.head.backbone) if self.head is not None else ""
        self.cache: object = None
        self.attn = torch.zeros((0, 0), dtype=torch.long)
        self.next_pos = torch.zeros(0, dtype=torch.long)
        self.real = torch.zeros((0, 0), dtype=torch.long)  # the last block fed: 1 at real tokens
        # Sliding-window layers count their window in cache columns, and a fast-forward step puts
        # pads between a row's real tokens: the window would then cover fewer real tokens than an
        # unbatched run sees. So for such models we write the masks from positions ourselves,
        # over a cache that keeps every column.
        config = _text_config(model)
        self.window = getattr(config, "sliding_window", None) \
            if "sliding_attention" in (getattr(config, "layer_types", None) or ()) else None
        if self.window:
            from transformers import DynamicCache

            self.cache = DynamicCache()  # full layers (the model's own would keep only the window)

    def feed(self, rows: list[list[int]], left: bool = False, vocab: torch.Tensor | None = None) -> torch.Tensor:
        """One forward pass over each row's new tokens, right-padded (left-padded for the prefill);
        the logits after each row's last new token, shape (rows, vocab). With ``vocab`` (sorted
        token ids: every token the rows' masks allow) only those logits are computed, the rest
        are -inf (a head that computes ``whole`` vocabularies itself is used in any case)."""
        n, k = len(rows), max(len(r) for r in rows)
        block = torch.full((n, k), self.pad, dtype=torch.long)
        mask_new = torch.zeros((n, k), dtype=torch.long)
        pos = torch.zeros((n, k), dtype=torch.long)
        for i, r in enumerate(rows):
            m = len(r)
            if left:  # pads first: every row's last token is in the last column
                block[i, k - m:] = torch.tensor(r)
                mask_new[i, k - m:] = 1
                pos[i] = (self.next_pos[i] + torch.arange(k) - (k - m)).clamp(min=0)
            else:
                block[i, :m] = torch.tensor(r)
                mask_new[i, :m] = 1
                pos[i] = self.next_pos[i] + torch.arange(k).clamp(max=max(m - 1, 0))
            self.next_pos[i] += m
        self.attn = torch.cat([self.attn, mask_new], dim=1)
        self.real = mask_new
        last = torch.tensor([k - 1 if left else max(len(r), 1) - 1 for r in rows])
        mask = self._position_masks(pos) if self.window else self.attn.to(self.device)
        if self.head is not None and (vocab is not None or self.head.whole):
            return self._feed_head(block, pos, last, vocab, mask)
        kw: dict = {self.cache_arg: self.cache} if self.cache is not None else {}
        first = int(last.min())
        if self.keep_arg:  # an int (the last k - first positions): a per-row tensor means other things before 5.24
            kw["logits_to_keep"] = k - first
        out = self.model(input_ids=block.to(self.device), attention_mask=mask, position_ids=pos.to(self.device),
                         use_cache=True, **kw)
        self.cache = _cache_of(out)
        at = (last - first) if self.keep_arg else last
        logits = out.logits[torch.arange(n), at.to(out.logits.device)]
        return logits.float().cpu()

    def _position_masks(self, pos: torch.Tensor) -> dict[str, torch.Tensor]:
        """Boolean masks (rows, 1, new, columns) by position: a query sees the real tokens at or
        before its position, and a sliding layer only those less than a window back. (A pad
        query gets its row's last position, so no mask row is empty.)"""
        kv = torch.where(self.attn.bool(), self.attn.cumsum(-1) - 1, torch.iinfo(torch.long).max)[:, None, None, :]
        q = pos[:, None, :, None]
        full = kv <= q
        return {"full_attention": full.to(self.device),
                "sliding_attention": (full & (q - kv < self.window)).to(self.device)}

    def _feed_head(self, block: torch.Tensor, pos: torch.Tensor, last: torch.Tensor,
                   vocab: torch.Tensor | None, mask: object) -> torch.Tensor:
        head = self.head
        assert head is not None
        kw: dict = {self.head_cache_arg: self.cache} if self.cache is not None else {}
        out = head.backbone(input_ids=block.to(self.device), attention_mask=mask, position_ids=pos.to(self.device),
                            use_cache=True, **kw)
        self.cache = _cache_of(out)
        return head.logits(out.last_hidden_state[torch.arange(len(last)), last.to(self.device)], vocab)

    def keep(self, idx: list[int]) -> None:
        """Drop every row not in ``idx`` (positions among the active rows)."""
        sel = torch.tensor(idx, dtype=torch.long)
        self.attn, self.next_pos = self.attn[sel], self.next_pos[sel]
        self.cache.batch_select_indices(sel.to(self.device))  # type: ignore[attr-defined]


class Head:
    """The output head as a plain linear map of the backbone's last hidden state (with Gemma's
    logit soft-cap), computed only for the tokens asked for: on Gemma's 262k vocabulary the head
    costs as much as the decoder, and under the constraint only the allowed rows matter (greedy
    choice and masked log-probabilities alike)."""

    # False: logits over the whole vocabulary come from the model's own forward, not from here.
    whole = False

    def __init__(self, backbone: torch.nn.Module, weight: torch.Tensor, cap: float | None):
        self.backbone, self.weight, self.cap = backbone, weight, cap
        self.width = weight.shape[0]

    def logits(self, h: torch.Tensor, vocab: torch.Tensor | None) -> torch.Tensor:
        """Float32 logits on the CPU, (rows, width), for the last hidden states ``h``: those of
        ``vocab`` (sorted token ids), -inf elsewhere."""
        ids, w = self.rows(vocab, h.device)
        logits = torch.full((len(h), self.width), float("-inf"))
        logits[:, ids] = self.scores(h, w).cpu()
        return logits

    def rows(self, vocab: torch.Tensor | None, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The token ids (on the CPU) whose logits are computed, and their head rows."""
        assert vocab is not None  # the model's own forward computes the whole vocabulary (whole=False)
        return vocab, self.weight.index_select(0, vocab.to(device))

    def scores(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Float32 soft-capped logits of ``h`` against rows ``w``."""
        return softcap((h @ w.T).float(), self.cap)


def softcap(logits: torch.Tensor, cap: float | None) -> torch.Tensor:
    """Gemma's final logit soft-cap, ``cap * tanh(logits / cap)`` (none without a cap)."""
    return logits if not cap else cap * torch.tanh(logits / cap)


def _plain_head(model) -> Head | None:
    """The model's head where its logits are a plain linear map of the backbone's last hidden
    state; None where a model does more (biases, logit scales) and must be run whole."""
    head = model.get_output_embeddings()
    backbone = getattr(model, getattr(model, "base_model_prefix", ""), None)
    config = _text_config(model)
    if not isinstance(head, torch.nn.Linear) or head.bias is not None or backbone is None or backbone is model:
        return None
    if any(getattr(config, a, None) not in (None, 1, 1.0) for a in ("logit_scale", "logits_scaling")):
        return None
    return Head(backbone, head.weight, getattr(config, "final_logit_softcapping", None))


def _text_config(model):
    """The language model's config (a multimodal model nests it)."""
    return model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config


def _cache_of(out) -> object:
    return getattr(out, "cache", None) or out.past_key_values


class Observer:
    """What a caller may watch beyond the results (RL records each step's allowed tokens and the
    hidden states of every position fed). These methods do nothing."""

    watches_masks = False  # True: ``masked`` is called (the decoder then lists each row's allowed ids)

    def masked(self, row: int, ids: np.ndarray) -> None:
        """Row ``row``'s allowed tokens (sorted ids below the head's width) where its next token is
        chosen; not where the decoder forces or closes."""

    def prefix(self, lengths: list[int]) -> None:
        """The last forward pass ran the prompts' shared prefix at batch size one; row i's prompt
        starts with its first ``lengths[i]`` positions."""

    def fed(self, rows: list[int], real: torch.Tensor) -> None:
        """The last forward pass ran a block whose batch row b is row ``rows[b]``; ``real`` (batch,
        columns) is 1 at its real tokens, in order."""


class _Loop:
    """One ``generate`` call, stage by stage: ``prefill``; then each step ``advance`` every row (a
    chosen token, or the decoder's closing), ``fast_forward`` the forced tokens after it and
    ``feed`` the new tokens through the model; ``finish``."""

    def __init__(self, model, tokenizer, cons: list[Constraint | None], *, max_new_tokens: int,
                 temperature: float, generator: torch.Generator, fast_forward: bool,
                 reference: list[list[int]] | None, stop_strings: list[str] | None, close_on_budget: bool,
                 head: Head | None, observer: Observer):
        self.model, self.tokenizer, self.cons = model, tokenizer, cons
        self.max_new_tokens, self.temperature, self.gen = max_new_tokens, temperature, generator
        self.ff, self.reference, self.stop_strings = fast_forward, reference, stop_strings
        self.close_on_budget, self.observer = close_on_budget, observer
        self.eos = set(cons[0].vocab.eos) if cons[0] is not None else {tokenizer.eos_token_id}
        self.width = model.get_output_embeddings().weight.shape[0]
        self.bufs = [c.new_mask() if c is not None else None for c in cons]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.state = _Rows(model, pad, head)
        self.results = [Result("", [], [], False) for _ in cons]
        self.t_mask = 0.0
        self.passes = 0

    def run(self, prompts: list[str | list[int]], prefix_cache: PrefixCache | None) -> list[Result]:
        start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else min(self.eos)
        encoded = [(_encode_prompt(self.tokenizer, p) if isinstance(p, str) else list(p)) or [start]
                   for p in prompts]
        logits = self.prefill(encoded, prefix_cache)
        active = list(range(len(encoded)))  # original row of each active position
        while active:
            new_tokens, runs = zip(*(self.advance(i, logits[j]) for j, i in enumerate(active)), strict=True)
            if self.ff:
                self.fast_forward(active, list(new_tokens), list(runs))
            active, logits = self.feed(active, list(new_tokens))
        return self.finish()

    # ---------------------------------------------------------------- prefill

    def prefill(self, encoded: list[list[int]], prefix_cache: PrefixCache | None) -> torch.Tensor:
        """The shared prompt prefix once (or from ``prefix_cache``), then the rest of every row;
        the logits for each row's first token."""
        n, state = len(encoded), self.state
        shared = min(_common_prefix(encoded), min(len(e) for e in encoded) - 1)  # every row keeps a token
        longest = max(len(e) for e in encoded)
        pads = [longest - len(e) for e in encoded]
        layers = None
        if shared >= 8 and n * shared >= 64 and max(pads) <= shared:
            prefix = encoded[0][:shared]
            layers = prefix_cache.get(prefix) if prefix_cache is not None else None
            if layers is None:
                layers = _prefix_layers(self.model, prefix)
                self.passes += 1
                if layers is not None:
                    self.observer.prefix([shared - p for p in pads])
                    if prefix_cache is not None:
                        prefix_cache.put(prefix, layers)
        # The layout of a left-padded batch (every row ends at the same column, as transformers pads):
        # the cache holds the first `cols` columns, copied from the shared prefix, and one block of
        # equal width computes the rest. No pad sits between real tokens (which is what a model's own
        # column-counted sliding window needs; `_Rows` writes position masks for those anyway).
        cols = shared if layers is not None else 0
        full = torch.ones((n, longest), dtype=torch.long)
        for i, p in enumerate(pads):
            full[i, :p] = 0
        state.cache = _left_padded_cache(layers, pads, cols) if layers is not None else state.cache
        state.attn = full[:, :cols]
        state.next_pos = state.attn.sum(-1)  # positions count real tokens only
        vocab = self.masks(range(n))
        logits = state.feed([e[max(cols - p, 0):] for e, p in zip(encoded, pads, strict=True)], left=True,
                            vocab=vocab)
        self.passes += 1
        self.observer.fed(list(range(n)), state.real)
        return logits

    def masks(self, rows: Iterable[int]) -> torch.Tensor | None:
        """Fill the rows' masks for their next token (before the forward pass, so that the head
        runs only on the tokens they allow); see ``_next_masks``."""
        t0 = time.perf_counter()
        vocab = _next_masks(self.cons, self.bufs, rows)
        self.t_mask += time.perf_counter() - t0
        return vocab

    # ---------------------------------------------------------------- one row's step

    def advance(self, i: int, logits: torch.Tensor) -> tuple[list[int], list[int]]:
        """Row i's next token: (the tokens to feed, the forced run after them)."""
        c, res = self.cons[i], self.results[i]
        if self.close(i):
            return [], []
        tok, lp = self.choose(i, logits)
        if c is not None:
            c.advance(tok)
        res.token_ids.append(tok)
        res.logprobs.append(lp)
        n = len(res.token_ids)
        if tok in self.eos or n >= self.max_new_tokens or \
                (c is None and self.stop_strings and _stopped(self.tokenizer, res.token_ids, self.stop_strings)):
            res.finished = tok in self.eos or c is None and n < self.max_new_tokens
            return [], []
        forced = _forced_tokens(self.tokenizer, c, self.max_new_tokens - n) if self.ff and c is not None else []
        return [tok], forced

    def close(self, i: int) -> bool:
        """End a constrained row whose budget is about to run out with the shortest valid end."""
        c, res = self.cons[i], self.results[i]
        room = self.max_new_tokens - len(res.token_ids)
        if c is None or not self.close_on_budget or self.reference is not None or room > 64:
            return False
        closing = _closing(self.tokenizer, c, room)
        if closing is None:
            return False
        res.token_ids += closing
        res.logprobs += [None] * len(closing)
        res.forced += len(closing)
        res.finished = res.budget_closed = True
        res.stats["closed"] = True
        return True

    def choose(self, i: int, logits: torch.Tensor) -> tuple[int, float | None]:
        """Row i's next token under its mask (filled before the forward pass, see ``masks``), and
        its log-probability (None where it is the reference's)."""
        c, res = self.cons[i], self.results[i]
        ids = None
        if c is not None:
            t0 = time.perf_counter()
            allowed = _bits(self.bufs[i], self.width)  # type: ignore[arg-type]
            # the mask unpacked once: its ids serve the observer and the draw alike
            ids = np.flatnonzero(allowed.numpy()) if self.observer.watches_masks or self.temperature > 0 else None
            self.t_mask += time.perf_counter() - t0
            if self.observer.watches_masks:
                self.observer.masked(i, ids)  # type: ignore[arg-type]
            logits = logits.masked_fill(~allowed, float("-inf"))
        if self.reference is not None:
            step, ref = len(res.token_ids), self.reference[i]
            return (ref[step] if step < len(ref) else next(iter(self.eos))), None
        if self.temperature <= 0:
            tok = int(torch.argmax(logits))
            return tok, float(torch.log_softmax(logits, -1)[tok])
        return self.draw(logits, None if ids is None else torch.from_numpy(ids))

    def draw(self, logits: torch.Tensor, ids: torch.Tensor | None) -> tuple[int, float]:
        """A token from softmax(logits / temperature) and its log-probability there. Under a mask
        the draw is over the allowed tokens alone (the same distribution; the vocabulary-wide draw
        costs a random number per token), and a token forced by the mask draws nothing."""
        t = self.temperature
        if ids is None:
            tok = int(torch.multinomial(torch.softmax(logits / t, -1), 1, generator=self.gen))
            return tok, float(torch.log_softmax(logits / t, -1)[tok])
        if len(ids) == 1:
            return int(ids[0]), 0.0
        logp = torch.log_softmax(logits[ids] / t, -1)
        k = int(torch.multinomial(logp.exp(), 1, generator=self.gen))
        return int(ids[k]), float(logp[k])

    # ---------------------------------------------------------------- fast-forward

    def fast_forward(self, active: list[int], new_tokens: list[list[int]], runs: list[list[int]]) -> None:
        """Append each row's forced tokens (those the constraint takes) to its output and its block."""
        # Rows feed different numbers of tokens; the block is padded to the longest. Cap the forced
        # run near the median so padding never costs more than the tokens it carries (a row's
        # remaining forced text is simply forced again next step).
        lens = sorted(len(f) for f in runs if f)
        if not lens:
            return
        cap = lens[len(lens) // 2] if len(active) > 1 else lens[-1]
        for j, (i, f) in enumerate(zip(active, runs, strict=True)):
            res, c = self.results[i], self.cons[i]
            for tok in f[:cap]:
                if self.reference is not None:
                    pos = len(res.token_ids)
                    if pos >= len(self.reference[i]) or self.reference[i][pos] != tok:
                        break
                if not c.try_advance(tok):  # type: ignore[union-attr]
                    break
                res.token_ids.append(tok)
                res.logprobs.append(None)
                res.forced += 1
                new_tokens[j].append(tok)

    # ---------------------------------------------------------------- feed, finish

    def feed(self, active: list[int], new_tokens: list[list[int]]) -> tuple[list[int], torch.Tensor | None]:
        """Drop the finished rows and run the others' new tokens: the active rows and their logits."""
        keep = [j for j, r in enumerate(new_tokens) if r]
        if not keep:
            return [], None
        if len(keep) < len(active):
            self.state.keep(keep)
            active = [active[j] for j in keep]
            new_tokens = [new_tokens[j] for j in keep]
        logits = self.state.feed(new_tokens, vocab=self.masks(active))
        self.passes += 1
        self.observer.fed(active, self.state.real)
        return active, logits

    def finish(self) -> list[Result]:
        vocab = self.cons[0].vocab if self.cons[0] is not None else None
        for r in self.results:
            body = [t for t in r.token_ids if t not in self.eos]
            if vocab is None:
                r.text = self.tokenizer.decode(body, skip_special_tokens=True)
                if self.stop_strings:
                    r.text = _cut(r.text, self.stop_strings)
            else:
                r.text = b"".join(vocab.bytes_of[t] or b"" for t in body).decode("utf-8", "replace")
            r.forward_passes = self.passes
            r.stats["mask_seconds"] = self.t_mask
        return self.results


@torch.no_grad()
@with_packed_attention
def generate(
    model,
    tokenizer,
    prompts: list[str] | list[list[int]],
    constraint_factory: Callable[[int], Constraint] | None = None,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    seed: int = 0,
    fast_forward: bool = True,
    reference: list[list[int]] | None = None,
    stop_strings: list[str] | None = None,
    prefix_cache: PrefixCache | None = None,
    close_on_budget: bool = True,
    *,
    generator: torch.Generator | None = None,
    head: Head | None = None,
    observer: Observer | None = None,
) -> list[Result]:
    """Generate one completion per prompt (its text, or its token ids as they are).
    ``constraint_factory(i)`` gives row i's constraint (None: unconstrained; an unconstrained row
    also ends at any of ``stop_strings``). Greedy when ``temperature`` is 0; else sampling with
    ``generator`` (by default a CPU generator seeded with ``seed``). ``head`` computes the logits
    in place of the model's own head; ``observer`` watches the loop."""
    cons = [constraint_factory(i) if constraint_factory else None for i in range(len(prompts))]
    gen = generator if generator is not None else torch.Generator(device="cpu").manual_seed(seed)
    loop = _Loop(model, tokenizer, cons, max_new_tokens=max_new_tokens, temperature=temperature, generator=gen,
                 fast_forward=fast_forward, reference=reference, stop_strings=stop_strings,
                 close_on_budget=close_on_budget, head=head, observer=observer or Observer())
    return loop.run(list(prompts), prefix_cache)


def _next_masks(cons: list[Constraint | None], bufs: list, rows: Iterable[int]) -> torch.Tensor | None:
    """Fill the rows' masks for their next token and return every token any of them allows
    (sorted ids), or None where a row is unconstrained or the union is most of the vocabulary."""
    union = None
    for i in rows:
        c = cons[i]
        if c is None:
            return None
        c.fill_mask(bufs[i])
        union = bufs[i].copy() if union is None else np.bitwise_or(union, bufs[i], out=union)
    if union is None:
        return None
    ids = np.nonzero(np.unpackbits(union.view(np.uint8), bitorder="little"))[0]
    if len(ids) == 0 or len(ids) * 2 > len(union) * 32:  # gathering most of the head costs more than it saves
        return None
    return torch.from_numpy(ids.astype(np.int64))


def _closing(tokenizer, c: Constraint, room: int) -> list[int] | None:
    """The tokens that end the trace validly (EOS last) when they no longer fit later, else None."""
    text = c.closing_text()
    if text is None:
        return None
    ids = _text_tokens(tokenizer, text)
    if len(ids) + 1 + 4 < room:  # still room for the model to end it itself
        return None
    trial = c.copy()
    if not all(trial.try_advance(tok) for tok in ids):
        return None  # a tokenization the constraint cannot follow: the mask goes on deciding
    for tok in ids:
        c.advance(tok)
    end = min(c.vocab.eos)
    c.advance(end)
    return [*ids, end]


def _stopped(tokenizer, ids: list[int], stops: list[str]) -> bool:
    tail = tokenizer.decode(ids[-12:], skip_special_tokens=True)
    return any(s in tail for s in stops)


def _cut(text: str, stops: list[str]) -> str:
    end = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:end]
