"""The public face of the decoder: compile once per tokenizer, then one ``Constraint`` per row.

``compile_tokenizer(tok)`` binds the grammar automaton to a vocabulary. The vocabulary's token bytes
are kept on disk as plain arrays (``vocab.npz``, read with ``allow_pickle=False`` and validated)
under ``~/.cache/tracelang/decoding/<grammar hash>-<tokenizer hash>/`` and reloaded by the next
process; the automaton and the mask caches are rebuilt in each process (on the test tokenizers a
cold compile takes well under a second). Nothing on disk is ever unpickled: a cache directory that
someone else can write cannot run code here, and a cache file that fails validation is a miss.
``Constraint(compiled, config)`` is one decoding state: ``fill_mask`` writes the allowed-token
bitmask, ``advance`` takes a token, ``forced`` gives the tokens that are the only possible
continuation (fast-forward), ``closing_text`` a short way to a valid end (for a running-out budget).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import grounding
from ..fileio import removed_on_signal
from ..grammar import grammar_hash
from ..numbers import Exact, render
from ..paths import cache_dir
from .automaton import Automaton, automaton
from .engine import Compiled, Rejected
from .guide import LOOKAHEAD, Config, Guide
from .levels import Levels
from .vocab import Vocab, fingerprint

_FORMAT = 4  # bump when the vocab.npz layout changes
_CACHE_FILE = "vocab.npz"
_COMPILED: dict[tuple[str, str, str], Compiled] = {}


def _dir(grammar: str, tok_hash: str) -> Path:
    return cache_dir() / "decoding" / f"{grammar}-{tok_hash}"


@dataclass
class CompileInfo:
    seconds: float
    from_disk: bool
    path: Path | None


def compile_tokenizer(tokenizer, *, disk: bool = True, memory: bool = True, surface: str = "yaml") -> Compiled:
    """A surface's automaton bound to this tokenizer's vocabulary (cached in memory and on disk;
    the vocabulary on disk is shared by the surfaces)."""
    t0 = time.perf_counter()
    fp = fingerprint(tokenizer)
    key = (grammar_hash(), fp)
    if memory and (*key, surface) in _COMPILED:
        return _COMPILED[(*key, surface)]
    path = _dir(*key) / _CACHE_FILE
    compiled = None
    if disk:
        vocab = _load_vocab(path, fp)
        if vocab is not None:
            compiled = Compiled(vocab, automaton(surface) if memory else Automaton(surface))
            compiled.tokenizer_hash = fp  # type: ignore[attr-defined]
    from_disk = compiled is not None
    if compiled is None:
        auto = automaton(surface) if memory else Automaton(surface)
        compiled = Compiled(Vocab.from_tokenizer(tokenizer), auto)
        compiled.tokenizer_hash = fp  # type: ignore[attr-defined]
        if disk:
            with contextlib.suppress(OSError):  # an unwritable cache only costs the next process a compile
                save(compiled)
    compiled.info = CompileInfo(time.perf_counter() - t0, from_disk, path if disk else None)  # type: ignore[attr-defined]
    if memory:
        _COMPILED[(*key, surface)] = compiled
    return compiled


def save(compiled: Compiled) -> Path:
    """Write the vocabulary's token bytes as plain arrays (atomically); nothing else is cached."""
    v = compiled.vocab
    path = _dir(compiled.auto.hash, v.fingerprint) / _CACHE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    lens = np.array([-1 if b is None else len(b) for b in v.bytes_of], dtype=np.int64)
    blob = np.frombuffer(b"".join(b for b in v.bytes_of if b is not None), dtype=np.uint8)
    meta = json.dumps({"format": _FORMAT, "fingerprint": v.fingerprint, "size": v.size})
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vocab-", suffix=".part")
    try:
        with removed_on_signal(tmp), os.fdopen(fd, "wb") as fh:
            np.savez(fh, meta=np.frombuffer(meta.encode(), dtype=np.uint8), lens=lens, blob=blob,
                     eos=np.array(v.eos, dtype=np.int64))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


_MAX_CACHE_BYTES = 1 << 30


def _load_vocab(path: Path, fingerprint_: str) -> Vocab | None:
    """The cached vocabulary, or None for a missing, stale, foreign or malformed file (a miss).

    Read with ``allow_pickle=False``: only plain integer and byte arrays are accepted, and every
    length, offset and id is checked before use."""
    try:
        if not path.is_file() or path.stat().st_size > _MAX_CACHE_BYTES:
            return None
        with np.load(path, allow_pickle=False) as z:
            if set(z.files) != {"meta", "lens", "blob", "eos"}:
                return None
            meta_a, lens, blob, eos = z["meta"], z["lens"], z["blob"], z["eos"]
        if meta_a.dtype != np.uint8 or blob.dtype != np.uint8 or lens.dtype != np.int64 or eos.dtype != np.int64:
            return None
        if meta_a.ndim != 1 or blob.ndim != 1 or lens.ndim != 1 or eos.ndim != 1:
            return None
        meta = json.loads(meta_a.tobytes().decode("utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT or meta.get("fingerprint") != fingerprint_:
            return None
        size = meta.get("size")
        if type(size) is not int or size != len(lens) or size <= 0:
            return None
        if (lens < -1).any() or int(lens[lens > 0].sum()) != len(blob):
            return None
        if len(eos) and ((eos < 0).any() or (eos >= size).any()):
            return None
        raw = blob.tobytes()
        out: list[bytes | None] = []
        pos = 0
        for n in lens.tolist():
            if n < 0:
                out.append(None)
            else:
                out.append(raw[pos:pos + n])
                pos += n
        return Vocab.build(out, tuple(int(e) for e in eos.tolist()), fingerprint_)
    except Exception:  # noqa: BLE001 - zip, json and numpy errors alike
        return None  # a stale or broken cache is rebuilt, never trusted


def question_values(question: str) -> set[Exact]:
    """The values a question grounds (``tracelang.grounding``)."""
    return set(grounding.allowed_values(question))


def make_config(levels: Levels = Levels(), question: str | None = None,
                allowed_values: Iterable[Exact] | None = None, stated_values: Iterable[Exact] | None = None) -> Config:
    """Grounding uses ``allowed_values`` if given, else the question's quantities, else nothing. The
    values the question states (``stated_values``, else read from the question) are exempt from the
    no-op rules at every level, as the checker exempts them."""
    if allowed_values is None and question is not None and levels.grounding:
        allowed_values = question_values(question)
    if stated_values is None and question is not None:
        stated_values = grounding.stated_values(question)
    return Config.make(levels, allowed_values, stated_values=stated_values or ())


# Byte preferences for the closing walk: close what is open, end the step, then take the ops that
# end a trace soonest (query, else compute with add) and the shortest names and numbers.
_CLOSING_ORDER = bytes(dict.fromkeys(
    b"}],\n: 1-{qcaeruyxn234567890" + bytes(range(ord("a"), ord("z") + 1)) + b"_./" + bytes(range(32, 127))))
# The compact surface's: close the call, end the line, `return` before another line (an init line,
# started by a digit, never ends a trace), then a name argument before a literal.
_CLOSING_ORDER_COMPACT = bytes(dict.fromkeys(
    b")\n, raeqcuyxn1234567890" + bytes(range(ord("a"), ord("z") + 1)) + b"_./->" + bytes(range(32, 127))))
# The guide looks at most LOOKAHEAD arguments ahead (Guide.closing_args), so a byte order that has added
# more than that and one more without closing the list is not closing it: the walk is made again, guided.
_GREEDY_ARGS = LOOKAHEAD + 1


def _next_arg(guide: Guide) -> bytes:
    """The text of the next argument of the guide's shortest completion of an open list, or b""."""
    rest = guide.closing_args()
    if not rest:
        return b""
    arg = rest[0]
    return (arg[1] if arg[0] == "var" else render(Exact(arg[1], arg[2]))).encode()


class Constraint:
    """One row's decoding state."""

    __slots__ = ("compiled", "config", "kid", "guide", "buf", "done", "tokens")

    def __init__(self, compiled: Compiled, config: Config | None = None):
        self.compiled = compiled
        self.config = config or Config()
        self.kid = compiled.auto.start
        self.guide = Guide(self.config)
        self.buf = ""
        self.done = False
        self.tokens: list[int] = []

    @property
    def vocab(self) -> Vocab:
        return self.compiled.vocab

    def new_mask(self) -> np.ndarray:
        return np.zeros(self.compiled.words, dtype=np.uint32)

    def fill_mask(self, out: np.ndarray) -> None:
        """Allowed next tokens as a bitmask (bit t of word t // 32). After the end: EOS only."""
        if self.done:
            np.copyto(out, self.compiled.eos_mask)
            return
        self.compiled.fill(self.kid, self.guide, self.buf, out)

    def copy(self) -> Constraint:
        """An independent state at the same place (the guide is an immutable snapshot)."""
        other = Constraint(self.compiled, self.config)
        other.kid, other.guide, other.buf, other.done = self.kid, self.guide, self.buf, self.done
        other.tokens = list(self.tokens)
        return other

    def allowed_ids(self) -> list[int]:
        m = self.new_mask()
        self.fill_mask(m)
        bits = np.unpackbits(m.view(np.uint8), bitorder="little")
        return np.nonzero(bits)[0].tolist()

    def can_end(self) -> bool:
        return self.done or self.compiled.eos_ok(self.kid, self.guide, self.buf)

    def try_advance(self, token: int) -> bool:
        """Take ``token`` if allowed; False (state unchanged) if not."""
        v = self.compiled.vocab
        if self.done:
            return token in v.eos
        if token in v.eos:
            if not self.can_end():
                return False
            self.done = True
            self.tokens.append(token)
            return True
        data = v.bytes_of[token] if 0 <= token < v.size else None
        if not data:
            return False
        st = self.compiled.step_bytes((self.kid, self.guide, self.buf), data)
        if st is None:
            return False
        self.kid, self.guide, self.buf = st
        self.tokens.append(token)
        return True

    def advance(self, token: int) -> None:
        if not self.try_advance(token):
            raise Rejected(f"token {token} ({self.compiled.vocab.bytes_of[token]!r}) is not allowed here")

    def advance_text(self, text: str) -> bool:
        """Feed characters directly (tests, prompts that pre-fill part of a trace)."""
        st = self.compiled.step_bytes((self.kid, self.guide, self.buf), text.encode())
        if st is None:
            return False
        self.kid, self.guide, self.buf = st
        return True

    def closing_text(self, limit: int = 400) -> str | None:
        """A short text that takes this state to a valid end (EOS allowed after it), or None.

        A greedy walk, one byte at a time, in ``_CLOSING_ORDER``: the guide only ever allows what
        some valid trace continues, and the order makes it end within a step or two. Where an
        argument list cannot close yet, the byte order may keep taking arguments that never let it
        (long lists of huge fractions): then the walk is made again, writing at each argument the
        one the guide's own search names (``Guide.closing_args``). Used when a row's token budget
        runs out, so that every output still parses and checks; it does not depend on the model.
        """
        text = self._walk(limit, guided=False)
        return text if text is not None else self._walk(limit, guided=True)

    def _walk(self, limit: int, guided: bool) -> str | None:
        c = self.compiled
        kernels = c.auto.kernels
        kid, g, buf = self.kid, self.guide, self.buf
        out = bytearray()
        order = _CLOSING_ORDER_COMPACT if c.auto.surface == "compact" else _CLOSING_ORDER
        if self.done:
            return ""
        added, held = 0, len(g.field("args", ()))  # type: ignore[arg-type]
        while not c.eos_ok(kid, g, buf):
            if len(out) >= limit:
                return None
            n = len(g.field("args", ()))  # type: ignore[arg-type]
            added, held = added + max(n - held, 0), n
            if not guided and added > _GREEDY_ARGS:
                return None
            if guided and kernels[kid].slot is None and (plan := _next_arg(g)):
                st = c.step_bytes((kid, g, buf), plan)  # refused where no argument starts here
                if st is not None:
                    kid, g, buf = st
                    out += plan
                    continue
            for b in order:
                st = c.step(kid, g, buf, b)
                if st is not None:
                    kid, g, buf = st
                    out.append(b)
                    break
            else:
                return None
        return out.decode("utf-8")

    def forced_text(self, limit: int = 96) -> str:
        """The text that is the only possible continuation from here (stops where a choice starts).

        Read from the automaton (one move out of a literal kernel) and the guide (one allowed
        string left in a slot), not by trying every byte."""
        c = self.compiled
        a = c.auto
        kid, g, buf = self.kid, self.guide, self.buf
        out = []
        while len(out) < limit and not self.done:
            k = a.kernels[kid]
            nxt = None
            if k.slot is not None:
                kind, spec = g.slot(k.slot)
                if kind != "allow":
                    break
                rest = [s for s in spec if s.startswith(buf)]  # type: ignore[union-attr]
                if len(rest) != 1:
                    break  # a choice
                if rest[0] != buf:
                    nxt = ord(rest[0][len(buf)])
                else:  # the slot must end: what follows it
                    done = g.complete(k.slot, buf)
                    if done is None:
                        break
                    fan = [f for f in c.fanout(kid, done.allowed(k.decisions, kid) if k.decisions else frozenset())
                           if not f[1] <= k.cont]
                    if len(fan) != 1 or len(fan[0][1]) != 1:
                        break
                    nxt = next(iter(fan[0][1]))
            else:
                if k.accepting and g.end_ok():
                    break
                fan = c.fanout(kid, g.allowed(k.decisions, kid) if k.decisions else frozenset())
                if len(fan) != 1:
                    break
                target, chars, events = fan[0]
                if len(chars) == 1:
                    nxt = next(iter(chars))
                elif a.kernels[target].slot is not None:  # a slot with one allowed string
                    sg = g
                    for e in events:
                        sg = sg.event(e)
                    kind, spec = sg.slot(a.kernels[target].slot)
                    first = {s[0] for s in spec if ord(s[0]) in chars} if kind == "allow" else set()  # type: ignore[union-attr]
                    if len(first) != 1:
                        break
                    nxt = ord(first.pop())
                else:
                    break
            st = c.step(kid, g, buf, nxt)
            if st is None:
                break
            out.append(nxt)
            kid, g, buf = st
        return bytes(out).decode("latin-1")
