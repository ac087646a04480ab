"""A surface's canonical grammar in other engines' syntaxes, derived from ``grammar/trace.lark``.

xgrammar takes EBNF (GBNF style), llguidance takes Lark or GBNF, vLLM takes either through its
``structured_outputs.grammar`` field. They are written here from lark's own BNF of the ``canonical``
rule: left-recursive repetition helpers become ``( ... )*``, anonymous string terminals become quoted
literals, regex terminals become char classes (EBNF) or stay regexes (Lark). The one-regex export is
rendered from the same parse with only the escapes a regex needs (``re.escape``-style escapes of spaces
and the like are invalid in some engines: xgrammar warns on each). These engines check syntax only:
names, ops and grounding are what ``tracelang.decoding`` adds on top.
"""

from __future__ import annotations

import json
from collections import defaultdict
from functools import cache

from lark.grammar import NonTerminal, Terminal

from .. import regex_tree
from ..grammar import SURFACES, GrammarError, surface_parser


def _structure(surface: str) -> tuple[dict[str, list[list]], dict[str, object]]:
    parser = surface_parser(surface)
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
    parts: list[str] = []
    run = ""  # consecutive literal characters, written as one quoted string
    for op, arg in parsed:
        name = str(op)
        if name == "LITERAL":
            run += chr(arg)
            continue
        if run:
            parts.append(json.dumps(run))
            run = ""
        if name == "IN":
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
            elif lo == 0 and hi == regex_tree.MAXREPEAT:
                parts.append(inner + "*")
            elif lo == 1 and hi == regex_tree.MAXREPEAT:
                parts.append(inner + "+")
            else:
                raise GrammarError(f"unsupported repeat {{{lo},{hi}}} for EBNF")
        else:
            raise GrammarError(f"unsupported regex construct {name} for EBNF")
    if run:
        parts.append(json.dumps(run))
    return " ".join(parts)


def _class_char(code: int) -> str:
    ch = chr(code)
    return "\\" + ch if ch in "\\]-^" else ch


@cache
def to_ebnf(surface: str = "yaml") -> str:
    """The canonical grammar as EBNF for xgrammar (``root`` is the start rule)."""
    by_origin, terms = _structure(surface)
    top = SURFACES[surface]

    def fmt(sym) -> str:
        if isinstance(sym, NonTerminal):
            return "root" if sym.name == top else sym.name.strip("_")
        pattern = terms[sym.name]
        return json.dumps(pattern.value) if pattern.type == "str" else sym.name.lower()

    lines = []
    helpers = {n for n in by_origin if n.startswith("__")}
    for name in _reachable(by_origin, top):
        body = _inline(by_origin, name, helpers, fmt)
        if name in helpers:
            continue
        lines.append(f"{'root' if name == top else name} ::= {body}")
    used = sorted({s.name for n in _reachable(by_origin, top) for e in by_origin[n]
                   for s in e if isinstance(s, Terminal) and terms[s.name].type != "str"})
    for t in used:
        lines.append(f"{t.lower()} ::= {_ebnf_regex(regex_tree.parse(terms[t].to_regexp()))}")
    return "\n".join(lines) + "\n"


def _inline(by_origin: dict, name: str, helpers: set[str], fmt) -> str:
    def sym_fmt(sym) -> str:
        if isinstance(sym, NonTerminal) and sym.name in helpers:
            return "(" + _inline(by_origin, sym.name, helpers, fmt) + ")"
        return fmt(sym)

    return _body(by_origin, name, sym_fmt)


@cache
def to_lark(surface: str = "yaml") -> str:
    """The canonical grammar in Lark syntax (llguidance, vLLM's ``guidance`` backend)."""
    by_origin, terms = _structure(surface)
    top = SURFACES[surface]
    helpers = {n for n in by_origin if n.startswith("__")}

    def fmt(sym) -> str:
        if isinstance(sym, NonTerminal):
            return "start" if sym.name == top else sym.name.strip("_")
        pattern = terms[sym.name]
        return json.dumps(pattern.value) if pattern.type == "str" else sym.name

    lines = []
    for name in _reachable(by_origin, top):
        if name in helpers:
            continue
        lines.append(f"{'start' if name == top else name}: {_inline(by_origin, name, helpers, fmt)}")
    used = sorted({s.name for n in _reachable(by_origin, top) for e in by_origin[n]
                   for s in e if isinstance(s, Terminal) and terms[s.name].type != "str"})
    for t in used:
        lines.append(f"{t}: /{terms[t].to_regexp()}/")
    return "\n".join(lines) + "\n"


# Characters a regex must escape outside a class, and inside one (``[`` too: Rust's regex, which
# llguidance uses, nests classes).
_META = frozenset("\\.^$|?*+()[]{}")
_CLASS_META = frozenset("\\]-^[")
_CONTROL = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}

# A rendered piece and what it is: a single atom (quantifiable as is), a sequence, or an alternation
# (both need a group to be quantified; an alternation needs one inside a sequence too).
Piece = tuple[str, str]


def _re_char(ch: str, meta: frozenset[str] = _META) -> str:
    return _CONTROL.get(ch) or ("\\" + ch if ch in meta else ch)


def _group(piece: Piece) -> str:
    return piece[0] if piece[1] == "atom" else f"(?:{piece[0]})"


def _re_seq(pieces: list[Piece]) -> Piece:
    if len(pieces) == 1:
        return pieces[0]
    return "".join(f"(?:{t})" if kind == "alt" else t for t, kind in pieces), "seq"


def _re_alt(options: list[Piece]) -> Piece:
    return (options[0] if len(options) == 1 else ("|".join(t for t, _ in options), "alt"))


def _re_star(piece: Piece) -> Piece:
    return _group(piece) + "*", "seq"


def _re_literal(text: str) -> Piece:
    return "".join(_re_char(c) for c in text), "atom" if len(text) == 1 else "seq"


def _re_parsed(parsed) -> Piece:
    """A Python regex parse (``re._parser``) rendered back with minimal escapes."""
    pieces: list[Piece] = []
    for op, arg in parsed:
        name = str(op)
        if name == "LITERAL":
            pieces.append((_re_char(chr(arg)), "atom"))
        elif name == "IN":
            items = []
            for iop, iarg in arg:
                if str(iop) == "LITERAL":
                    items.append(_re_char(chr(iarg), _CLASS_META))
                elif str(iop) == "RANGE":
                    items.append(f"{_re_char(chr(iarg[0]), _CLASS_META)}-{_re_char(chr(iarg[1]), _CLASS_META)}")
                elif str(iop) == "NEGATE":
                    items.insert(0, "^")
                else:
                    raise GrammarError(f"unsupported class item {iop} for the regex export")
            pieces.append(("[" + "".join(items) + "]", "atom"))
        elif name == "SUBPATTERN":
            pieces.append(_re_parsed(arg[-1]))
        elif name == "BRANCH":
            pieces.append(_re_alt([_re_parsed(a) for a in arg[1]]))
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            lo, hi, item = arg
            inner = _group(_re_parsed(item))
            many = hi == regex_tree.MAXREPEAT
            suffix = {(0, 1): "?", (0, -1): "*", (1, -1): "+"}.get((lo, -1 if many else hi))
            if suffix is None:
                suffix = f"{{{lo},}}" if many else (f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}")
            pieces.append((inner + suffix, "seq"))
        else:
            raise GrammarError(f"unsupported regex construct {name} for the regex export")
    return _re_seq(pieces) if pieces else ("", "seq")


@cache
def to_regex(surface: str = "yaml") -> str:
    """The whole canonical language as one regex (for engines that take only regexes). It matches
    what ``grammar.canonical_regex`` matches; only the escapes a regex needs (``\\n`` for a newline)."""
    by_origin, terms = _structure(surface)
    top = SURFACES[surface]

    @cache
    def rule(name: str) -> Piece:
        exps = by_origin[name]
        base = [e for e in exps if not (e and e[0].name == name)]
        tails = [e[1:] for e in exps if e and e[0].name == name]

        def seq(e: list) -> Piece:
            return _re_seq([symbol(s) for s in e]) if e else ("", "seq")

        out = _re_alt([seq(e) for e in base])
        if tails:
            out = _re_seq([out, _re_star(_re_alt([seq(e) for e in tails]))])
        return out

    def symbol(sym) -> Piece:
        if isinstance(sym, NonTerminal):
            return rule(sym.name)
        pattern = terms[sym.name]
        if pattern.type == "str":
            return _re_literal(pattern.value)
        return _re_parsed(regex_tree.parse(pattern.to_regexp()))

    return rule(top)[0]


def vllm_request(fmt: str = "ebnf", surface: str = "yaml") -> dict:
    """The ``structured_outputs`` part of a vLLM request constraining output to canonical traces.

    EBNF (the default) works with both of vLLM's grammar backends: xgrammar reads it as is, and the
    ``guidance`` backend (llguidance) converts GBNF itself. Lark works with ``guidance`` only: vLLM's
    xgrammar backend converts Lark with a line-based rewrite that reads words inside ``/regex/`` as
    rule names."""
    if fmt == "ebnf":
        return {"structured_outputs": {"grammar": to_ebnf(surface)}}
    if fmt == "lark":
        return {"structured_outputs": {"grammar": to_lark(surface)}}
    if fmt == "regex":
        return {"structured_outputs": {"regex": to_regex(surface)}}
    raise ValueError("format: ebnf | lark | regex")
