"""The decoder's levels: named rule sets the guide consults, registered here.

A level is a ``Level`` registered under its name: with it on the guide refuses what it refuses,
with it off the guide lets that through. A ``Levels`` (which are on) is built and parsed by these
names (a recipe's ``constraint_levels``, every ``--levels``), never by position, and help texts
list them from here.

A level brings its rules through two hooks, which the guide calls at its two decision points:
``allows`` (may this branch be taken: another step, an op's rule, another block, the end, ...) and
``narrow`` (what a slot may hold: an allow-list, a deny-list of names, a number spec). A new level
is a ``Level`` subclass registered here (or from a plugin module), and its test; the guide does not
change. Like the guide's own rules it must keep a completion possible: it refuses a branch or a
value only where another one remains (spec/decoding.md, "No dead ends").

The four built-in levels (scope, ops, grounding, values) are registered here with what they refuse,
but their rules are written into ``guide.py``: they are interwoven (``ops or values`` decide one
branch) and the guide's hot path reads them as plain attributes of ``Levels``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a recipe's levels are parsed without loading the decoder
    from .automaton import Slot

Answer = tuple[str, Any]  # a slot's answer: ("allow", strings) | ("deny", names) | ("name", None) | ("num", NumSpec)


class Level:
    """A named rule set; the base refuses nothing more (the built-ins' rules are in guide.py).

    The hooks get the guide (guide.py's ``Guide``, which imports this module: hence ``Any``) and
    read its public face: ``block``, ``op``, ``field(key)``, ``cfg``."""

    def __init__(self, name: str, summary: str):
        self.name, self.summary = name, summary

    def allows(self, guide: Any, decision: tuple) -> bool:
        """Whether the branch ``decision`` (guide.allowed's) may be taken here."""
        return True

    def narrow(self, guide: Any, slot: Slot, answer: Answer) -> Answer:
        """What ``slot`` may hold here, given what the guide and the levels before allow."""
        return answer

    @property
    def has_rules(self) -> bool:
        """Whether the guide must call the hooks (a subclass overrides one)."""
        return type(self).allows is not Level.allows or type(self).narrow is not Level.narrow


# name -> level, in the order names print and rules apply
LEVELS: dict[str, Level] = {}
BUILT_IN = ("scope", "ops", "grounding", "values")  # the names Levels keeps as attributes


def register(level: Level) -> Level:
    if level.name in LEVELS:
        raise ValueError(f"level {level.name!r} is already registered")
    if not level.name.isidentifier() or level.name in ("all", "none"):
        raise ValueError(f"level name {level.name!r} is not a plain name")
    LEVELS[level.name] = level
    return level


def unregister(name: str) -> None:
    if name in BUILT_IN:
        raise ValueError(f"level {name!r} is built in")
    LEVELS.pop(name, None)


for _level in (
    Level("scope", "defined names only, fresh names only (a target slot, what add_entity and transfer add "
                   "to, takes either)"),
    Level("ops", "the declared expert's ops and compute_ops, arity, exactly one final query"),
    Level("grounding", "init values (and literal args) from the question"),
    Level("values", "no no-op, no repeated computation, no runtime error"),
):
    register(_level)


HELP = f"Decoder levels: {', '.join(LEVELS)} (comma-separated), all or none."


class Levels:
    """Which levels are on: every registered one by default, ``Levels(grounding=False)`` (by name
    only) to switch some off. The built-in ones are plain attributes, for the guide's hot path;
    ``rules`` are the levels on whose hooks the guide calls."""

    __slots__ = ("on", "rules", "scope", "ops", "grounding", "values")
    on: frozenset[str]
    rules: tuple[Level, ...]
    scope: bool
    ops: bool
    grounding: bool
    values: bool

    def __init__(self, **switch: bool):
        unknown = set(switch) - set(LEVELS)
        if unknown:
            raise TypeError(f"unknown level(s) {', '.join(sorted(unknown))}; levels: {', '.join(LEVELS)}")
        self._set(n for n in LEVELS if switch.get(n, True))

    def _set(self, names: Iterable[str]) -> None:
        on = frozenset(names)
        set_ = object.__setattr__
        set_(self, "on", on)
        set_(self, "rules", tuple(LEVELS[n] for n in LEVELS if n in on and LEVELS[n].has_rules))
        for name in BUILT_IN:
            set_(self, name, name in on)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Levels is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Levels) and self.on == other.on

    def __hash__(self) -> int:
        return hash(self.on)

    def __reduce__(self) -> tuple:  # pickle and copy by names (the attributes are not settable)
        return Levels.of, (tuple(sorted(self.on)),)

    def __repr__(self) -> str:
        # as the dataclass this was wrote it: the mask cache's namespace holds it (training/sft.py)
        return f"Levels({', '.join(f'{n}={n in self.on}' for n in LEVELS)})"

    @classmethod
    def of(cls, names: Iterable[str]) -> Levels:
        """Exactly ``names`` on (registered names, unchecked)."""
        out = cls.__new__(cls)
        out._set(names)
        return out

    @classmethod
    def parse(cls, text: str) -> Levels:
        """``"scope,ops"`` -> those on, the rest off; ``"all"`` / ``"none"``."""
        names = {n.strip() for n in text.split(",") if n.strip()}
        if names == {"all"}:
            return cls()
        if names == {"none"}:
            return cls.none()
        unknown = names - set(LEVELS)
        if unknown:
            raise ValueError(f"unknown level(s) {', '.join(sorted(unknown))}; levels: {', '.join(LEVELS)}")
        return cls.of(names)

    @classmethod
    def none(cls) -> Levels:
        return cls.of(())

    def without(self, *names: str) -> Levels:
        """These levels off, the others as they are."""
        unknown = set(names) - set(LEVELS)
        if unknown:
            raise ValueError(f"unknown level(s) {', '.join(sorted(unknown))}")
        return Levels.of(self.on - set(names))

    @property
    def names(self) -> tuple[str, ...]:
        """The levels on, in registry order."""
        return tuple(n for n in LEVELS if n in self.on)
