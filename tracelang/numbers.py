"""Exact numbers: literal parsing and canonical rendering.

Values are SymPy's rational field elements (``QQ``): exact like ``sympy.Rational`` but without the
expression-tree overhead, which matters when a corpus executes millions of steps.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from sympy import QQ

Exact = QQ.dtype
ZERO = QQ(0)
ONE = QQ(1)


# Python refuses int() of more than 4300 digits; literals that long are only ever measured.
_MAX_CONVERTED = 4000


@dataclass(frozen=True, slots=True)
class Literal:
    """A number literal as written: its exact value and whether it was written as an operation."""

    value: Exact
    digits: int  # significant decimal digits written, for the size limit
    unreduced: bool  # a p/q that is not in lowest terms (48/2): an operation, not a literal


def floor(x: Exact) -> Exact:
    """The largest integer not above ``x``."""
    return Exact(x.numerator // x.denominator)


def ceil(x: Exact) -> Exact:
    """The smallest integer not below ``x``."""
    return Exact(-((-x.numerator) // x.denominator))


def mod(a: Exact, b: Exact) -> Exact:
    """The floored remainder of ``a / b`` (it takes the sign of ``b``). ``b`` must not be zero: each
    caller refuses a zero divisor with its own error."""
    return a - b * floor(a / b)


def power_bits(base: Exact, exponent: int) -> int:
    """An upper bound on the bits of ``base ** exponent``'s numerator and denominator, to refuse a
    power too large before computing it."""
    return max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(exponent)


def _decimal(text: str) -> Exact:
    whole, _, frac = text.partition(".")
    num = int((whole or "0") + frac)
    return QQ(num, 10 ** len(frac))


@lru_cache(maxsize=8192)
def _digits(text: str) -> bool:
    """ASCII digits only: str.isdigit also takes superscripts (``²``), which int() refuses, and
    other scripts' digits, which no trace or answer here is written in."""
    return text.isascii() and text.isdigit()


def parse_literal(text: str) -> Literal | None:
    """Parse a NUMBER token (``12``, ``-3.50``, ``.5``, ``3/4``). None if it is not one."""
    body = text.lstrip("+-")
    negative = text.startswith("-")
    top, slash, bottom = body.partition("/")
    if not top or not _digits(top.replace(".", "", 1)):
        return None
    digits = len(top.replace(".", "").lstrip("0")) + len(bottom.replace(".", "").lstrip("0"))
    if len(top) + len(bottom) > _MAX_CONVERTED:  # report the size; never convert it (nor hang)
        return Literal(ZERO, max(digits, _MAX_CONVERTED), unreduced=False)
    value = _decimal(top)
    unreduced = False
    if slash:
        if not bottom or not _digits(bottom.replace(".", "", 1)):
            return None
        den = _decimal(bottom)
        if den == 0:
            return Literal(ZERO, digits, unreduced=True)
        # Only an integer p/q in lowest terms with q > 1 is a literal; anything else is arithmetic.
        unreduced = "." in top or "." in bottom or den.denominator != 1 or den == 1
        value = value / den
        if not unreduced and value.denominator != den.numerator:
            unreduced = True
    return Literal(-value if negative else value, digits, unreduced)


def _terminating_digits(q: int) -> int | None:
    """Decimal places needed to write 1/q exactly, or None when q has a prime factor besides 2, 5."""
    twos = fives = 0
    while q % 2 == 0:
        q //= 2
        twos += 1
    while q % 5 == 0:
        q //= 5
        fives += 1
    return max(twos, fives) if q == 1 else None


def render(value: Exact) -> str:
    """Canonical text of an exact value: integer, terminating decimal, else p/q."""
    p, q = value.numerator, value.denominator
    if q == 1:
        return str(p)
    places = _terminating_digits(q)
    if places is None:
        return f"{p}/{q}"
    sign = "-" if p < 0 else ""
    scaled = abs(p) * 10**places // q
    whole, frac = divmod(scaled, 10**places)
    return f"{sign}{whole}.{str(frac).rjust(places, '0').rstrip('0')}"


# Room for any value the runtime may compute (400 digits over 400 digits), far below _MAX_CONVERTED.
_MAX_ANSWER_CHARS = 1_000
_ANSWER_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)(?:/(?:\d+(?:\.\d+)?|\.\d+))?")


def answer_value(answer: object) -> Exact | None:
    """A record's expected answer as JSON gives it (a string or a number), or None when it is not a
    finite exact number: NaN, infinities, true/false, null, lists, objects, words, ``1/0``."""
    if answer is None or isinstance(answer, bool):
        return None
    if isinstance(answer, float):
        return parse_answer(repr(answer)) if math.isfinite(answer) else None
    if isinstance(answer, (int, str)):
        return parse_answer(str(answer))
    return None


def parse_answer(text: str) -> Exact | None:
    """Parse a stated answer: ``72``, ``1,000``, ``-3.5``, ``$12``, ``2/3``, ``#### 18``."""
    cleaned = str(text).strip()
    if "####" in cleaned:
        cleaned = cleaned.rsplit("####", 1)[1].strip()
    cleaned = cleaned.replace(",", "").replace("$", "").strip()
    if cleaned.endswith("%"):
        cleaned = cleaned[:-1]
    if len(cleaned) > _MAX_ANSWER_CHARS or not _ANSWER_TEXT.fullmatch(cleaned):
        return None  # one sign at most, digits, an optional decimal point and denominator: nothing else
    top, slash, bottom = cleaned.lstrip("+-").partition("/")
    if slash and bottom.replace(".", "", 1).isdigit() and not bottom.strip("0."):
        return None  # a zero denominator is no number (parse_literal reads it as 0 to report it in traces)
    lit = parse_literal(cleaned)
    return None if lit is None else lit.value
