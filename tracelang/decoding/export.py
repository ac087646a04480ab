"""The canonical grammar in other engines' syntaxes, derived from ``grammar/trace.lark``.

xgrammar takes EBNF (GBNF style), llguidance and vLLM's ``guidance`` backend take Lark. Both are
written here from lark's own BNF of the ``canonical`` rule: left-recursive repetition helpers become
``( ... )+``, anonymous string terminals become quoted literals, regex terminals become char
classes (EBNF) or stay regexes (Lark). These engines check syntax only: names, ops and grounding
are what ``tracelang.decoding`` adds on top.
"""

from __future__ import annotations

import json
import re._parser as sre_parse
from collections import defaultdict
from functools import cache

from lark.grammar import NonTerminal, Terminal

from ..grammar import GrammarError, canonical_parser, canonical_regex


def _structure() -> tuple[dict[str, list[list]], dict[str, object]]:
    parser = canonical_parser()
    by_origin: dict[str, list[list]] = defaultdict(list)
    for rule in parser.rules:
        by_origin[rule.origin.name].append(list(rule.expansion))
    terms = {t.name: t.pattern for t in parser.terminals}
    return by_origin, terms


def _reachable(by_origin: dict[str, list[list]], start: str) -> list[str]:
    seen: list[str] = []
    stack = [start]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.append(name)
        for exp in by_origin[name]:
            stack.extend(s.name for s in exp if isinstance(s, NonTerminal))
    return seen


def _body(by_origin: dict, name: str, sym_fmt) -> str:
    """One rule's body; a left-recursive helper ``R: A | R B`` is written ``A (B)*``."""
    exps = by_origin[name]
    base = [e for e in exps if not (e and e[0].name == name)]
    tails = [e[1:] for e in exps if e and e[0].name == name]

    def seq(e: list) -> str:
        return " ".join(sym_fmt(s) for s in e) or '""'

    out = " | ".join(seq(e) for e in base)
    if tails:
        out = f"({out}) ({' | '.join(seq(e) for e in tails)})*"
    return out


def _ebnf_regex(parsed) -> str:
    parts = []
    for op, arg in parsed:
        name = str(op)
        if name == "LITERAL":
            parts.append(json.dumps(chr(arg)))
        elif name == "IN":
            items = []
            for iop, iarg in arg:
                if str(iop) == "LITERAL":
                    items.append(_class_char(iarg))
                elif str(iop) == "RANGE":
                    items.append(f"{_class_char(iarg[0])}-{_class_char(iarg[1])}")
                else:
                    raise GrammarError(f"unsupported class item {iop} for EBNF")
            parts.append("[" + "".join(items) + "]")
        elif name == "SUBPATTERN":
            parts.append("(" + _ebnf_regex(arg[-1]) + ")")
        elif name == "BRANCH":
            parts.append("(" + " | ".join(_ebnf_regex(a) for a in arg[1]) + ")")
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            lo, hi, item = arg
            inner = "(" + _ebnf_regex(item) + ")"
            if (lo, hi) == (0, 1):
                parts.append(inner + "?")
            elif lo == 0 and hi == sre_parse.MAXREPEAT:
                parts.append(inner + "*")
            elif lo == 1 and hi == sre_parse.MAXREPEAT:
                parts.append(inner + "+")
            else:
                raise GrammarError(f"unsupported repeat {{{lo},{hi}}} for EBNF")
        else:
            raise GrammarError(f"unsupported regex construct {name} for EBNF")
    return " ".join(parts)


def _class_char(code: int) -> str:
    ch = chr(code)
    return "\\" + ch if ch in "\\]-^" else ch


@cache
def to_ebnf() -> str:
    """The canonical grammar as EBNF for xgrammar (``root`` is the start rule)."""
    by_origin, terms = _structure()

    def fmt(sym) -> str:
        if isinstance(sym, NonTerminal):
            return "root" if sym.name == "canonical" else sym.name.strip("_")
        pattern = terms[sym.name]
        return json.dumps(pattern.value) if pattern.type == "str" else sym.name.lower()

    lines = []
    helpers = {n for n in by_origin if n.startswith("__")}
    for name in _reachable(by_origin, "canonical"):
        body = _inline(by_origin, name, helpers, fmt)
        if name in helpers:
            continue
        lines.append(f"{'root' if name == 'canonical' else name} ::= {body}")
    used = sorted({s.name for n in _reachable(by_origin, "canonical") for e in by_origin[n]
                   for s in e if isinstance(s, Terminal) and terms[s.name].type != "str"})
    for t in used:
        lines.append(f"{t.lower()} ::= {_ebnf_regex(sre_parse.parse(terms[t].to_regexp()))}")
    return "\n".join(lines) + "\n"


def _inline(by_origin: dict, name: str, helpers: set[str], fmt) -> str:
    def sym_fmt(sym) -> str:
        if isinstance(sym, NonTerminal) and sym.name in helpers:
            return "(" + _inline(by_origin, sym.name, helpers, fmt) + ")"
        return fmt(sym)

    return _body(by_origin, name, sym_fmt)


@cache
def to_lark() -> str:
    """The canonical grammar in Lark syntax (llguidance, vLLM's ``guidance`` backend)."""
    by_origin, terms = _structure()
    helpers = {n for n in by_origin if n.startswith("__")}

    def fmt(sym) -> str:
        if isinstance(sym, NonTerminal):
            return "start" if sym.name == "canonical" else sym.name.strip("_")
        pattern = terms[sym.name]
        return json.dumps(pattern.value) if pattern.type == "str" else sym.name

    lines = []
    for name in _reachable(by_origin, "canonical"):
        if name in helpers:
            continue
        lines.append(f"{'start' if name == 'canonical' else name}: {_inline(by_origin, name, helpers, fmt)}")
    used = sorted({s.name for n in _reachable(by_origin, "canonical") for e in by_origin[n]
                   for s in e if isinstance(s, Terminal) and terms[s.name].type != "str"})
    for t in used:
        lines.append(f"{t}: /{terms[t].to_regexp()}/")
    return "\n".join(lines) + "\n"


def to_regex() -> str:
    """The whole canonical language as one regex (for engines that take only regexes)."""
    return canonical_regex().pattern


def vllm_request(fmt: str = "lark") -> dict:
    """The ``structured_outputs`` part of a vLLM request constraining output to canonical traces."""
    if fmt == "lark":
        return {"structured_outputs": {"grammar": to_lark()}}
    if fmt == "ebnf":
        return {"structured_outputs": {"grammar": to_ebnf()}}
    if fmt == "regex":
        return {"structured_outputs": {"regex": to_regex()}}
    raise ValueError("format: lark | ebnf | regex")
