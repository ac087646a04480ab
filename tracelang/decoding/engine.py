"""Token masks: the automaton and the guide walked in lockstep with the vocabulary's byte trie.

A decoding state is ``(kernel, guide, buf)``: the DFA kernel, the semantic snapshot and the text of
the slot being written. A token is allowed iff feeding its bytes one by one never fails; since every
state the automaton and the guide allow has a completion, an allowed token never leads to a dead end.

Computing that for a 262k vocabulary in microseconds rests on four caches, all keyed by things that
do not depend on the trace being written (so they fill once and are shared by every row):

- *skeletons*: from a kernel outside a slot, the tokens that stay on literal text (a bitmask) and
  the trie nodes where the walk meets something the guide decides (the *frontier*);
- *name bulks*: at a trie node where a defining name starts or goes on, the tokens that stay inside
  the name and those that end it then go on with literal text, by their name part — so a deny-list
  of defined names is a handful of bit clears;
- *allow-list entries*: for an allowed string (a defined name, an op, a grounded number) at a trie
  node, the tokens that spell a prefix of it;
- the automaton's own transition cache.
"""

from __future__ import annotations

import numpy as np

from ..errors import TracelangError
from .automaton import Automaton, automaton
from .guide import NAME_CAP, Config, Guide
from .vocab import Vocab

_EMPTY: frozenset = frozenset()


class Rejected(TracelangError, ValueError):
    """A token the constraint does not allow."""


class _Bulk:
    """Tokens under one trie node, read as (more of) a defining name then what follows it."""

    __slots__ = ("stay", "stay_max", "stay_rows", "stay_runs", "near_cap", "exits", "exit_max", "by_content",
                 "semantic")

    def __init__(self) -> None:
        self.stay: np.ndarray | None = None  # bitmask
        self.stay_max = 0
        self.stay_rows: np.ndarray | None = None
        self.stay_runs: np.ndarray | None = None
        self.near_cap: dict[int, np.ndarray] = {}  # name length so far -> bitmask of the rows that fit
        self.exits: np.ndarray | None = None  # bitmask of pure exits
        self.exit_max = 0
        self.by_content: dict[str, list[int]] = {}  # name part -> uniq rows (pure exits)
        self.semantic: list[int] = []  # uniq rows checked one by one (what follows the name is decided)


class Compiled:
    """The grammar automaton bound to one vocabulary, with the mask caches."""

    def __init__(self, vocab: Vocab, auto: Automaton | None = None):
        self.vocab = vocab
        self.auto = auto or automaton()
        self.words = vocab.words
        self.skeletons: dict[tuple, tuple[np.ndarray, list]] = {}
        self.skeleton_deps: dict[tuple[int, frozenset], list] = {}
        self.allow_results: dict[tuple, tuple] = {}
        self.num_results: dict[tuple, tuple] = {}
        self.bulks: dict[tuple, _Bulk] = {}
        self.allow_entries: dict[tuple, tuple[list[int], int, int, tuple[int, ...]]] = {}
        self.runs: dict[tuple, tuple] = {}
        self.start_guide_cache: dict[Config, Guide] = {}
        self.eos_mask = np.zeros(self.words, dtype=np.uint32)
        for t in vocab.eos:
            if t < vocab.size:
                self.eos_mask[t >> 5] |= np.uint32(1 << (t & 31))

    # ---------------------------------------------------------------- char-level stepping

    def step(self, kid: int, g: Guide, buf: str, c: int) -> tuple[int, Guide, str] | None:
        a = self.auto
        k = a.kernels[kid]
        cont = k.slot is not None and c in k.cont
        if k.slot is not None and not cont:
            g = g.complete(k.slot, buf)  # type: ignore[assignment]
            if g is None:
                return None
        allowed = g.allowed(k.decisions, kid) if (k.decisions and not cont) else _EMPTY
        r = a.trans.get((kid, allowed, c), False)
        if r is False:
            r = a.move(kid, c, allowed)
        if r is None:
            return None
        kid2, events = r
        for e in events:
            g = g.event(e)
        k2 = a.kernels[kid2]
        if k2.slot is None:
            return kid2, g, ""
        text = buf + chr(c) if cont else chr(c)
        if not self.prefix_ok(g, k2.slot, text):
            return None
        return kid2, g, text

    def prefix_ok(self, g: Guide, slot, text: str) -> bool:
        kind, spec = g.slot(slot)
        if kind == "allow":
            pre = g.memo.get(("pre", slot))
            if pre is None:
                pre = frozenset(s[:i] for s in spec for i in range(1, len(s) + 1))  # type: ignore[union-attr]
                g.memo[("pre", slot)] = pre
            return text in pre
        if kind == "deny":  # a name at the cap must end there, so it may not be a taken one
            return len(text) < NAME_CAP or (len(text) == NAME_CAP and text not in spec)  # type: ignore[operator]
        if kind == "name":
            return len(text) <= NAME_CAP
        return spec.prefix_ok(text)  # type: ignore[union-attr]

    def step_bytes(self, state: tuple[int, Guide, str], data: bytes) -> tuple[int, Guide, str] | None:
        kid, g, buf = state
        for c in data:
            r = self.step(kid, g, buf, c)
            if r is None:
                return None
            kid, g, buf = r
        return kid, g, buf

    def eos_ok(self, kid: int, g: Guide, buf: str) -> bool:
        k = self.auto.kernels[kid]
        if k.slot is not None:
            g = g.complete(k.slot, buf)  # type: ignore[assignment]
            if g is None:
                return False
        return k.accepting and g.end_ok()

    def next_bytes(self, kid: int, g: Guide, buf: str) -> list[int]:
        """The bytes that may come next (for fast-forward and tests)."""
        return [c for c in sorted(self.auto.kernels[kid].chars) if self.step(kid, g, buf, c) is not None]

    # ---------------------------------------------------------------- masks

    def fill(self, kid: int, g: Guide, buf: str, out: np.ndarray) -> None:
        """Write the allowed-token bitmask of a state into ``out`` (uint32 words)."""
        k = self.auto.kernels[kid]
        acc = _Acc()
        v = self.vocab
        if k.slot is None:
            pure, frontier = self.skeleton(kid, g)
            np.copyto(out, pure)
            for lo, hi, depth, fkid, events, only in frontier:
                fg = g
                for e in events:
                    fg = fg.event(e)
                self.walk(lo, hi, depth, fkid, fg, "", acc, only)
        else:
            out.fill(0)
            self.walk(0, len(v.uniq), 0, kid, g, buf, acc)
        acc.apply(out, v)
        if self.eos_ok(kid, g, buf):
            np.bitwise_or(out, self.eos_mask, out=out)

    def skeleton(self, kid: int, g: Guide) -> tuple[np.ndarray, list]:
        """The literal part of a kernel's mask, keyed by the decisions the guide takes on the way."""
        k = self.auto.kernels[kid]
        allowed = g.allowed(k.decisions, kid) if k.decisions else _EMPTY
        deps = self.skeleton_deps.get((kid, allowed))
        if deps is None:
            deps = self._skeleton(kid, allowed, None)[2]
            self.skeleton_deps[(kid, allowed)] = deps
        answers = []
        for dk, events in deps:
            dg = g
            for e in events:
                dg = dg.event(e)
            answers.append(dg.allowed(self.auto.kernels[dk].decisions, dk))
        key = (kid, allowed, tuple(answers))
        hit = self.skeletons.get(key)
        if hit is None:
            pure, frontier, _ = self._skeleton(kid, allowed, dict(zip(deps, answers, strict=True)))
            hit = self.skeletons[key] = (pure, frontier)
        return hit

    def _skeleton(self, kid: int, allowed: frozenset, decided: dict | None) -> tuple[np.ndarray, list, list]:
        """Walk literal text from a kernel; stop where a slot starts. ``decided`` gives the allowed
        decisions at the kernels met on the way (None: allow all, and list those kernels)."""
        v, a = self.vocab, self.auto
        rows: list[int] = []
        frontier: list = []
        deps: list = []
        stack = [(0, len(v.uniq), 0, kid, ())]
        while stack:
            lo, hi, depth, cur, events = stack.pop()
            k = a.kernels[cur]
            if k.slot is not None:
                frontier.append((lo, hi, depth, cur, events, None))
                continue
            if depth and lo < hi and v.lens[lo] == depth:
                rows.append(lo)
                lo += 1
            if lo >= hi:
                continue
            if depth == 0:
                allw = allowed
            elif not k.decisions:
                allw = _EMPTY
            elif decided is None:
                if (cur, events) not in deps:
                    deps.append((cur, events))
                allw = frozenset(k.decisions)
            else:
                allw = decided[(cur, events)]
            slot_chars: frozenset[int] = frozenset()
            for target, chars, ev in self.fanout(cur, allw):
                if a.kernels[target].slot is not None:
                    slot_chars |= chars
                    continue
                for c in chars:
                    a_, b_ = v.child(lo, hi, depth, c)
                    if a_ < b_:
                        stack.append((a_, b_, depth + 1, target, events + ev))
            if slot_chars:
                frontier.append((lo, hi, depth, cur, events, slot_chars))
        mask = v.mask_of(np.array(rows, dtype=np.int64)) if rows else np.zeros(self.words, dtype=np.uint32)
        return mask, frontier, deps

    def _enters_slot(self, kid: int) -> bool:
        a = self.auto
        hit = a.__dict__.setdefault("_enters", {}).get(kid)
        if hit is None:
            nfa = a.nfa
            hit = any(nfa.first[n] and nfa.occurrences[nfa.occ_of[n]].slot is not None
                      for n in a.kernels[kid].closure if nfa.occ_of[n] >= 0)
            a._enters[kid] = hit  # type: ignore[attr-defined]
        return hit

    # ---------------------------------------------------------------- the guided walk

    def walk(self, lo: int, hi: int, depth: int, kid: int, g: Guide, buf: str, acc: _Acc,
             only: frozenset[int] | None = None) -> None:
        """Add the tokens under trie node [lo, hi) (``depth`` bytes consumed) allowed from the state
        (kid, g, buf); ``only``: take just these next bytes (the rest was done by a skeleton)."""
        v, a = self.vocab, self.auto
        if lo < hi and v.lens[lo] == depth:
            if depth and only is None:
                acc.rows.append(lo)
            lo += 1
        if lo >= hi:
            return
        k = a.kernels[kid]
        if k.slot is not None:
            kind, spec = g.slot(k.slot)
            if kind in ("deny", "name"):
                self.bulk(lo, hi, depth, kid, g, buf, spec if kind == "deny" else _EMPTY, acc)  # type: ignore[arg-type]
                return
            if kind == "allow":
                self.allow(lo, hi, depth, kid, g, buf, spec, acc)  # type: ignore[arg-type]
                return
            if kind == "num" and spec.fast and only is None \
                    and self.num_fast(lo, hi, depth, kid, g, buf, spec, acc, None):  # type: ignore[union-attr]
                return
            for c in k.chars:
                a_, b_ = v.child(lo, hi, depth, c)
                if a_ < b_:
                    st = self.step(kid, g, buf, c)
                    if st is not None:
                        self.walk(a_, b_, depth + 1, st[0], st[1], st[2], acc)
            return
        allowed = g.allowed(k.decisions, kid) if k.decisions else _EMPTY
        entering: dict = {}  # allow-list slots entered from here: slot -> (bytes, spec)
        numbers: dict = {}  # number slots entered from here
        for target, chars, events in self.fanout(kid, allowed):
            if only is not None:
                chars = chars & only
                if not chars:
                    continue
            kt = a.kernels[target]
            if kt.slot is not None:
                sg = g
                for e in events:
                    sg = sg.event(e)
                kind, spec = sg.slot(kt.slot)
                if kind in ("deny", "name") and len(chars) > 1:
                    self.bulk(lo, hi, depth, target, sg, "", spec if kind == "deny" else _EMPTY, acc,  # type: ignore[arg-type]
                              enter=(kid, allowed, chars, g))
                    continue
                if kind == "allow" and not events:
                    prev = entering.get(kt.slot)
                    entering[kt.slot] = ((prev[0] | chars) if prev else chars, spec)
                    continue
                if kind == "num" and not events and spec.fast:  # type: ignore[union-attr]
                    prev = numbers.get(kt.slot)
                    numbers[kt.slot] = ((prev[0] | chars) if prev else chars, spec)
                    continue
            for c in chars:
                a_, b_ = v.child(lo, hi, depth, c)
                if a_ < b_:
                    st = self.step(kid, g, buf, c)
                    if st is not None:
                        self.walk(a_, b_, depth + 1, st[0], st[1], st[2], acc)
        for chars, spec in entering.values():
            self.allow(lo, hi, depth, kid, g, "", tuple(s for s in spec if ord(s[0]) in chars), acc, entering=True)
        for chars, spec in numbers.values():
            if not self.num_fast(lo, hi, depth, kid, g, "", spec, acc, (chars, allowed)):
                for c in chars:
                    a_, b_ = v.child(lo, hi, depth, c)
                    if a_ < b_:
                        st = self.step(kid, g, buf, c)
                        if st is not None:
                            self.walk(a_, b_, depth + 1, st[0], st[1], st[2], acc)

    def num_fast(self, lo: int, hi: int, depth: int, kid: int, g: Guide, buf: str, spec, acc: _Acc,
                 enter: tuple | None) -> bool:
        """A number slot whose spec refuses finitely many values: any prefix the regex and the
        canonical shape allow can be completed, so the tokens staying inside the number depend on
        the trie node and kernel only (cached); tokens ending it are walked with the guide.
        False when the literal is too close to its length limit (the caller walks byte by byte)."""
        key = (lo, hi, depth, kid, enter)
        hit = self.num_results.get(key)
        if hit is None:
            hit = self.num_results[key] = self._num_walk(lo, hi, depth, kid, buf, enter)
        rows, exits, longest = hit
        if len(buf) + longest > spec.max_chars - 4:
            return False
        acc.rows.extend(rows)
        for elo, ehi, edepth, ekid, part in exits:
            text = buf + part
            if spec.complete_ok(text) is not None:
                self.exit_walk(elo, ehi, edepth, ekid, g, text, acc)
        return True

    def _num_walk(self, lo: int, hi: int, depth: int, kid: int, buf: str, enter: tuple | None) -> tuple:
        from .numslot import shape_ok

        v, a = self.vocab, self.auto
        rows: list[int] = []
        exits: list[tuple] = []
        longest = 0
        stack: list[tuple] = []
        if enter is None:
            stack.append((lo, hi, depth, kid, ""))
        else:
            chars, allowed = enter
            for c in sorted(chars):
                a_, b_ = v.child(lo, hi, depth, c)
                r = a.move(kid, c, allowed)
                if a_ < b_ and r is not None and shape_ok(chr(c)):
                    stack.append((a_, b_, depth + 1, r[0], chr(c)))
        while stack:
            lo_, hi_, d, cur, part = stack.pop()
            longest = max(longest, len(part))
            if part and lo_ < hi_ and v.lens[lo_] == d:
                rows.append(lo_)
                lo_ += 1
            if lo_ >= hi_:
                continue
            k = a.kernels[cur]
            nxt = set(np.unique(v.matrix[lo_:hi_, d]).tolist())
            if (part or enter is None) and nxt - k.cont:
                exits.append((lo_, hi_, d, cur, part))
            for c in sorted(nxt & k.cont):
                if not shape_ok(buf + part + chr(c)):
                    continue
                a_, b_ = v.child(lo_, hi_, d, c)
                r = a.move(cur, c, _EMPTY)
                if a_ < b_ and r is not None:
                    stack.append((a_, b_, d + 1, r[0], part + chr(c)))
        return rows, exits, longest

    def fanout(self, kid: int, allowed: frozenset) -> list[tuple[int, frozenset[int], tuple]]:
        """The bytes out of a kernel grouped by the kernel they lead to."""
        key = ("fan", kid, allowed)
        hit = self.runs.get(key)
        if hit is None:
            groups: dict[tuple[int, tuple], set[int]] = {}
            for c in sorted(self.auto.kernels[kid].chars):
                r = self.auto.move(kid, c, allowed)
                if r is not None:
                    groups.setdefault((r[0], r[1]), set()).add(c)
            hit = [(t, frozenset(cs), ev) for (t, ev), cs in groups.items()]
            self.runs[key] = hit
        return hit  # type: ignore[return-value]

    def allow(self, lo: int, hi: int, depth: int, kid: int, g: Guide, buf: str, strings: tuple[str, ...],
              acc: _Acc, entering: bool = False) -> None:
        """An allow-list slot at a trie node: ``kid`` is inside the slot with ``buf`` written, or
        (``entering``) the kernel just before it. The tokens spelling a prefix of an allowed string
        depend only on the strings (cached); those that go past its end are walked with the guide."""
        key = (lo, hi, depth, kid, entering, buf, strings)
        hit = self.allow_results.get(key)
        if hit is None:
            rows: list[int] = []
            exits: list[tuple[str, int, int]] = []
            complete = False
            for s in strings:
                if entering:
                    rem = s
                elif s.startswith(buf):
                    rem = s[len(buf):]
                else:
                    continue
                if not rem:
                    complete = True  # the text is complete: what ends the slot may follow
                    continue
                ekey = (lo, hi, depth, rem)
                entry = self.allow_entries.get(ekey)
                if entry is None:
                    entry = self.allow_entries[ekey] = self._allow_entry(lo, hi, depth, rem)
                r, a_, b_, nxt = entry
                rows.extend(r)
                if a_ < b_ and self._may_exit(kid, rem, nxt, entering):
                    exits.append((rem, a_, b_))
            hit = (self._bits(rows), exits, complete)
            if len(self.allow_results) > 200_000:
                self.allow_results.clear()
            self.allow_results[key] = hit
        bits, exits, complete = hit
        acc.bits.extend(bits)
        if complete:
            self.exit_walk(lo, hi, depth, kid, g, buf, acc)
        for rem, a_, b_ in exits:
            st = self.step_bytes((kid, g, buf), rem.encode())
            if st is not None:
                self.exit_walk(a_, b_, depth + len(rem), st[0], st[1], st[2], acc)

    def _bits(self, rows: list[int]) -> tuple[tuple[int, int], ...]:
        """(word, bit) pairs of the tokens behind rows, merged per word: the cheapest form to OR in."""
        words: dict[int, int] = {}
        for u in rows:
            for t in self.vocab.tids(u):
                words[t >> 5] = words.get(t >> 5, 0) | (1 << (t & 31))
        return tuple(words.items())

    def _allow_entry(self, lo: int, hi: int, depth: int, rem: str) -> tuple[list[int], int, int, tuple[int, ...]]:
        v = self.vocab
        prefix = v.uniq[lo][:depth] if lo < hi else b""
        data = rem.encode()
        rows = []
        for j in range(1, len(data) + 1):
            u = v.by_bytes.get(prefix + data[:j])
            if u is not None and lo <= u < hi:
                rows.append(u)
        a_, b_ = lo, hi
        for j, c in enumerate(data):
            a_, b_ = v.child(a_, b_, depth + j, c)
            if a_ >= b_:
                break
        if a_ < b_ and v.lens[a_] == depth + len(data):
            a_ += 1  # the string itself is in rows
        nxt = frozenset(np.unique(v.matrix[a_:b_, depth + len(data)]).tolist()) if a_ < b_ else frozenset()
        return rows, a_, b_, nxt

    def _may_exit(self, kid: int, rem: str, nxt: frozenset[int], entering: bool) -> bool:
        """Could a token go on past the allowed string ``rem`` with a byte that ends the slot?
        (Syntax only, decisions all allowed: a cheap filter before the exact walk.)"""
        key = ("exit", kid, rem, entering)
        after = self.runs.get(key)
        if after is None:
            a = self.auto
            cur = kid
            for i, c in enumerate(rem.encode()):
                k = a.kernels[cur]
                r = a.move(cur, c, frozenset(k.decisions) if (entering and i == 0) else _EMPTY)
                if r is None:
                    cur = -1
                    break
                cur = r[0]
            k = a.kernels[cur] if cur >= 0 else None
            after = frozenset(k.chars - k.cont) if k is not None else frozenset()
            self.runs[key] = after
        return bool(after & nxt)

    def exit_walk(self, lo: int, hi: int, depth: int, kid: int, g: Guide, buf: str, acc: _Acc) -> None:
        """Tokens that end the slot at this node: only bytes that do not continue the slot."""
        v = self.vocab
        k = self.auto.kernels[kid]
        if lo < hi and v.lens[lo] == depth:
            lo += 1
        if lo >= hi:
            return
        for c in k.chars:
            if c in k.cont:
                continue
            a_, b_ = v.child(lo, hi, depth, c)
            if a_ >= b_:
                continue
            st = self.step(kid, g, buf, c)
            if st is not None:
                self.walk(a_, b_, depth + 1, st[0], st[1], st[2], acc)

    # ---------------------------------------------------------------- defining names in bulk

    def bulk(self, lo: int, hi: int, depth: int, kid: int, g: Guide, buf: str, deny: frozenset, acc: _Acc,
             enter: tuple | None = None) -> None:
        """A name slot with a deny-list at a trie node.

        ``kid`` is the kernel inside the name. With ``enter`` = (kernel before, allowed, first bytes,
        guide before), the node is just before the name and its first byte is one of ``first``;
        otherwise ``buf`` is the name written so far.
        """
        v = self.vocab
        key = (lo, hi, depth, kid, enter[2] if enter else None)
        b = self.bulks.get(key)
        if b is None:
            b = self._bulk(lo, hi, depth, kid, enter[2] if enter else None)
            self.bulks[key] = b
        n = len(buf)
        if b.stay is not None:
            if n + b.stay_max < NAME_CAP:
                acc.masks.append(b.stay)
            else:
                # a token that brings the name to the cap ends it: not on a name already taken
                taken = {name[n:].encode() for name in deny if len(name) == NAME_CAP and name.startswith(buf)}
                if taken:
                    keep = b.stay_rows[n + b.stay_runs <= NAME_CAP].tolist()  # type: ignore[index,operator]
                    acc.rows.extend(r for r in keep if v.uniq[r][depth:] not in taken)
                else:
                    fits = b.near_cap.get(n)
                    if fits is None:
                        fits = b.near_cap[n] = v.mask_of(b.stay_rows[n + b.stay_runs <= NAME_CAP])  # type: ignore[index,operator]
                    acc.masks.append(fits)
        if b.exits is not None:
            acc.masks.append(b.exits)
            for name in deny:
                if name.startswith(buf):
                    rows = b.by_content.get(name[n:])
                    if rows:
                        acc.removed.extend(rows)
            if n + b.exit_max > NAME_CAP:
                for content, rows in b.by_content.items():
                    if n + len(content) > NAME_CAP:
                        acc.removed.extend(rows)
        if b.semantic:
            start = (enter[0], enter[3], "") if enter else (kid, g, buf)
            for row in b.semantic:
                if self.step_bytes(start, v.uniq[row][depth:]) is not None:
                    acc.rows.append(row)

    def _runs(self, lo: int, hi: int, depth: int, cont: frozenset[int], first: frozenset[int] | None) -> tuple:
        """Name runs under a trie node (shared by every kernel): the rows that stay inside the name
        (with their run lengths) and the rows that leave it, by the byte they leave with."""
        key = ("runs", lo, hi, depth, cont, first)
        hit = self.runs.get(key)
        if hit is not None:
            return hit  # type: ignore[return-value]
        v = self.vocab
        lut = np.zeros(256, dtype=bool)
        lut[list(cont)] = True
        rem = v.lens[lo:hi] - depth
        idx = np.arange(lo, hi)
        run = np.zeros(hi - lo, dtype=np.int64)
        alive = np.nonzero(rem > 0)[0]
        if first is not None:
            lead = np.zeros(256, dtype=bool)
            lead[list(first)] = True
            alive = alive[lead[v.matrix[idx[alive], depth]]]
            run[alive] = 1
            alive = alive[rem[alive] > 1]
            col = 1
        else:
            col = 0
        ok_rows = np.zeros(hi - lo, dtype=bool)
        if first is None:
            ok_rows[:] = rem > 0
        else:
            lead = np.zeros(256, dtype=bool)
            lead[list(first)] = True
            ok_rows = (rem > 0) & lead[v.matrix[idx, depth]]
        while len(alive):  # advance the rows still inside the name, one column at a time
            inside = lut[v.matrix[idx[alive], depth + col]]
            alive = alive[inside]
            run[alive] += 1
            col += 1
            alive = alive[rem[alive] > col]
        stay = ok_rows & (run == rem)
        leave = ok_rows & (run < rem) & ((run > 0) if first is not None else True)
        stay_rows = idx[stay]
        leave_i = np.nonzero(leave)[0]
        exit_bytes = v.matrix[idx[leave_i], depth + run[leave_i]] if len(leave_i) else np.zeros(0, np.uint8)
        by_exit: dict[int, np.ndarray] = {}
        for e in np.unique(exit_bytes).tolist():
            by_exit[e] = leave_i[exit_bytes == e]
        stay_mask = v.mask_of(stay_rows) if len(stay_rows) else None
        hit = (stay_mask, stay_rows, run[stay], by_exit, run)
        self.runs[key] = hit
        return hit

    def _bulk(self, lo: int, hi: int, depth: int, kid: int, first: frozenset[int] | None) -> _Bulk:
        v, a = self.vocab, self.auto
        k = a.kernels[kid]
        b = _Bulk()
        if lo >= hi:
            return b
        stay_mask, stay_rows, stay_runs, by_exit, run = self._runs(lo, hi, depth, k.cont, first)
        if stay_mask is not None:
            b.stay, b.stay_rows, b.stay_runs = stay_mask, stay_rows, stay_runs
            b.stay_max = int(stay_runs.max())
        pure_rows: list[int] = []
        by_content: dict[str, list[int]] = {}
        semantic: list[int] = []
        for e in sorted(set(k.chars) - set(k.cont)):
            for i in by_exit.get(e, ()).tolist() if e in by_exit else ():
                r = int(run[i])
                data = v.uniq[lo + i]
                verdict = self._rest_kind(kid, data[depth + r:])
                if verdict == "pure":
                    pure_rows.append(lo + i)
                    by_content.setdefault(data[depth:depth + r].decode("ascii"), []).append(lo + i)
                elif verdict == "semantic":
                    semantic.append(lo + i)
        if pure_rows:
            b.exits = v.mask_of(np.array(pure_rows, dtype=np.int64))
            b.by_content = by_content
            b.exit_max = max(len(c) for c in by_content)
        b.semantic = semantic
        return b

    def _rest_kind(self, kid: int, rest: bytes) -> str:
        """What follows a name inside one token: ``dead`` (no syntax allows it), ``pure`` (literal text
        with no branch the guide decides), or ``semantic`` (checked per token at mask time)."""
        key = (kid, rest)
        hit = self.runs.get(key)
        if hit is not None:
            return hit  # type: ignore[return-value]
        a = self.auto
        cur = kid
        verdict = "pure"
        for i, c in enumerate(rest):
            k = a.kernels[cur]
            if i > 0 and (k.decisions or k.slot is not None):
                verdict = "semantic"
            allowed = frozenset(k.decisions)
            r = a.move(cur, c, allowed)
            if r is None:
                verdict = "dead"
                break
            if i == 0 and k.decisions:
                verdict = "semantic"
            cur = r[0]
            if a.kernels[cur].slot is not None and i > 0:
                verdict = "semantic"
        self.runs[key] = verdict  # type: ignore[assignment]
        return verdict


# Above this many single rows a mask is built in one vectorised pass: a name near its length cap
# lists thousands of rows, which the per-row loop sets at ~3 µs each (the fuzz's long names).
_LOOP_ROWS = 64


class _Acc:
    """Collects a mask: whole bitmasks, single rows, and rows to take out (deny-lists)."""

    __slots__ = ("masks", "rows", "removed", "bits")

    def __init__(self) -> None:
        self.masks: list[np.ndarray] = []
        self.rows: list[int] = []
        self.removed: list[int] = []
        self.bits: list[tuple[int, int]] = []

    def apply(self, out: np.ndarray, v: Vocab) -> None:
        for m in self.masks:
            np.bitwise_or(out, m, out=out)
        view = memoryview(out)
        for w, b in self.bits:
            view[w] |= b
        if len(self.rows) > _LOOP_ROWS:
            np.bitwise_or(out, v.mask_of(np.asarray(self.rows, dtype=np.int64)), out=out)
        else:
            for u in self.rows:
                for t in v.tids(u):
                    view[t >> 5] |= 1 << (t & 31)
        if len(self.removed) > _LOOP_ROWS:
            np.bitwise_and(out, ~v.mask_of(np.asarray(self.removed, dtype=np.int64)), out=out)
        else:
            for u in self.removed:
                for t in v.tids(u):
                    view[t >> 5] &= ~(1 << (t & 31)) & 0xFFFFFFFF
