"""The tokens a grammar-constrained decoder can ever emit, for any question and any trace.

A token can be allowed at some decoding state only if its bytes occur somewhere inside some
canonical trace (the decoder only allows tokens that keep the text a prefix of a valid canonical
trace). So the set of *factors* of the canonical language, intersected with the vocabulary, plus
EOS, is a superset of every mask the decoder will ever produce. A softmax restricted to it gives
the same distribution as the full softmax renormalised over that set, and every constrained
decoding step renormalises over a subset of it: training on it is consistent with constrained
decoding, and it is far smaller than a 262k vocabulary.

The factor test runs the canonical automaton's NFA (``tracelang.decoding.automaton``, derived from
``grammar/trace.lark``) from *every* node at once, walking the vocabulary in sorted order so that
tokens sharing a prefix share the work.
"""

from __future__ import annotations

from functools import cache

from ..decoding.automaton import automaton
from ..decoding.vocab import eos_ids, token_bytes
from ..decoding.vocab import fingerprint as tokenizer_fingerprint


class _Factors:
    """Subset simulation of the NFA started from all of its nodes, with interned, memoised states."""

    def __init__(self, surface: str = "yaml") -> None:
        nfa = automaton(surface).nfa
        self.eps, self.moves = nfa.eps, nfa.moves
        self.states: list[frozenset[int]] = []
        self.index: dict[frozenset[int], int] = {}
        self.trans: dict[tuple[int, int], int] = {}  # (state, byte) -> state; -1 = dead
        self.start = self._intern(frozenset(range(len(self.eps))))

    def _intern(self, nodes: frozenset[int]) -> int:
        seen, stack = set(nodes), list(nodes)
        while stack:
            for m in self.eps[stack.pop()]:
                if m not in seen:
                    seen.add(m)
                    stack.append(m)
        key = frozenset(seen)
        sid = self.index.get(key)
        if sid is None:
            sid = self.index[key] = len(self.states)
            self.states.append(key)
        return sid

    def step(self, sid: int, byte: int) -> int:
        hit = self.trans.get((sid, byte))
        if hit is None:
            out = frozenset(dst for n in self.states[sid] for cs, dst in self.moves[n] if byte in cs)
            hit = self._intern(out) if out else -1
            self.trans[(sid, byte)] = hit
        return hit


def factor_tokens(pieces: list[bytes | None], surface: str = "yaml") -> list[int]:
    """Ids of the tokens whose bytes occur in some canonical trace of ``surface`` (sorted)."""
    f = _Factors(surface)
    order = sorted((b, i) for i, b in enumerate(pieces) if b)
    out: list[int] = []
    prev = b""
    stack = [f.start]  # stack[j]: state after the first j bytes of `prev`
    for data, tid in order:
        common = 0
        limit = min(len(prev), len(data), len(stack) - 1)
        while common < limit and prev[common] == data[common]:
            common += 1
        del stack[common + 1:]
        sid = stack[-1]
        for byte in data[common:]:
            if sid < 0:
                break
            sid = f.step(sid, byte)
            stack.append(sid)
        # `stack` may stop short after a dead byte; a later token sharing that prefix recomputes less
        if sid >= 0 and len(stack) == len(data) + 1:
            out.append(tid)
        prev = data if len(stack) == len(data) + 1 else data[:len(stack) - 1]
    return sorted(out)


@cache
def _emittable(fp: str, tokenizer_id: int) -> tuple[int, ...]:  # noqa: ARG001 - fp keys the cache
    raise AssertionError("filled by emittable_ids")


_CACHE: dict[tuple[str, str], tuple[int, ...]] = {}


def emittable_ids(tokenizer, surface: str = "yaml") -> tuple[int, ...]:
    """EOS plus every token a constrained decoder writing ``surface`` could emit, sorted (memoised
    per tokenizer and surface)."""
    fp = tokenizer_fingerprint(tokenizer)
    hit = _CACHE.get((fp, surface))
    if hit is None:
        ids = set(factor_tokens(token_bytes(tokenizer), surface)) | set(eos_ids(tokenizer))
        hit = _CACHE[(fp, surface)] = tuple(sorted(ids))
    return hit
