"""Quantities in question text: every number a question states, with its span and exact value, and
the constants a trace may use without the question writing them (60 minutes in an hour, ...).

``extract`` finds digits (commas, decimals, scale words: ``1,200``, ``2.5 million``), money
(``$1.50``, ``75 cents``), percents, fractions (``3/4``, ``3 1/2``, ``½``), number words
(``forty-five``, ``two hundred and six``), word fractions (``half``, ``a quarter``, ``two-thirds``,
``one and a half``), multipliers (``twice``, ``triple``), dozens and pairs, and ordinals. Each
quantity carries ``also``: values trivially derived from it that a trace may write instead (25 and
0.25 for "25%", 3 and 4 for "3/4", 2 for "half"). ``spec/quantities.md`` is the reference.

Grounding (``grounder_for``) accepts an init value when it is a quantity, one of its derived values,
or a constant whose cue word the question contains. The constrained decoder narrows init values to
``allowed_values(question)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from .numbers import Exact, render

# ---------------------------------------------------------------- the result type


@dataclass(frozen=True, slots=True)
class Quantity:
    value: Exact
    start: int  # character offsets in the question, end exclusive
    end: int
    text: str
    kind: str  # number | money | percent | fraction | word | multiplier | ordinal | count
    also: tuple[Exact, ...] = ()  # values trivially derived from this one

    @property
    def values(self) -> tuple[Exact, ...]:
        return (self.value, *self.also)


@dataclass(frozen=True, slots=True)
class Constant:
    value: Exact
    name: str  # the variable name an importer gives it
    cue: str  # the word of the question that licenses it ("" for the universal ones)


# ---------------------------------------------------------------- word tables

UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
        "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
# Denominators of word fractions ("two-thirds"); "half" and "quarter" also stand alone ("a quarter").
DENOMINATORS = {
    "half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4, "fourth": 4, "fourths": 4,
    "fifth": 5, "fifths": 5, "sixth": 6, "sixths": 6, "seventh": 7, "sevenths": 7, "eighth": 8, "eighths": 8,
    "ninth": 9, "ninths": 9, "tenth": 10, "tenths": 10, "twelfth": 12, "twelfths": 12, "twentieth": 20,
    "twentieths": 20, "hundredth": 100, "hundredths": 100, "thousandth": 1000, "thousandths": 1000,
}
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "twentieth": 20, "hundredth": 100,
}
MULTIPLIERS = {
    "twice": 2, "double": 2, "doubled": 2, "doubles": 2, "doubling": 2, "thrice": 3, "triple": 3,
    "tripled": 3, "triples": 3, "tripling": 3, "quadruple": 4, "quadrupled": 4, "quadruples": 4,
    "quintuple": 5, "quintupled": 5,
}
# Group words: "a dozen", "two dozen", "dozens of", "a pair of", "a couple of".
GROUPS = {"dozen": 12, "dozens": 12, "pair": 2, "pairs": 2, "couple": 2, "score": 20}
UNICODE_FRACTIONS = {"½": (1, 2), "⅓": (1, 3), "⅔": (2, 3), "¼": (1, 4), "¾": (3, 4), "⅕": (1, 5),
                     "⅛": (1, 8)}

# ---------------------------------------------------------------- constants

# Value, variable name, cue pattern (matched on the lowercased question). A constant is allowed when
# its cue occurs; the universal ones (cue "", last) always are. Order matters only for the name: the
# first row whose cue matches names the value.
CONSTANTS_TABLE: tuple[tuple[int | tuple[int, int], str, str], ...] = (
    (2, "half_divisor", r"\bhal(f|ves)\b"),
    (2, "twice", r"\btwice\b|\bdoubl"),
    (2, "pair", r"\bpairs?\b|\bcouples?\b|\bboth\b|\btwins?\b|\bround[- ]trip|\beach way\b|\bback and forth\b"),
    (3, "triple", r"\btripl|\bthrice\b|\bthirds?\b|\btriplets?\b|\btrio\b|\btriangle"),
    (4, "quarters", r"\bquarters?\b|\bquadrupl|\bfourths?\b|\bsquare"),
    (12, "dozen", r"\bdozens?\b"),
    (12, "months_per_year", r"\bmonths?\b|\byears?\b|\bannual|\byearly\b"),
    (12, "inches_per_foot", r"\bfeet\b|\bfoot\b|\binch"),
    (60, "minutes_per_hour", r"\bhours?\b|\bminutes?\b|\bhourly\b"),
    (60, "seconds_per_minute", r"\bseconds?\b"),
    (24, "hours_per_day", r"\bdays?\b|\bdaily\b|\bhours?\b"),
    (7, "days_per_week", r"\bweeks?\b|\bweekly\b|\bdays\b"),
    (52, "weeks_per_year", r"\byears?\b|\bannual|\byearly\b"),
    (365, "days_per_year", r"\byears?\b|\bannual|\byearly\b"),
    (5, "weekdays_per_week", r"\bweekdays?\b|\bwork ?weeks?\b|\bschool ?weeks?\b|\bmonday|\bfriday"),
    (2, "weekend_days", r"\bweekends?\b"),
    (30, "days_per_month", r"\bmonths?\b|\bmonthly\b|\bapril\b|\bjune\b|\bseptember\b|\bnovember\b"),
    (31, "days_in_month", r"\bjanuary\b|\bmarch\b|\bmay\b|\bjuly\b|\baugust\b|\boctober\b|\bdecember\b"),
    (28, "days_in_february", r"\bfebruary\b"),
    (366, "days_per_leap_year", r"\bleap year"),
    (4, "weeks_per_month", r"\bmonths?\b|\bmonthly\b"),
    (100, "percent", r"%|\bpercent|\bper cent\b"),
    (100, "cents_per_dollar", r"\bcents?\b|\bpenn(y|ies)\b|\bdollars?\b|\$"),
    (25, "cents_per_quarter", r"\bquarters\b"),
    (10, "cents_per_dime", r"\bdimes?\b"),
    (5, "cents_per_nickel", r"\bnickels?\b"),
    ((1, 4), "quarter_value", r"\bquarters\b"),
    ((1, 10), "dime_value", r"\bdimes?\b"),
    ((1, 20), "nickel_value", r"\bnickels?\b"),
    ((1, 100), "penny_value", r"\bpenn(y|ies)\b|\bcents?\b"),
    (100, "years_per_century", r"\bcentur(y|ies)\b"),
    (10, "years_per_decade", r"\bdecades?\b"),
    (100, "centimeters_per_meter", r"\bmeters?\b|\bcentimeters?\b|\bcm\b"),
    (1000, "per_thousand", r"\bkilo|\bkm\b|\bkg\b|\bgrams?\b|\bliters?\b|\bmilliliters?\b|\bml\b|\bthousand"),
    (3, "feet_per_yard", r"\byards?\b"),
    (36, "inches_per_yard", r"\byards?\b"),
    (5280, "feet_per_mile", r"\bmiles?\b"),
    (16, "ounces_per_pound", r"\bpounds?\b|\blbs?\b|\bounces?\b"),
    (4, "quarts_per_gallon", r"\bgallons?\b|\bquarts?\b"),
    (128, "ounces_per_gallon", r"\bgallons?\b"),
    (8, "pints_per_gallon", r"\bgallons?\b|\bpints?\b"),
    (16, "ounces_per_pint", r"\bpints?\b"),
    (32, "ounces_per_quart", r"\bquarts?\b"),
    (8, "ounces_per_cup", r"\bcups?\b"),
    (2000, "pounds_per_ton", r"\btons?\b"),
    (10, "ten", r"\bdecimal|\btens\b|\bdimes?\b"),
    (4, "legs_per_animal", r"\blegs?\b|\bpaws?\b|\bfeet\b"),
    (2, "legs_per_bird", r"\blegs?\b|\bfeet\b"),
    (4, "wheels_per_car", r"\bwheels?\b|\btires?\b"),
    (2, "wheels_per_bicycle", r"\bwheels?\b|\btires?\b"),
    (3, "wheels_per_tricycle", r"\btricycles?\b"),
    (4, "sides_per_square", r"\bsquare|\brectang|\bwalls\b"),
    (3, "sides_per_triangle", r"\btriang"),
    # universal: always allowed (named by a cue row above when one matches)
    (0, "zero", ""),
    (1, "one", ""),
    (2, "two", ""),
    (100, "hundred", ""),
)


@lru_cache(maxsize=1)
def _constant_rows() -> tuple[tuple[Constant, re.Pattern | None], ...]:
    rows = []
    for value, name, cue in CONSTANTS_TABLE:
        exact = Exact(*value) if isinstance(value, tuple) else Exact(value)
        rows.append((Constant(exact, name, cue), re.compile(cue) if cue else None))
    return tuple(rows)


def constants_markdown() -> str:
    """The constants table as spec/quantities.md shows it (a test keeps the two equal)."""
    lines = ["| value | name | cue (regex on the lowercased question) |", "| --- | --- | --- |"]
    for const, _ in _constant_rows():
        cue = "(always)" if not const.cue else "`" + const.cue.replace("|", "\\|") + "`"
        lines.append(f"| {render(const.value)} | `{const.name}` | {cue} |")
    return "\n".join(lines) + "\n"


def constants_for(question: str) -> list[Constant]:
    """The constants the question licenses, one per value (the first matching row names it)."""
    return list(_constants_for(question))


@lru_cache(maxsize=4096)
def _constants_for(question: str) -> tuple[Constant, ...]:
    lower = question.lower()
    found: dict[str, str | None] = {}  # cue -> the text it matched (several rows share a cue)
    seen: dict[Exact, Constant] = {}
    for const, cue in _constant_rows():
        if const.value in seen:
            continue
        if cue is None:
            seen[const.value] = Constant(const.value, const.name, "")
            continue
        if const.cue not in found:
            m = cue.search(lower)
            found[const.cue] = m.group(0) if m else None
        if found[const.cue] is not None:
            seen[const.value] = Constant(const.value, const.name, found[const.cue])
    return tuple(seen.values())


# ---------------------------------------------------------------- digits
# ASCII only: [0-9], not \d, which also matches Arabic-Indic and fullwidth digits (no trace or
# answer is written in them, so no quantity is either).

_NUM = r"(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+"
_SCALE = r"(?:\s*(?P<scale>hundred|thousand|million|billion|trillion)\b|(?P<k>[kK])\b)?"
_DIGITS = re.compile(
    r"(?<![\w.,/])"  # not inside a word, a decimal or a fraction
    r"(?:(?P<dollar>\$)\s?)?"
    r"(?:(?P<mixed_whole>[0-9]+)(?:\s+|\s+and\s+|-)(?P<mixed_num>[0-9]+)/(?P<mixed_den>[0-9]+)(?![0-9/])"
    r"|(?P<frac_num>[0-9]+)\s?/\s?(?P<frac_den>[0-9]+)(?![0-9/])"
    r"|(?P<num>" + _NUM + r")" + _SCALE + r"(?P<ord>st|nd|rd|th)?"
    r"(?:\s*(?P<pct>%|percent\b|per\s?cent\b)|\s*(?P<cents>cents?\b|¢))?"
    r")"
)
_AND_A_FRACTION = re.compile(r"(?<![\w.,/])(?P<whole>[0-9]+)\s+and\s+(?:a|one)?[\s-]?(?P<den>half|third|quarter)\b"
                             r"(?P<dozen>\s+dozen\b)?", re.IGNORECASE)
# The whole part starts only where a digit run starts: without the look-behind every position inside
# a long run of digits would retry the run to its end (quadratic in the run's length).
_UNICODE_FRACTION = re.compile(r"(?:(?<![0-9])(?P<whole>[0-9]+)\s?)?(?P<frac>[" + "".join(UNICODE_FRACTIONS) + "])")


MAX_DIGITS = 40  # a longer digit run is no grade-school quantity (and int() of it is slow)


def _number(text: str) -> Exact | None:
    whole, _, frac = text.replace(",", "").partition(".")
    if len(whole) + len(frac) > MAX_DIGITS:
        return None
    return Exact(int((whole or "0") + frac), 10 ** len(frac))


def _percent(value: Exact, start: int, end: int, text: str) -> Quantity:
    # Percent ops take rates in percent (25), plain arithmetic the fraction (0.25); "25% off" leaves
    # 75% (0.75) and "25% more" makes 125% (1.25).
    also = (value / 100, 100 - value, 1 - value / 100, 100 + value, 1 + value / 100)
    return Quantity(value, start, end, text, "percent", tuple(v for v in also if v > 0))


def _digit_quantities(question: str) -> list[Quantity]:
    out: list[Quantity] = []
    for m in _DIGITS.finditer(question):
        start, end, text = m.start(), m.end(), m.group(0)
        if len(text) > 3 * MAX_DIGITS:
            continue
        if m.group("mixed_whole") is not None:
            num, den = int(m.group("mixed_num")), int(m.group("mixed_den"))
            if den == 0:
                continue
            whole = int(m.group("mixed_whole"))
            value = whole + Exact(num, den)
            out.append(Quantity(value, start, end, text, "fraction",
                                (Exact(whole), Exact(num, den), Exact(num), Exact(den))))
            continue
        if m.group("frac_num") is not None:
            num, den = int(m.group("frac_num")), int(m.group("frac_den"))
            if den == 0:
                continue
            out.append(Quantity(Exact(num, den), start, end, text, "fraction", (Exact(num), Exact(den))))
            continue
        raw = _number(m.group("num"))
        if raw is None:
            continue
        value, also = raw, []
        scale = m.group("scale")
        if scale or m.group("k"):
            factor = SCALES[scale.lower()] if scale else 1000
            value = raw * factor
            also += [raw, Exact(factor)]
        if m.group("pct"):
            out.append(_percent(value, start, end, text))
        elif m.group("cents"):
            out.append(Quantity(value, start, end, text, "money", (value / 100, *also)))
        elif m.group("dollar"):
            if value.denominator != 1:  # $1.25 is also 125 cents
                also.append(value * 100)
            out.append(Quantity(value, start, end, text, "money", tuple(also)))
        elif m.group("ord"):
            out.append(Quantity(value, start, end, text, "ordinal", tuple(also)))
        else:
            out.append(Quantity(value, start, end, text, "number", tuple(also)))
    for m in _AND_A_FRACTION.finditer(question):  # "2 and a half", "2 and a half dozen"
        if len(m.group("whole")) > MAX_DIGITS:
            continue
        whole, den = int(m.group("whole")), DENOMINATORS[m.group("den").lower()]
        value, also = whole + Exact(1, den), [Exact(whole), Exact(1, den), Exact(den)]
        if m.group("dozen"):
            value, also = value * 12, [value, *also, Exact(12)]
        out.append(Quantity(value, m.start(), m.end(), m.group(0), "fraction", tuple(also)))
    for m in _UNICODE_FRACTION.finditer(question):
        num, den = UNICODE_FRACTIONS[m.group("frac")]
        frac = Exact(num, den)
        if m.group("whole") and len(m.group("whole")) <= MAX_DIGITS:
            whole = int(m.group("whole"))
            out.append(Quantity(whole + frac, m.start(), m.end(), m.group(0), "fraction",
                                (Exact(whole), frac, Exact(num), Exact(den))))
        else:
            out.append(Quantity(frac, m.start(), m.end(), m.group(0), "fraction", (Exact(num), Exact(den))))
    return out


# ---------------------------------------------------------------- words

_WORD = re.compile(r"[A-Za-z]+")
_PERCENT_AFTER = re.compile(r"\s*(?:percent\b|per\s?cent\b|%)")


@dataclass(slots=True)
class _Tok:
    word: str  # lowercased
    start: int
    end: int
    joiner: str = field(default="")  # the text between the previous token and this one


def _tokens(question: str) -> list[_Tok]:
    toks: list[_Tok] = []
    prev_end = 0
    for m in _WORD.finditer(question):
        toks.append(_Tok(m.group(0).lower(), m.start(), m.end(), question[prev_end:m.start()]))
        prev_end = m.end()
    return toks


def _adjacent(tok: _Tok) -> bool:
    """True when the token follows the previous one with only a space or a hyphen between them."""
    return tok.joiner in (" ", "-", " - ")


def _below_hundred(toks: list[_Tok], j: int) -> tuple[int, int] | None:
    """"seven", "forty", "forty-five", "forty five" at token j; (value, next j)."""
    if j >= len(toks):
        return None
    w = toks[j].word
    if w in UNITS:
        return UNITS[w], j + 1
    if w in TENS:
        if j + 1 < len(toks) and _adjacent(toks[j + 1]) and 0 < UNITS.get(toks[j + 1].word, 0) < 10:
            return TENS[w] + UNITS[toks[j + 1].word], j + 2
        return TENS[w], j + 1
    return None


def _below_thousand(toks: list[_Tok], j: int, one: bool = False) -> tuple[int, int] | None:
    """"two hundred and six", "twelve hundred", "eighty-one" at token j; (value, next j). With
    ``one``, token j-1 was "a" standing for one ("a hundred and ten")."""
    head = (1, j) if one else _below_hundred(toks, j)
    if head is None:
        return None
    value, j = head
    if value and j < len(toks) and toks[j].word == "hundred" and _adjacent(toks[j]):
        value, j = value * 100, j + 1
        k = j + 1 if j < len(toks) and toks[j].word == "and" and _adjacent(toks[j]) else j
        if k < len(toks) and _adjacent(toks[k]):
            tail = _below_hundred(toks, k)
            if tail is not None and tail[0]:
                value, j = value + tail[0], tail[1]
    return value, j


def _cardinal(toks: list[_Tok], i: int, one: bool = False) -> tuple[int, int] | None:
    """A cardinal number phrase at token i ("three million two hundred thousand"); (value, next i).
    With ``one``, token i-1 was "a" ("a thousand")."""
    group = _below_thousand(toks, i, one)
    if group is None:
        return None
    total, (value, j) = 0, group
    while j < len(toks) and _adjacent(toks[j]) and toks[j].word in SCALES and toks[j].word != "hundred" and value:
        total += value * SCALES[toks[j].word]
        value, j = 0, j + 1
        k = j + 1 if j < len(toks) and toks[j].word == "and" else j
        if k < len(toks) and _adjacent(toks[k]):
            nxt = _below_thousand(toks, k)
            if nxt is not None and nxt[0]:
                value, j = nxt
    return total + value, j


def _word_quantities(question: str) -> list[Quantity]:
    toks = _tokens(question)
    out: list[Quantity] = []
    i = 0

    def add(value: Exact, a: int, b: int, kind: str, also: tuple[Exact, ...] = ()) -> None:
        start, end = toks[a].start, toks[b - 1].end
        out.append(Quantity(value, start, end, question[start:end], kind, also))

    while i < len(toks):
        w = toks[i].word
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        # "a hundred", "a thousand", "a dozen", "a pair of", "a couple of", "a half", "a third"
        if w in ("a", "an") and nxt is not None and _adjacent(nxt):
            if nxt.word in SCALES:
                card = _cardinal(toks, i + 1, one=True)
                value, j = card if card else (SCALES[nxt.word], i + 2)
                if _PERCENT_AFTER.match(question, toks[j - 1].end):
                    pm = _PERCENT_AFTER.match(question, toks[j - 1].end)
                    out.append(_percent(Exact(value), toks[i].start, pm.end(), question[toks[i].start:pm.end()]))
                else:
                    add(Exact(value), i, j, "word")
                i = j
                continue
            if nxt.word in GROUPS and nxt.word not in ("dozens", "pairs"):
                add(Exact(GROUPS[nxt.word]), i, i + 2, "word")
                i += 2
                continue
            if nxt.word in ("half", "third", "quarter", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
                            "tenth", "twelfth", "hundredth", "thousandth"):
                den = DENOMINATORS[nxt.word]
                add(Exact(1, den), i, i + 2, "fraction", (Exact(den),))
                i += 2
                continue
        if w == "half" and nxt is not None and nxt.word in ("a", "an") and i + 2 < len(toks) \
                and toks[i + 2].word == "dozen":
            add(Exact(6), i, i + 3, "word", (Exact(1, 2), Exact(2), Exact(12)))
            i += 3
            continue
        if w in UNITS or w in TENS:
            value, j = _cardinal(toks, i)  # type: ignore[misc]
            after = toks[j] if j < len(toks) else None
            # "two and a half", "one and one-third"
            k = j + 2 if j + 1 < len(toks) and toks[j + 1].word in ("a", "one") else j + 1
            if after is not None and after.word == "and" and k < len(toks) and toks[k].word in DENOMINATORS \
                    and DENOMINATORS[toks[k].word] in (2, 3, 4):
                den = DENOMINATORS[toks[k].word]
                frac, also = value + Exact(1, den), [Exact(value), Exact(1, den), Exact(den)]
                k += 1
                if k < len(toks) and toks[k].word == "dozen" and _adjacent(toks[k]):  # "two and a half dozen"
                    frac, also, k = frac * 12, [frac, *also, Exact(12)], k + 1
                add(frac, i, k, "fraction", tuple(also))
                i = k
                continue
            # "two-thirds", "three quarters", "one fifth"
            if after is not None and _adjacent(after) and after.word in DENOMINATORS and 0 < value < 100 \
                    and after.word != "second":
                den = DENOMINATORS[after.word]
                add(Exact(value, den), i, j + 1, "fraction", (Exact(value), Exact(den)))
                i = j + 1
                continue
            # "two dozen", "three pairs"
            if after is not None and _adjacent(after) and after.word in GROUPS:
                group = GROUPS[after.word]
                add(Exact(value * group), i, j + 1, "word", (Exact(value), Exact(group)))
                i = j + 1
                continue
            pm = _PERCENT_AFTER.match(question, toks[j - 1].end)
            if pm:
                start = toks[i].start
                out.append(_percent(Exact(value), start, pm.end(), question[start:pm.end()]))
            else:
                add(Exact(value), i, j, "word")
            i = j
            continue
        if w in ("half", "halves"):
            add(Exact(1, 2), i, i + 1, "fraction", (Exact(2),))
        elif w in MULTIPLIERS:
            add(Exact(MULTIPLIERS[w]), i, i + 1, "multiplier")
        elif w in ("dozens", "pairs"):
            add(Exact(GROUPS[w]), i, i + 1, "word")
        elif w in ORDINALS and w != "second" and i > 0 and toks[i - 1].word in ("the", "every", "each", "its",
                                                                                 "his", "her", "their", "a"):
            add(Exact(ORDINALS[w]), i, i + 1, "ordinal")
        i += 1
    return out


# ---------------------------------------------------------------- enumerations

# "Tuesdays, Thursdays, and Saturdays", "Anna, Ben and Carl": a list of three or more capitalised
# items states a count the solution uses.
_ITEM = r"(?!(?:One|Two|Three|Four|Five|Six|Seven|Eight|Nine|Ten)\b)[A-Z][a-z]+(?:'s)?"
# A run of comma-separated items, then "and"/"or" and the last one; matched in two steps so that a
# long list without an "and" costs linear time, not quadratic backtracking.
_ITEM_RUN = re.compile(rf"\b{_ITEM}(?:,\s+{_ITEM})+")
_LAST_ITEM = re.compile(rf",?\s+(?:and|or)\s+{_ITEM}\b")


def _enumerations(question: str) -> list[Quantity]:
    out = []
    for m in _ITEM_RUN.finditer(question):
        last = _LAST_ITEM.match(question, m.end())
        if last is None:
            continue
        text = question[m.start():last.end()]
        items = len(re.findall(_ITEM, text))
        out.append(Quantity(Exact(items), m.start(), last.end(), text, "count"))
    return out


# ---------------------------------------------------------------- the public functions

@lru_cache(maxsize=4096)
def _extract(question: str) -> tuple[Quantity, ...]:
    found = sorted(_digit_quantities(question) + _word_quantities(question) + _enumerations(question),
                   key=lambda q: (q.start, -q.end))
    out: list[Quantity] = []
    end = -1
    for q in found:  # leftmost-longest: drop anything inside an earlier match
        if q.start >= end:
            also = tuple(dict.fromkeys(v for v in q.also if v != q.value))
            out.append(q if also == q.also else Quantity(q.value, q.start, q.end, q.text, q.kind, also))
            end = q.end
    return tuple(out)


def extract(question: str) -> list[Quantity]:
    """Every quantity the question states, in text order, non-overlapping (leftmost-longest)."""
    return list(_extract(question))


@lru_cache(maxsize=4096)
def _allowed(question: str) -> frozenset[Exact]:
    values: set[Exact] = set()
    for q in _extract(question):
        values.update(q.values)
    values.update(c.value for c in _constants_for(question))
    return frozenset(values)


def allowed_values(question: str) -> set[Exact]:
    """The values an init may take for this question: its quantities, their derived values, and the
    constants it licenses. The constrained decoder narrows init literals to these."""
    return set(_allowed(question))


@lru_cache(maxsize=4096)
def _stated(question: str) -> frozenset[Exact]:
    return frozenset(q.value for q in _extract(question))


def stated_values(question: str) -> set[Exact]:
    """The values the question itself states (each quantity as written; neither its derived values
    nor constants): an input holding one is exempt from the checker's no-op rule (E401)."""
    return set(_stated(question))


@dataclass(frozen=True, slots=True)
class _Grounder:
    allowed: frozenset[Exact]
    stated_values: frozenset[Exact]

    def __call__(self, value: Exact) -> bool:
        return value in self.allowed

    def stated(self, value: Exact) -> bool:
        return value in self.stated_values


def grounder_for(question: str) -> Callable[[Exact], bool]:
    """A checker grounding hook (``tracelang.checker.Grounder``) for this question, with ``stated``."""
    return _Grounder(_allowed(question), _stated(question))
