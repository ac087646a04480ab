"""Loads ``grammar/trace.lark`` and derives what other modules need from it.

The grammar ships inside the wheel as ``tracelang/grammar/trace.lark``; in a source checkout it is
read from the repository's ``grammar/``. Everything syntactic — the parser, the canonical-form
validator, the constrained decoder's automaton — is derived from this one file.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from functools import cache
from pathlib import Path

from lark import Lark
from lark.grammar import NonTerminal, Terminal

from .errors import TracelangError
from .paths import candidates

_CANDIDATES = candidates("grammar", "trace.lark")


class GrammarError(TracelangError, RuntimeError):
    """The grammar file is missing or not of the shape this module derives from."""


@cache
def grammar_path() -> Path:
    for path in _CANDIDATES:
        if path.is_file():
            return path
    raise GrammarError(f"trace.lark not found; looked in {', '.join(map(str, _CANDIDATES))}")


@cache
def grammar_text() -> str:
    return grammar_path().read_text(encoding="utf-8")


def grammar_hash() -> str:
    return hashlib.sha256(grammar_text().encode()).hexdigest()[:16]


# The surfaces of the one IR, each with the grammar rule of its exact canonical texts.
SURFACES = {"yaml": "canonical", "compact": "compact"}


@cache
def surface_parser(surface: str) -> Lark:
    """An LALR parser of a surface's exact canonical form (used to derive regexes and automata)."""
    if surface not in SURFACES:
        raise GrammarError(f"unknown surface {surface!r}; surfaces: {', '.join(SURFACES)}")
    return Lark(grammar_text(), parser="lalr", start=SURFACES[surface])


def canonical_parser() -> Lark:
    """An LALR parser of the exact canonical (YAML) form."""
    return surface_parser("yaml")


@cache
def terminal_patterns() -> dict[str, str]:
    """Regex source of every named terminal, from both entry points."""
    lenient = Lark(grammar_text(), parser="lalr", start="start", lexer="basic")
    out = {t.name: t.pattern.to_regexp() for t in lenient.terminals}
    for surface in SURFACES:
        out.update({t.name: t.pattern.to_regexp() for t in surface_parser(surface).terminals})
    return out


@cache
def terminal_regex(name: str) -> re.Pattern[str]:
    return re.compile(terminal_patterns()[name])


def terminal_choices(name: str) -> tuple[str, ...]:
    """The literal alternatives of a terminal declared as ``"a" | "b"`` (COMPUTE_OP, ...)."""
    for term in canonical_parser().terminals:
        if term.name == name:
            body = term.pattern.value
            if not (body.startswith("(?:") and body.endswith(")")):
                return (body,)
            return tuple(sorted(alt.replace("\\", "") for alt in body[3:-1].split("|")))
    raise GrammarError(f"no terminal {name} in the canonical grammar")


def rule_regex(parser: Lark, start: str) -> str:
    """Compile a regular (non-self-embedding) rule of a Lark grammar into one regex source.

    Lark turns ``x*``/``x+`` into left-recursive helper rules ``R -> A | R B``; those become
    ``A(?:B)*``. Any other recursion is not regular and raises GrammarError.
    """
    by_origin: dict[str, list[list]] = defaultdict(list)
    for rule in parser.rules:
        by_origin[rule.origin.name].append(rule.expansion)
    terms = {t.name: t.pattern.to_regexp() for t in parser.terminals}
    active: set[str] = set()

    def symbol(sym: Terminal | NonTerminal) -> str:
        return f"(?:{terms[sym.name]})" if isinstance(sym, Terminal) else rule(sym.name)

    @cache
    def rule(name: str) -> str:
        if name in active:
            raise GrammarError(f"rule {name} is recursive beyond repetition; not regular")
        active.add(name)
        exps = by_origin[name]
        base = [e for e in exps if not (e and e[0].name == name)]
        tails = [e[1:] for e in exps if e and e[0].name == name]
        alt = lambda es: "(?:" + "|".join("".join(symbol(s) for s in e) for e in es) + ")"  # noqa: E731
        out = alt(base) + (alt(tails) + "*" if tails else "")
        active.discard(name)
        return out

    return rule(start)


@cache
def surface_regex(surface: str) -> re.Pattern[str]:
    """Matches exactly a surface's canonical texts: its rule compiled to one regex."""
    return re.compile(rule_regex(surface_parser(surface), SURFACES[surface]))


def canonical_regex() -> re.Pattern[str]:
    """Matches exactly the canonical (YAML) texts."""
    return surface_regex("yaml")
