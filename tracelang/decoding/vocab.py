"""Token bytes from the tokenizer model, and the sorted byte table the mask walk runs on.

Bytes come from the vocabulary itself, never from per-token ``decode()`` (which strips spaces,
merges byte pieces and differs between tokenizers):

- byte-level BPE (GPT-2, Llama-3): each piece is the GPT-2 byte-to-unicode image of its bytes;
- SentencePiece style with byte fallback (Gemma, Llama-2): ``▁`` is a space, ``<0xNN>`` is byte NN;
- added tokens that are not special are their own text (Gemma's ``\\n`` runs).

Special tokens get no bytes: they are never allowed. EOS is kept apart; the automaton allows it only
where a complete trace ends.
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from ..errors import UsageError

_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


class TokenizerError(UsageError, ValueError):
    """A tokenizer whose vocabulary this module cannot turn into bytes."""


@cache
def _unicode_to_byte() -> dict[str, int]:
    """The inverse of GPT-2's bytes_to_unicode table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def _types(obj: object) -> set[str]:
    out: set[str] = set()
    if isinstance(obj, dict):
        if isinstance(obj.get("type"), str):
            out.add(obj["type"])
        for v in obj.values():
            out |= _types(v)
    elif isinstance(obj, list):
        for v in obj:
            out |= _types(v)
    return out


def tokenizer_style(tokenizer) -> str:
    """``bytelevel`` or ``sentencepiece``, read from the tokenizer's decoder."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        if hasattr(tokenizer, "sp_model"):
            return "sentencepiece"
        raise TokenizerError(f"{type(tokenizer).__name__}: no fast backend and no SentencePiece model")
    decoder = backend.decoder
    kinds = _types(json.loads(decoder.__getstate__())) if decoder is not None else set()
    if "ByteLevel" in kinds:
        return "bytelevel"
    if kinds & {"Metaspace", "ByteFallback", "Replace"}:
        return "sentencepiece"
    raise TokenizerError(f"unsupported tokenizer decoder {sorted(kinds) or 'none'}: need byte-level BPE "
                         "or SentencePiece with byte fallback")


def _pieces(tokenizer) -> list[str | None]:
    n = len(tokenizer)
    if getattr(tokenizer, "backend_tokenizer", None) is None and hasattr(tokenizer, "sp_model"):
        sp = tokenizer.sp_model
        return [sp.id_to_piece(i) if i < sp.get_piece_size() else None for i in range(n)]
    pieces: list[str | None] = [None] * n
    for piece, i in tokenizer.get_vocab().items():
        if 0 <= i < n:
            pieces[i] = piece
    return pieces


def special_ids(tokenizer) -> set[int]:
    out = set(getattr(tokenizer, "all_special_ids", []) or [])
    for i, tok in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).items():
        if getattr(tok, "special", False):
            out.add(int(i))
    return out


def eos_ids(tokenizer) -> tuple[int, ...]:
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise TokenizerError("the tokenizer has no EOS token; a constrained decoder needs one to end a trace")
    return tuple(eos) if isinstance(eos, (list, tuple)) else (int(eos),)


def token_bytes(tokenizer) -> list[bytes | None]:
    """Bytes of every token id; None for special tokens and ids with no piece."""
    style = tokenizer_style(tokenizer)
    specials = special_ids(tokenizer)
    added = {int(i): t for i, t in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).items()}
    table = _unicode_to_byte()
    out: list[bytes | None] = []
    for i, piece in enumerate(_pieces(tokenizer)):
        if piece is None or i in specials:
            out.append(None)
        elif i in added:
            out.append(added[i].content.encode())
        elif style == "bytelevel":
            try:
                out.append(bytes(table[ch] for ch in piece))
            except KeyError:
                out.append(piece.encode())  # a piece outside the byte alphabet: its own text
        else:
            m = _BYTE_PIECE.match(piece)
            out.append(bytes([int(m.group(1), 16)]) if m else piece.replace("▁", " ").encode())
    return out


def fingerprint(tokenizer) -> str:
    """A cheap hash of what decides token bytes: class, size, a spread sample of pieces, specials."""
    n = len(tokenizer)
    step = max(1, n // 2048)
    ids = list(range(0, n, step)) + list(range(max(0, n - 64), n))
    sample = tokenizer.convert_ids_to_tokens(ids)
    h = hashlib.sha256()
    h.update(json.dumps([type(tokenizer).__name__, n, tokenizer_style(tokenizer), sorted(special_ids(tokenizer)),
                         list(eos_ids(tokenizer)), sample], ensure_ascii=False).encode())
    return h.hexdigest()[:16]


@dataclass
class Vocab:
    """Token bytes sorted into a table: a trie node is a range of the sorted unique byte strings."""

    size: int
    bytes_of: list[bytes | None]
    eos: tuple[int, ...]
    fingerprint: str
    uniq: list[bytes] = field(default_factory=list)  # sorted unique byte strings
    first_tid: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dup: dict[int, list[int]] = field(default_factory=dict)  # uniq index -> further token ids
    lens: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.uint8))
    by_bytes: dict[bytes, int] = field(default_factory=dict)
    _dup_keys: np.ndarray | None = None

    def __getstate__(self) -> dict:
        """Compact form for the disk cache: byte blobs and offsets instead of 262k small objects."""
        lens = np.array([-1 if b is None else len(b) for b in self.bytes_of], dtype=np.int64)
        return {"size": self.size, "eos": self.eos, "fingerprint": self.fingerprint,
                "blob": b"".join(b for b in self.bytes_of if b is not None), "lens": lens,
                "uniq_blob": b"".join(self.uniq), "uniq_lens": self.lens, "first_tid": self.first_tid,
                "dup": self.dup, "matrix": self.matrix}

    def __setstate__(self, state: dict) -> None:
        self.size, self.eos, self.fingerprint = state["size"], state["eos"], state["fingerprint"]
        blob, lens = state["blob"], state["lens"].tolist()
        out: list[bytes | None] = []
        pos = 0
        for n in lens:
            if n < 0:
                out.append(None)
            else:
                out.append(blob[pos:pos + n])
                pos += n
        self.bytes_of = out
        ublob, ulens = state["uniq_blob"], state["uniq_lens"]
        ends = np.cumsum(ulens).tolist()
        starts = [0, *ends[:-1]]
        self.uniq = [ublob[a:b] for a, b in zip(starts, ends, strict=True)]
        self.lens, self.first_tid, self.dup, self.matrix = ulens, state["first_tid"], state["dup"], state["matrix"]
        self.by_bytes = {b: u for u, b in enumerate(self.uniq)}
        self._dup_keys = None

    @property
    def words(self) -> int:
        return (self.size + 31) // 32

    @classmethod
    def from_tokenizer(cls, tokenizer) -> Vocab:
        return cls.build(token_bytes(tokenizer), eos_ids(tokenizer), fingerprint(tokenizer))

    @classmethod
    def build(cls, bytes_of: list[bytes | None], eos: tuple[int, ...], fp: str) -> Vocab:
        v = cls(len(bytes_of), bytes_of, eos, fp)
        groups: dict[bytes, list[int]] = {}
        for i, b in enumerate(bytes_of):
            if b and i not in eos:
                groups.setdefault(b, []).append(i)
        v.uniq = sorted(groups)
        v.by_bytes = {b: u for u, b in enumerate(v.uniq)}
        v.first_tid = np.array([groups[b][0] for b in v.uniq], dtype=np.int64)
        v.dup = {u: groups[b][1:] for u, b in enumerate(v.uniq) if len(groups[b]) > 1}
        v.lens = np.array([len(b) for b in v.uniq], dtype=np.int64)
        width = int(v.lens.max()) if len(v.uniq) else 1
        buf = np.frombuffer(b"".join(v.uniq), dtype=np.uint8)
        v.matrix = np.zeros((len(v.uniq), width), dtype=np.uint8)
        rows = np.repeat(np.arange(len(v.uniq)), v.lens)
        starts = np.cumsum(v.lens) - v.lens
        cols = np.arange(len(buf)) - np.repeat(starts, v.lens)
        v.matrix[rows, cols] = buf
        return v

    # ---------------------------------------------------------------- the trie as ranges

    def child(self, lo: int, hi: int, depth: int, byte: int) -> tuple[int, int]:
        """Sub-range of [lo, hi) (strings sharing a prefix of ``depth`` bytes) with ``byte`` next."""
        if lo >= hi:
            return lo, lo
        prefix = self.uniq[lo][:depth]
        a = bisect_left(self.uniq, prefix + bytes([byte]), lo, hi)
        b = bisect_left(self.uniq, prefix + bytes([byte + 1]), a, hi) if byte < 255 else hi
        return a, b

    def tids(self, u: int) -> list[int]:
        extra = self.dup.get(u)
        first = int(self.first_tid[u])
        return [first, *extra] if extra else [first]

    def mask_of(self, us: np.ndarray) -> np.ndarray:
        """Bitmask (uint32 words) of the tokens behind unique indices ``us``."""
        tids = self.first_tid[us]
        if self.dup:
            if self._dup_keys is None:
                self._dup_keys = np.array(sorted(self.dup), dtype=np.int64)
            hit = us[np.isin(us, self._dup_keys)]
            if len(hit):
                tids = np.concatenate([tids, np.array([t for u in hit.tolist() for t in self.dup[u]], dtype=np.int64)])
        out = np.zeros(self.words, dtype=np.uint32)
        np.bitwise_or.at(out, tids >> 5, (np.uint32(1) << (tids & 31).astype(np.uint32)))
        return out
