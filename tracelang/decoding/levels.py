"""The decoder's levels, by name.

A level is a named rule set the guide consults (``lv.scope``, ``lv.ops``, ...): with it off the
guide lets through what that rule set would refuse. Each is registered here once, with what it
checks; a ``Levels`` is built and parsed by these names (a recipe's ``constraint_levels``, every
``--levels``), never by position, and help texts list them from here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

# name -> what the guide refuses with it on (spec/decoding.md); the order is the order names print in
LEVELS: dict[str, str] = {
    "scope": "defined names only, fresh names only (a target slot, what add_entity and transfer add to, "
             "takes either)",
    "ops": "the declared expert's ops and compute_ops, arity, exactly one final query",
    "grounding": "init values (and literal args) from the question",
    "values": "no no-op, no repeated computation, no runtime error",
}
HELP = f"Decoder levels: {', '.join(LEVELS)} (comma-separated), all or none."


@dataclass(frozen=True, kw_only=True)
class Levels:
    """Which levels are on (all by default). A field per registered level, so the guide's hot
    path reads a plain attribute."""

    scope: bool = True
    ops: bool = True
    grounding: bool = True
    values: bool = True

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
        return cls(**{n: n in names for n in LEVELS})

    @classmethod
    def none(cls) -> Levels:
        return cls(**dict.fromkeys(LEVELS, False))

    def without(self, *names: str) -> Levels:
        """These levels off, the others as they are."""
        unknown = set(names) - set(LEVELS)
        if unknown:
            raise ValueError(f"unknown level(s) {', '.join(sorted(unknown))}")
        return replace(self, **dict.fromkeys(names, False))

    @property
    def names(self) -> tuple[str, ...]:
        """The levels on, in registry order."""
        return tuple(n for n in LEVELS if getattr(self, n))


# a level is a name here and a field above, and nothing else: they must agree
assert tuple(f.name for f in fields(Levels)) == tuple(LEVELS), "decoding/levels.py: LEVELS and Levels disagree"
