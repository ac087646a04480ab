"""Numbers written as words: rendering ("twenty-four") and detection (for corpus statistics).

Detection counts the words a reader must turn into a number: cardinals ("three", "a hundred"),
multiplicatives ("twice", "double", "triple"), fractions ("half", "a third", "quarter") and
"dozen". Ordinals are left out ("second" is also a unit of time). The same detector measures our
corpora and GSM-8K, so the comparison is like for like.
"""

from __future__ import annotations

import re

from ..grounding import TENS, UNITS

# The words grounding reads, by value: _ONES[n] for n < 20, _TENS[n] for n tens.
_ONES = sorted(UNITS, key=UNITS.__getitem__)
_TENS = ["", "", *sorted(TENS, key=TENS.__getitem__)]

NUMBER_WORDS = frozenset(
    _ONES + _TENS[2:]
    + ["hundred", "hundreds", "thousand", "thousands", "million", "millions", "billion",
       "twice", "thrice", "double", "doubles", "doubled", "triple", "tripled", "triples", "quadruple",
       "half", "halves", "third", "thirds", "quarter", "quarters", "fourth", "fourths", "fifth", "fifths",
       "dozen", "dozens"]
)
_DETECT = re.compile(r"\b(" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")\b", re.IGNORECASE)


def has_number_word(text: str) -> bool:
    return _DETECT.search(text) is not None


def number_words_in(text: str) -> list[str]:
    return [m.group(1).lower() for m in _DETECT.finditer(text)]


def to_words(n: int) -> str:
    """English words for 0 <= n < 1,000,000 ("three hundred forty-five")."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"{n} is outside the range written as words")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {to_words(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    return f"{to_words(thousands)} thousand" + (f" {to_words(rest)}" if rest else "")


def wordable(n: int) -> bool:
    """Numbers people write as words in word problems: small counts and round tens and hundreds."""
    return 0 < n <= 20 or (n <= 100 and n % 10 == 0) or n in (1000, 200, 300, 500)
