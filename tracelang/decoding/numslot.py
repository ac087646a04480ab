"""Number slots: which canonical literals a ``num`` position may still become.

A literal is canonical when it is what ``numbers.render`` writes for its value (``0.5``, never
``1/2``; ``1/3``, never ``2/6``). A slot may further restrict the value: a finite allow-list (the
question's quantities), bounds (an amount an entity can give), integers only (an exponent), or any
predicate (the value must leave the step valid). A prefix is allowed only when some completion
is acceptable, so the decoder never walks into a dead end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..numbers import Exact, parse_literal, render

MAX_CHARS = 24  # a literal's length in the decoder (the checker's limit is 40 significant digits)
_DENOMS = ("3", "7", "9", "11", "13", "17", "19", "21", "23", "27", "29", "31", "33", "37", "39", "41",
           "43", "47", "49", "51", "53", "57", "59", "61", "63", "67", "69", "71", "73", "77", "79",
           "81", "83", "87", "89", "91", "93", "97", "99", "101", "103", "107", "109", "113", "127",
           "131", "137", "139", "149", "151", "157", "163", "167", "173", "179", "181", "191", "193",
           "197", "199", "211", "223", "227", "229", "233", "239", "241", "251", "257", "263", "269")


def canonical_value(text: str) -> Exact | None:
    """The value of ``text`` if it is a canonical literal, else None."""
    lit = parse_literal(text)
    if lit is None or lit.unreduced or render(lit.value) != text:
        return None
    return lit.value


def shape_ok(text: str) -> bool:
    """Prefix rules the grammar's CANON_NUMBER regex does not state (checked char by char)."""
    if "/" in text and "." in text:
        return False  # 1.5/3 is an operation, not a literal
    head = text.split("/", 1)[0]
    return not ("/" in text and head in ("0", "-0"))  # 0/7 is written 0


@dataclass(eq=False)
class NumSpec:
    allow: frozenset[str] | None = None  # exact canonical strings; None: any
    lo: Exact | None = None
    hi: Exact | None = None
    integer: bool = False
    accept: Callable[[Exact], bool] | None = None
    # `accept` refuses finitely many values: a prefix short enough always has an accepted completion
    finite: bool = False
    max_chars: int = MAX_CHARS
    _prefixes: frozenset[str] | None = field(default=None, repr=False)
    _memo: dict = field(default_factory=dict, repr=False)

    @property
    def fast(self) -> bool:
        """Refuses finitely many values (or none), by value only: prefixes are a matter of shape."""
        return self.allow is None and self.lo is None and self.hi is None and not self.integer \
            and (self.accept is None or self.finite)

    @property
    def free(self) -> bool:
        return self.allow is None and self.lo is None and self.hi is None and not self.integer \
            and self.accept is None

    def complete_ok(self, text: str) -> Exact | None:
        """The value when ``text`` may end the slot, else None."""
        hit = self._memo.get(("c", text), False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        value = self._complete(text)
        self._memo[("c", text)] = value
        return value

    def _complete(self, text: str) -> Exact | None:
        if len(text) > self.max_chars:
            return None
        if self.allow is not None:
            return canonical_value(text) if text in self.allow else None
        value = canonical_value(text)
        if value is None:
            return None
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            return None
        if self.integer and value.denominator != 1:
            return None
        if self.accept is not None and not self.accept(value):
            return None
        return value

    def prefix_ok(self, text: str) -> bool:
        """Some completion of ``text`` (a prefix the regex allows) is acceptable."""
        if len(text) > self.max_chars or not shape_ok(text):
            return False
        if self.allow is not None:
            if self._prefixes is None:
                self._prefixes = frozenset(s[:i] for s in self.allow for i in range(len(s) + 1))
            return text in self._prefixes
        if (self.free or (self.finite and self.lo is None and self.hi is None and not self.integer)) \
                and len(text) <= self.max_chars - 4:
            return True
        if not self._interval_ok(text):
            return False
        hit = self._memo.get(("p", text))
        if hit is None:
            hit = any(self.complete_ok(c) is not None for c in self._fractions_first(text)) or \
                any(self.complete_ok(c) is not None for c in _completions(text, self.max_chars))
            self._memo[("p", text)] = hit
        return hit


    def _fractions_first(self, text: str) -> list[str]:
        """Completions D/q below the upper bound for a prefix ``D`` or ``D/q...`` whose integer D is
        above it: q must reach D/hi, and must start with the digits already written."""
        if self.hi is None or self.hi <= 0 or text.startswith("-"):
            return []
        head, slash, qp = text.partition("/")
        if not head.isdigit() or head == "0" or (slash and qp and not qp.isdigit()):
            return []
        d = int(head)
        if not slash and d <= self.hi:
            return []
        q0 = max(-(-d * self.hi.denominator // self.hi.numerator), 2)
        out: list[str] = []
        room = self.max_chars - len(head) - 1
        for width in range(max(len(qp), 1), room + 1):
            k = width - len(qp)
            lo = int(qp) * 10**k if qp else 10 ** (width - 1)
            hi = (int(qp) + 1) * 10**k if qp else 10**width
            start = max(lo, q0)
            out.extend(f"{head}/{q}" for q in range(start, min(hi, start + 30)))
            if len(out) > 60:
                break
        return out

    def _interval_ok(self, text: str) -> bool:
        """Quick refusal by bounds: completions of a decimal prefix are at least its value; of a
        negative prefix, negative."""
        if self.lo is not None and self.lo >= 0 and text.startswith("-"):
            return False
        if self.hi is not None and "." in text and "/" not in text and not text.startswith("-"):
            whole, _, frac = text.partition(".")
            if frac and canonical_value(text.rstrip("0")) is not None:
                v = canonical_value(text.rstrip("0"))
                if v is not None and v > self.hi:
                    return False
        return True


def _completions(text: str, max_chars: int):
    """Candidate canonical completions of a prefix, short ones first (a witness search)."""
    seen: set[str] = set()

    def out(s: str):
        if len(s) <= max_chars and s not in seen:
            seen.add(s)
            return True
        return False

    if out(text):
        yield text
    if "/" in text:
        part = "den"
    elif "." in text:
        part = "frac"
    else:
        part = "int"
    digits = "0123456789"
    if part == "int":
        heads = [text] if text not in ("", "-") else [text + d for d in digits]
        for h in heads:
            if out(h):
                yield h
        for h in heads:
            grow = h not in ("0", "-0")
            for d in digits:
                if grow and out(h + d):
                    yield h + d
            for d in "123456789":
                if out(h + "." + d):
                    yield h + "." + d
                if out(h + ".0" + d):
                    yield h + ".0" + d
            if h not in ("0", "-0"):
                for q in _DENOMS:
                    if out(h + "/" + q):
                        yield h + "/" + q
            if grow:
                for d in digits:
                    for d2 in digits:
                        if out(h + d + d2):
                            yield h + d + d2
    elif part == "frac":
        for d in "123456789":
            if out(text + d):
                yield text + d
        for d in digits:
            for d2 in "123456789":
                if out(text + d + d2):
                    yield text + d + d2
    else:
        for d in digits:
            if out(text + d):
                yield text + d
        for q in _DENOMS:
            if out(text + q):
                yield text + q
        for d in digits:
            for d2 in digits:
                if out(text + d + d2):
                    yield text + d + d2
