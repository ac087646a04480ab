"""Question text: phrases with slots, compiled once, rendered per record.

A slot is ``{var}`` or ``{var.attr}``. Numbers render in their variable's format (``money``:
"$12.50", ``percent``: "25%", ``number``: "1,200" or, for small round counts, words; ``plain``:
digits only). People render by name on first mention and by pronoun after, unless another person
of the same pronoun was named in between (``{name.they}``, ``{name.them}``, ``{name.their}``,
``{name.theirs}``, ``{name.themself}``), so facts can be shuffled without breaking references.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from random import Random

from ..errors import TracelangError
from ..numbers import Exact, render
from .numwords import to_words, wordable
from .pools import PRONOUN_ATTRS, PoolEntry

_SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\}")
FORMATS = ("number", "money", "percent", "plain")
NUMBER_ATTRS = frozenset({"words", "digits"})


class TextError(TracelangError, ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Slot:
    var: str
    attr: str | None
    digits: bool = False  # written next to "$" or "%": never as words


@dataclass(frozen=True)
class Text:
    """A phrase compiled into literal pieces and slots."""

    source: str
    pieces: tuple[str | Slot, ...]

    @property
    def slots(self) -> list[Slot]:
        return [p for p in self.pieces if isinstance(p, Slot)]

    @property
    def vars(self) -> frozenset[str]:
        return frozenset(p.var for p in self.pieces if isinstance(p, Slot))


def compile_text(source: str) -> Text:
    if not isinstance(source, str) or not source.strip():
        raise TextError(f"a phrase must be non-empty text, got {source!r}")
    pieces: list[str | Slot] = []
    pos = 0
    for m in _SLOT.finditer(source):
        literal = source[pos:m.start()]
        _no_braces(literal, source)
        if literal:
            pieces.append(literal)
        digits = literal.endswith("$") or source[m.end():m.end() + 1] in ("%", "$")
        pieces.append(Slot(m.group(1), m.group(2), digits))
        pos = m.end()
    _no_braces(source[pos:], source)
    if source[pos:]:
        pieces.append(source[pos:])
    return Text(source, tuple(pieces))


def _no_braces(literal: str, source: str) -> None:
    for ch in "{}":
        if ch in literal:
            raise TextError(f"stray `{ch}` in `{source}` (a slot is `{{var}}` or `{{var.attr}}`)")


@dataclass(frozen=True, slots=True)
class Format:
    kind: str = "number"  # number | money | percent | plain
    words: bool = True  # a whole number may be written as words


def _grouped(n: int) -> str:
    return f"{n:,}"


def money_text(value: Exact) -> str:
    cents = value * 100
    if value.denominator == 1:
        return "$" + _grouped(int(value.numerator))
    if cents.denominator == 1:
        whole, frac = divmod(int(cents.numerator), 100)
        return f"${_grouped(whole)}.{frac:02d}"
    return "$" + render(value)


@dataclass
class Renderer:
    """Renders the sentences of one record, in reading order (mentions depend on order)."""

    rng: Random
    words_p: float = 0.5  # chance that a word-able number slot is written as words
    mentioned: set[int] = field(default_factory=set)
    last_by_gender: dict[str, int] = field(default_factory=dict)
    choices: dict[tuple[int, str], str] = field(default_factory=dict)  # one rendering per variable
    names: list[str] = field(default_factory=list)  # people named in the text, in order

    def sentence(self, text: Text, env: dict, formats: dict[str, Format], start: bool = True) -> str:
        out: list[str] = []
        for piece in text.pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            at_start = start and not "".join(out).strip()
            out.append(self.slot(piece, env, formats, at_start))
        s = "".join(out)
        return s[:1].upper() + s[1:] if start else s

    def slot(self, slot: Slot, env: dict, formats: dict[str, Format], at_start: bool) -> str:
        value = env[slot.var]
        if isinstance(value, PoolEntry):
            return self.entry(value, slot.attr)
        return self.number(value, slot, env, formats.get(slot.var, Format()), at_start)

    def entry(self, entry: PoolEntry, attr: str | None) -> str:
        if entry.gender is None:
            return entry.text if attr is None else str(entry.attrs[attr])
        key = id(entry)
        if attr in PRONOUN_ATTRS:
            known = key in self.mentioned and self.last_by_gender.get(entry.gender) == key
            if known:
                word = str(entry.attrs[attr])
            elif attr in ("their", "theirs"):
                word = entry.text + "'s"
            else:
                word = entry.text
        else:
            word = entry.text if attr is None else str(entry.attrs[attr])
        if attr is None or attr in PRONOUN_ATTRS:
            if key not in self.mentioned:
                self.names.append(entry.text)
            self.mentioned.add(key)
            self.last_by_gender[entry.gender] = key
        return word

    def number(self, value: Exact, slot: Slot, env: dict, fmt: Format, at_start: bool) -> str:
        if slot.attr is not None:  # `.words` / `.digits`: the bare number, no "$" or "%"
            whole = value.denominator == 1
            if slot.attr == "words" and whole and wordable(int(value.numerator)):
                return to_words(int(value.numerator))
            return render(value)
        cache_key = (id(env), slot.var)
        cached = not at_start and not slot.digits  # the same number reads the same way each time
        if cached and cache_key in self.choices:
            return self.choices[cache_key]
        whole = value.denominator == 1
        n = int(value.numerator) if whole else 0
        can_word = whole and fmt.words and not slot.digits and wordable(n)
        if fmt.kind == "money":
            if can_word and n <= 20 and self.rng.random() < self.words_p * 0.3:
                text = f"{to_words(n)} dollar{'s' if n != 1 else ''}"
            else:
                text = money_text(value)
        elif fmt.kind == "percent":
            text = render(value) + ("%" if self.rng.random() < 0.8 else " percent")
        elif fmt.kind == "plain":
            text = render(value)
        elif can_word and (at_start or self.rng.random() < self.words_p):
            text = to_words(n)
        elif whole and n >= 1000 and self.rng.random() < 0.75:
            text = _grouped(n)
        else:
            text = render(value)
        if cached:
            self.choices[cache_key] = text
        return text
