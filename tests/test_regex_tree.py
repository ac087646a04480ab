"""tracelang.regex_tree parses a terminal's regex into exactly the tree the standard library's own
(private) parser gives, so the automaton and the exports built from it are unchanged state for
state; the private module is read here, in a test, only to hold ours to it."""

from __future__ import annotations

import re._parser as stdlib

import pytest

from tracelang.grammar import terminal_patterns
from tracelang.regex_tree import MAXREPEAT, parse

EXTRA = [r"a|b|c", r"(?:ab)*c", r"x(?:a|ab)", r"[^a]", r"[a]", r"[\d_]+", r"\d", r"a{2,3}b{2}c{1,}", r"(a)(b(c))",
         r"ab|ac|ad", r"(?:min|max)", r"a*?", r"[-a]", r"[a-]", r"\.\/", r"[\\\]]", r"(?:a)(?:b)+", r"[^'\n]|''"]


def _plain(tree) -> list:
    """A tree with the stdlib's opcode objects and ints as plain strings and ints."""
    out = []
    for op, arg in tree:
        name = str(op)
        if name == "SUBPATTERN":
            arg = (arg[0], arg[1], arg[2], _plain(arg[3]))
        elif name == "BRANCH":
            arg = (None, [_plain(a) for a in arg[1]])
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            arg = (int(arg[0]), int(arg[1]), _plain(arg[2]))
        elif name == "IN":
            arg = [(str(a), str(b) if str(a) == "CATEGORY" else b) for a, b in arg]
        out.append((name, arg))
    return out


@pytest.mark.parametrize("pattern", sorted(set(terminal_patterns().values())) + EXTRA)
def test_the_tree_is_the_standard_librarys(pattern: str) -> None:
    assert _plain(parse(pattern)) == _plain(stdlib.parse(pattern).data)
    assert int(stdlib.MAXREPEAT) == MAXREPEAT


@pytest.mark.parametrize("pattern", [r"^a", r"a$", r"\ba", r"(?=a)", r"(?P<x>a)", r"a**", r"(a", r"[a", r"\x41", r"\1"])
def test_syntax_the_grammar_does_not_use_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError):
        parse(pattern)
