"""Calculator annotations (``<<48/2=24>>``): a small safe parser and exact evaluator.

The grammar is numbers, ``+ - * /`` (also ``x × ÷``), ``^`` for powers, a postfix ``%``,
unary minus and parentheses; nothing is ever handed to ``eval`` or SymPy's parser. Expressions
are bounded in length and depth, so hostile input fails fast with ``CalcError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import TracelangError
from ..numbers import Exact, floor

MAX_CHARS = 400
MAX_DEPTH = 40
MAX_EXPONENT = 64


class CalcError(TracelangError, ValueError):
    """An annotation that is not an expression of the calculator grammar, or cannot be evaluated."""


@dataclass(frozen=True, slots=True)
class Lit:
    value: Exact
    text: str


@dataclass(frozen=True, slots=True)
class Bin:
    op: str  # + - * / // ^  (// is floor division)
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Neg:
    arg: Expr


@dataclass(frozen=True, slots=True)
class Pct:
    """``25%``: the value divided by 100."""

    arg: Expr


Expr = Lit | Bin | Neg | Pct

_TOKEN = re.compile(r"\s*(?:(\d[\d,]*(?:\.\d*)?|\.\d+)|(//|[-+*/^%()x×÷−–]))")
_OPS = {"x": "*", "×": "*", "÷": "/", "−": "-", "–": "-"}


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise CalcError(f"unexpected {text[pos:].strip()[:1]!r} at column {pos + 1}")
        number, op = m.groups()
        if number is not None:
            digits = number.replace(",", "")
            if len(digits) > 40:
                raise CalcError("a number of more than 40 digits")
            out.append(digits)
        else:
            out.append(_OPS.get(op, op))
        pos = m.end()
    return out


class _Parser:
    """Precedence climbing: sum := prod (('+'|'-') prod)*; prod := unary (('*'|'/'|'//') unary)*;
    unary := '-' unary | power; power := postfix ('^' unary)?; postfix := atom '%'*."""

    def __init__(self, tokens: list[str]):
        self.toks, self.i, self.depth = tokens, 0, 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise CalcError("the expression ends early")
        self.i += 1
        return tok

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise CalcError(f"nested deeper than {MAX_DEPTH}")

    def sum(self) -> Expr:
        self.enter()
        node = self.prod()
        while self.peek() in ("+", "-"):
            op = self.take()
            node = Bin(op, node, self.prod())
        self.depth -= 1
        return node

    def prod(self) -> Expr:
        node = self.unary()
        while self.peek() in ("*", "/", "//"):
            op = self.take()
            node = Bin(op, node, self.unary())
        return node

    def unary(self) -> Expr:
        if self.peek() == "-":
            self.take()
            self.enter()
            node = Neg(self.unary())
            self.depth -= 1
            return node
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> Expr:
        node = self.postfix()
        if self.peek() == "^":
            self.take()
            self.enter()
            node = Bin("^", node, self.unary())
            self.depth -= 1
        return node

    def postfix(self) -> Expr:
        node = self.atom()
        while self.peek() == "%":
            self.take()
            node = Pct(node)
        return node

    def atom(self) -> Expr:
        tok = self.take()
        if tok == "(":
            node = self.sum()
            if self.take() != ")":
                raise CalcError("`(` without `)`")
            return node
        if tok[0].isdigit() or tok[0] == ".":
            whole, _, frac = tok.partition(".")
            return Lit(Exact(int((whole or "0") + frac), 10 ** len(frac)), tok)
        raise CalcError(f"unexpected {tok!r}")


def parse_expression(text: str) -> Expr:
    """Parse one calculator expression (``(3+4)*2``)."""
    if len(text) > MAX_CHARS:
        raise CalcError(f"an expression of more than {MAX_CHARS} characters")
    parser = _Parser(_tokens(text))
    if not parser.toks:
        raise CalcError("an empty expression")
    node = parser.sum()
    if parser.peek() is not None:
        raise CalcError(f"unexpected {parser.peek()!r} after the expression")
    return node


def evaluate(node: Expr) -> Exact:
    """The exact value of an expression; ``CalcError`` on division by zero or a huge power."""
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Neg):
        return -evaluate(node.arg)
    if isinstance(node, Pct):
        return evaluate(node.arg) / 100
    a, b = evaluate(node.left), evaluate(node.right)
    if node.op == "+":
        return a + b
    if node.op == "-":
        return a - b
    if node.op == "*":
        return a * b
    if node.op in ("/", "//"):
        if b == 0:
            raise CalcError("division by zero")
        return a / b if node.op == "/" else floor(a / b)
    if b.denominator != 1 or abs(b.numerator) > MAX_EXPONENT or (a == 0 and b < 0):
        raise CalcError(f"the power {b} is out of range")
    return a ** int(b.numerator)


def _strip_percent(node: Expr) -> Expr:
    """The same expression with every ``N%`` read as N ("10/20 x 100% = 50%")."""
    if isinstance(node, Pct):
        return _strip_percent(node.arg)
    if isinstance(node, Neg):
        return Neg(_strip_percent(node.arg))
    if isinstance(node, Bin):
        return Bin(node.op, _strip_percent(node.left), _strip_percent(node.right))
    return node


def _has_percent(node: Expr) -> bool:
    if isinstance(node, Pct):
        return True
    if isinstance(node, Neg):
        return _has_percent(node.arg)
    if isinstance(node, Bin):
        return _has_percent(node.left) or _has_percent(node.right)
    return False


@dataclass(frozen=True, slots=True)
class Annotation:
    expr: Expr
    text: str  # the expression as written
    stated: Exact | None  # the result the annotation states after `=`
    line: int  # line of the solution it sits on, from 1
    annotated: bool = True  # False: an equation of the solution's prose, outside <<...>>


_ANNOTATION = re.compile(r"<<([^<>]*)>>")
# Prose equations ("330 + 25 = 355 people", "42 minutes + 10 minutes = 52 minutes"): tokens of a
# line, with operator words mapped to operators; up to two unit words may follow a number.
_PROSE_TOKEN = re.compile(r"\$?[0-9][0-9,]*(?:\.[0-9]+)?%?|\$?\.[0-9]+%?|//|[-+*/×÷()=]|[A-Za-z']+|\S")
_OP_WORDS = {"x": "*", "times": "*", "plus": "+", "minus": "-", "equals": "=", "×": "*", "÷": "/", "−": "-",
             "–": "-"}
_MAX_UNIT_WORDS = 3
_PER_UNIT = re.compile(r"(?<=[A-Za-z0-9%])\s*/\s*(?=[A-Za-z])")  # "$600/weekday": a unit, not a division


def _kind(tok: str) -> str:
    if tok[0].isdigit() or tok[0] in "$." and len(tok) > 1:
        return "num"
    if tok in ("+", "-", "*", "/", "//", "(", ")", "="):
        return tok
    return "word" if tok[0].isalpha() or tok[0] == "'" else "other"


def _prose_candidates(line: str) -> list[tuple[int, str, str, bool]]:
    """(offset of `=`, expression, stated result, result has %) for each ``... = N`` of a prose line."""
    line = _PER_UNIT.sub(" ", line)
    matches = list(_PROSE_TOKEN.finditer(line))
    toks = [_OP_WORDS.get(m.group(0).lower(), m.group(0)) for m in matches]
    kinds = [_kind(t) for t in toks]
    out = []
    for e, kind in enumerate(kinds):
        if kind != "=" or e + 1 >= len(toks) or kinds[e + 1] != "num":
            continue
        # Walk left from `=` over numbers and operators; unit words may sit between a number and
        # the operator after it ("42 minutes + 10 minutes").
        parts: list[str] = []
        words = 0
        for k in range(e - 1, -1, -1):
            if kinds[k] == "word":
                words += 1
                if words > _MAX_UNIT_WORDS:
                    break
                continue
            if kinds[k] not in ("num", "+", "-", "*", "/", "//", "(", ")"):
                break
            if words and (kinds[k] not in ("num", ")") or (parts and _kind(parts[-1]) in ("num", "("))):
                break
            words = 0
            parts.append(toks[k])
        parts.reverse()
        while parts and _kind(parts[0]) not in ("num", "("):
            parts.pop(0)
        if sum(_kind(p) == "num" for p in parts) >= 2:
            result = toks[e + 1]
            out.append((matches[e].start(), "".join(p.replace("$", "") for p in parts),
                        result.replace("$", "").rstrip("%"), result.endswith("%")))
    return out


def _annotation(body: str, line: int) -> Annotation:
    expr_text, eq, stated_text = body.rpartition("=")
    if not eq:
        expr_text, stated_text = body, ""
    try:
        expr = parse_expression(expr_text)
    except CalcError as err:
        raise CalcError(f"line {line}: <<{body[:60]}>>: {err}") from None
    stated = None
    if stated_text.strip():
        try:
            stated = evaluate(parse_expression(stated_text))
        except CalcError:
            stated = None
    return Annotation(expr, expr_text, stated, line)


def _close(value: Exact, stated: Exact) -> bool:
    return value == stated or abs(value - stated) <= Exact(1, 100) * max(1, abs(stated))


def _prose_equation(expr_text: str, result: str, percent: bool, line: int) -> Annotation | None:
    """An equation written in prose, if it parses and its value is the one it states."""
    try:
        expr = parse_expression(expr_text)
        stated = evaluate(parse_expression(result))
    except CalcError:
        return None
    if not isinstance(expr, Bin):
        return None
    # "10/20 x 100% = 50%" means 50: read N% as N first when the result is a percent.
    readings = [(_strip_percent(expr), stated)] if _has_percent(expr) else []
    readings.append((expr, stated))
    if percent:  # "8 / 25 = 32%": the fraction times 100
        readings += [(Bin("*", expr, Lit(Exact(100), "100")), stated), (expr, stated / 100)]
    for reading, target in readings:
        try:
            value = evaluate(reading)
        except CalcError:
            continue
        if _close(value, target):
            return Annotation(reading, expr_text, target, line, annotated=False)
    return None


def _mask(m: re.Match) -> str:
    body = m.group(1)
    stated = body.rpartition("=")[2].strip()
    if re.fullmatch(r"[0-9.,]+", stated) and re.fullmatch(r"\s*[0-9.,]+\s*", body.rpartition("=")[0]):
        return stated.ljust(len(m.group(0)), "§")
    return "§" * len(m.group(0))


def annotations(solution: str, prose: bool = False) -> list[Annotation]:
    """The calculator annotations of a solution, in order; ``CalcError`` names the first bad one.
    With ``prose``, equations the solution writes without an annotation ("330 + 25 = 355") join
    them in text order (an equation followed by its own annotation is not read twice)."""
    found: list[tuple[int, Annotation]] = []
    for m in _ANNOTATION.finditer(solution):
        line = solution.count("\n", 0, m.start()) + 1
        found.append((m.start(), _annotation(m.group(1), line)))
    if prose:
        # Annotations masked by a character no equation contains, so that "48/2 = <<48/2=24>>24"
        # is not taken for the prose equation "48/2 = 24"; but an annotation that only states a
        # number ("52 - 15 = <<37=37>>37") leaves its number, completing the prose equation.
        masked = _ANNOTATION.sub(_mask, solution.split("####")[0])
        offset = 0
        for n, text in enumerate(masked.split("\n"), start=1):
            for at, expr_text, result, percent in _prose_candidates(text):
                eq = _prose_equation(expr_text, result, percent, n)
                if eq is not None:
                    found.append((offset + at, eq))
            offset += len(text) + 1
        found.sort(key=lambda pair: pair[0])
    return [a for _, a in found]
