"""Named pools of words the templates draw from: people, items, places, units, ...

A pools file is TOML; each table is one pool::

    [people]                      # kind "people": names by pronoun
    kind = "people"
    she = ["Amara", ...]
    he = ["Bilal", ...]

    ["items.fruit"]               # kind "items": countable things, "singular" or "singular|plural"
    kind = "items"
    entries = ["apple", "cherry|cherries"]

    [places]                      # kind "words" (the default): plain strings
    entries = ["the library"]

    ["units.time"]                # tables: every entry has the same keys; numbers become exact
    entries = [{big = "hour", bigs = "hours", small = "minute", smalls = "minutes", factor = 60}]

Slots read an entry's text (``{item}``) or an attribute (``{item.one}``, ``{unit.factor}``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ..fileio import InputError, read_text
from ..numbers import Exact
from .expr import MAX_DIGITS

_PRONOUNS = {
    "she": {"they": "she", "them": "her", "their": "her", "theirs": "hers", "themself": "herself"},
    "he": {"they": "he", "them": "him", "their": "his", "theirs": "his", "themself": "himself"},
}
PRONOUN_ATTRS = frozenset(_PRONOUNS["she"])
_IDENT = re.compile(r"[^a-z0-9]+")


class PoolError(UsageError, ValueError):
    """A malformed pools file, with the file and pool named."""


def identifier(text: str) -> str:
    """A trace variable name for a word: ``"Ana María"`` -> ``ana_maria``."""
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    ident = _IDENT.sub("_", ascii_text).strip("_") or "x"
    return ident if not ident[0].isdigit() else "n_" + ident


def plural(word: str) -> str:
    """Regular English plural; irregular ones are written out in the pools (``mouse|mice``)."""
    if re.search(r"(s|x|z|ch|sh)$", word):
        return word + "es"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + "s"


def article(word: str) -> str:
    vowel = word[:1].lower() in "aeiou" and not word.lower().startswith(("uni", "use", "one"))
    return ("an " if vowel else "a ") + word


@dataclass(frozen=True, eq=False)
class PoolEntry:
    """One drawn value: its text, attributes (strings or exact numbers) and, for people, a gender."""

    text: str
    attrs: dict[str, object] = field(default_factory=dict)
    gender: str | None = None  # "she" / "he" for people

    def __repr__(self) -> str:
        return f"PoolEntry({self.text!r})"


@dataclass
class Pool:
    name: str
    kind: str  # people | items | words | table
    entries: list[PoolEntry]
    attr_kinds: dict[str, str]  # attribute -> "num" | "text", common to every entry
    has_text: bool = True  # whether `{var}` alone renders (tables need a `text` key)


def exact_number(value: object, where: str) -> Exact:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PoolError(f"{where}: expected a number, got {value!r}")
    text = repr(value) if isinstance(value, float) else str(value)
    whole, _, frac = text.lstrip("-").partition(".")
    if "e" in text.lower() or len(whole) + len(frac) > MAX_DIGITS:
        raise PoolError(f"{where}: write the number {value!r} plainly (at most {MAX_DIGITS} digits)")
    sign = -1 if text.startswith("-") else 1
    return Exact(sign * int(whole + frac), 10 ** len(frac))


def _people(name: str, table: dict, where: str) -> Pool:
    entries: list[PoolEntry] = []
    for gender in ("she", "he"):
        for person in table.get(gender, []):
            if not isinstance(person, str) or not person.strip():
                raise PoolError(f"{where}: `{gender}` holds {person!r}, not a name")
            attrs: dict[str, object] = dict(_PRONOUNS[gender])
            attrs["id"] = identifier(person)
            entries.append(PoolEntry(person, attrs, gender))
    unknown = set(table) - {"kind", "she", "he"}
    if unknown:
        raise PoolError(f"{where}: unknown keys {sorted(unknown)} (a people pool has `she` and `he`)")
    kinds = dict.fromkeys(_PRONOUNS["she"], "text") | {"id": "text"}
    return Pool(name, "people", entries, kinds)


def _items(name: str, values: list, where: str) -> Pool:
    entries = []
    for i, raw in enumerate(values):
        if not isinstance(raw, str) or not raw.strip():
            raise PoolError(f"{where}: entry {i + 1} is {raw!r}, not `singular` or `singular|plural`")
        one, _, many = raw.partition("|")
        many = many or plural(one)
        entries.append(PoolEntry(many, {"one": one, "many": many, "a": article(one), "id": identifier(many)}))
    return Pool(name, "items", entries, {"one": "text", "many": "text", "a": "text", "id": "text"})


def _table(name: str, values: list, where: str) -> Pool:
    entries: list[PoolEntry] = []
    keys: set[str] | None = None
    kinds: dict[str, str] = {}
    for i, raw in enumerate(values):
        at = f"{where}, entry {i + 1}"
        if not isinstance(raw, dict):
            raise PoolError(f"{at}: mix of tables and strings")
        if keys is not None and set(raw) != keys:
            raise PoolError(f"{at}: keys {sorted(raw)} differ from the first entry's {sorted(keys)}")
        keys = set(raw)
        attrs: dict[str, object] = {}
        for key, value in raw.items():
            if isinstance(value, str):
                attrs[key] = value
                kind = "text"
            else:
                attrs[key] = exact_number(value, f"{at}, `{key}`")
                kind = "num"
            if kinds.setdefault(key, kind) != kind:
                raise PoolError(f"{at}: `{key}` is a {kind} here but not in earlier entries")
        text = attrs.get("text")
        entries.append(PoolEntry(str(text) if text is not None else "", attrs))
    return Pool(name, "table", entries, kinds, has_text="text" in kinds)


def _pool(name: str, table: object, where: str) -> Pool:
    if not isinstance(table, dict):
        raise PoolError(f"{where}: a pool is a table")
    kind = table.get("kind", "words")
    if kind == "people":
        pool = _people(name, table, where)
    else:
        values = table.get("entries")
        if not isinstance(values, list) or not values:
            raise PoolError(f"{where}: `entries` must be a non-empty list")
        unknown = set(table) - {"kind", "entries"}
        if unknown:
            raise PoolError(f"{where}: unknown keys {sorted(unknown)}")
        if kind == "items":
            pool = _items(name, values, where)
        elif kind == "words":
            if all(isinstance(v, dict) for v in values):
                pool = _table(name, values, where)
            else:
                for i, v in enumerate(values):
                    if not isinstance(v, str) or not v.strip():
                        raise PoolError(f"{where}: entry {i + 1} is {v!r}, not a string")
                pool = Pool(name, "words", [PoolEntry(v, {"id": identifier(v)}) for v in values], {"id": "text"})
        else:
            raise PoolError(f"{where}: unknown kind `{kind}` (people, items, words)")
    if not pool.entries:
        raise PoolError(f"{where}: the pool is empty")
    texts = [e.text for e in pool.entries]
    if pool.has_text and len(set(texts)) != len(texts):
        dup = next(t for t in texts if texts.count(t) > 1)
        raise PoolError(f"{where}: `{dup}` is listed twice")
    return pool


def load_pools(paths: list[Path]) -> dict[str, Pool]:
    pools: dict[str, Pool] = {}
    for path in paths:
        try:
            data = tomllib.loads(read_text(path, 1 << 22))  # a pool file is a few kilobytes
        except tomllib.TOMLDecodeError as err:
            raise PoolError(f"{path}: {err}") from None
        except InputError as err:
            raise PoolError(f"cannot read {err}") from None
        for name, table in data.items():
            if name in pools:
                raise PoolError(f"{path}: pool `{name}` is defined twice")
            pools[name] = _pool(name, table, f"{path}: pool `{name}`")
    return pools
