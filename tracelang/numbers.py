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


def _written_digits(number: str) -> int:
    whole, _, frac = number.partition(".")
    return len(whole.lstrip("0")) + len(frac)


def parse_literal(text: str) -> Literal | None:
    """Parse a NUMBER token (``12``, ``-3.50``, ``.5``, ``3/4``). None if it is not one."""
    body = text.lstrip("+-")
    negative = text.startswith("-")
    top, slash, bottom = body.partition("/")
    if not top or not _digits(top.replace(".", "", 1)):
        return None
    # Every digit written counts, except an integer part's leading zeros: `0.000…01` is as long as
    # it is written, not one digit (issue 25).
    digits = _written_digits(top) + _written_digits(bottom)
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
# One answer syntax (issue 25): an optional sign, a currency sign only in front, thousands separators
# only in groups of three, an optional fraction or denominator. Nothing else: no `%`, no `3,6`, no `3$6`.
_UNSIGNED = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_ANSWER_TEXT = re.compile(rf"[+-]?\$?(?P<top>{_UNSIGNED})(?:/(?P<bottom>{_UNSIGNED}))?")
_MARKER = "####"
# A JSON number as written (RFC 8259), read exactly; its exponent is bounded so 1e999999999 is no hang.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE](?P<exp>[+-]?\d+))?")
_MAX_EXPONENT = 400  # the value limit: nothing the runtime computes is larger or finer
_VALUE_BOUND = 10**_MAX_EXPONENT


class JsonFloat(float):
    """A JSON number with a fraction or an exponent, as ``fileio.loads_line`` reads it: a float for
    every other use, carrying the text it was written as so that an answer is read exactly
    (``35.99999999999999999`` is not 36, though its float is)."""

    __slots__ = ("text",)

    def __new__(cls, text: str) -> JsonFloat:
        value = super().__new__(cls, text)
        value.text = text
        return value


def answer_value(answer: object) -> Exact | None:
    """A record's expected answer as JSON gives it (a string or a number), or None when it is not a
    finite exact number: NaN, infinities, true/false, null, lists, objects, words, ``1/0``. A JSON
    number is read from its text (``JsonFloat``), never through a float."""
    if answer is None or isinstance(answer, bool):
        return None
    if isinstance(answer, JsonFloat):
        return number_text_value(answer.text)
    if isinstance(answer, float):  # a float made elsewhere (a hub row): its shortest repr is its text
        return number_text_value(repr(answer)) if math.isfinite(answer) else None
    if isinstance(answer, int):
        return parse_answer(str(answer))
    if isinstance(answer, str):
        return parse_answer(answer)
    return None


def number_text_value(text: str) -> Exact | None:
    """The exact value of a JSON number's text (``1E2``, ``-0.5``, ``3.3e-06``), or None when it is
    not one or its exponent or length is past the limits."""
    m = _JSON_NUMBER.fullmatch(text)
    if m is None or len(text) > _MAX_ANSWER_CHARS:
        return None
    exp = int(m["exp"]) if m["exp"] else 0
    if abs(exp) > _MAX_EXPONENT:
        return None
    mantissa = text[:m.start("exp") - 1] if m["exp"] else text
    literal = parse_literal(mantissa)
    if literal is None:
        return None
    value = literal.value * QQ(10) ** exp
    # no answer is larger or finer than a value the runtime may compute (400 digits each way)
    return None if max(abs(value.numerator), value.denominator) >= _VALUE_BOUND else value


def parse_answer(text: str) -> Exact | None:
    """Parse a stated answer: ``72``, ``1,000``, ``-3.5``, ``$12``, ``2/3``, ``#### 18`` (text before
    one ``####`` marker is GSM-8K's reasoning and is ignored). Anything else is None (see _ANSWER_TEXT)."""
    cleaned = str(text)
    if len(cleaned) > 100 * _MAX_ANSWER_CHARS:
        return None
    if _MARKER in cleaned:
        before, _, cleaned = cleaned.partition(_MARKER)
        if _MARKER in cleaned:
            return None  # two markers: which one is the answer is not ours to guess
    cleaned = cleaned.strip()
    if len(cleaned) > _MAX_ANSWER_CHARS:
        return None
    m = _ANSWER_TEXT.fullmatch(cleaned)
    if m is None:
        return None
    top, bottom = m["top"].replace(",", ""), (m["bottom"] or "").replace(",", "")
    if bottom and not bottom.strip("0."):
        return None  # a zero denominator is no number (parse_literal reads it as 0 to report it in traces)
    sign = "-" if cleaned.startswith("-") else ""
    lit = parse_literal(sign + top + ("/" + bottom if bottom else ""))
    return None if lit is None else lit.value


def float_form(value: Exact) -> Exact | None:
    """The exact value of ``repr(float(value))``: the shortest decimal that reads back as the double
    nearest ``value`` (``56.666666666666664`` for 170/3); None past the double's range. The
    seed-compatibility rule: the study's records hold that float of the exact answer."""
    p, q = value.numerator, value.denominator
    if max(p.bit_length(), q.bit_length()) > 1100:  # cheap bound before Python's correctly-rounded division
        return None
    try:
        nearest = p / q
    except OverflowError:
        return None
    return number_text_value(repr(nearest)) if math.isfinite(nearest) else None


# How far a double evaluation of a trace may land from its exact result, as a share of the largest
# value the trace holds: each of a few dozen steps rounds by at most 2**-53 of what it handles, so
# 2**-40 leaves room for thousands of them (the study's records are off by at most 2**-50, 18,000
# sampled). Only a 16- or 17-digit double gets this margin (float_written), never a hand's decimal.
FLOAT_ERROR = QQ(1, 2**40)


def float_written(value: Exact) -> bool:
    """Whether ``value`` is what only a double's ``repr`` writes: a non-integer that is the shortest
    round-trip decimal of its own double, with 16 or 17 significant digits (``12.800000000000011``,
    ``44.16666666666667``). Fifteen digits or fewer survive a double unchanged, so a decimal a
    person wrote (``56.67``, ``2.5``) never qualifies; ``36.000000000000001`` is not its double's
    shortest form (that is ``36.0``), so it does not either."""
    if value.denominator == 1 or float_form(value) != value:
        return False
    digits = repr(float(value)).lower().split("e")[0].lstrip("-").replace(".", "").strip("0")
    return len(digits) >= 16


def same_answer(result: Exact, expected: Exact, magnitude: Exact | None = None) -> bool:
    """Whether a trace's exact ``result`` grades correct against a record's ``expected`` answer: equal;
    or ``expected`` is the float form of ``result`` (see ``float_form``); or ``expected`` is
    ``float_written`` and within ``FLOAT_ERROR`` of the largest of ``|result|`` and ``magnitude``
    (the largest value the trace held): what a double evaluation of the same steps writes
    (``12.800000000000011`` for 12.8, ``44.16666666666667`` for 265/6). ``56.67`` is not 170/3 and
    ``35.99999999999999999`` is not 36: a decimal a person could write is compared exactly."""
    if result == expected or expected == float_form(result):
        return True
    scale = max(abs(result), abs(magnitude)) if magnitude is not None else abs(result)
    return float_written(expected) and abs(expected - result) <= FLOAT_ERROR * scale
