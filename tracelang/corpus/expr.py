"""A small, safe expression language for template constraints, derived variables and answers.

Parsed by a Pratt parser of our own and compiled to closures over exact numbers; nothing is
ever handed to Python's ``eval``. Grammar (lowest precedence first)::

    expr  := expr 'or' expr | expr 'and' expr | 'not' expr
           | sum (('==' | '!=' | '<' | '<=' | '>' | '>=') sum)+      # chained: a < b <= c
           | sum
    sum   := sum ('+' | '-') term | term
    term  := term ('*' | '/' | '%') unary | unary                     # % is the floored remainder
    unary := '-' unary | atom
    atom  := NUMBER | NAME | NAME '.' NAME | NAME '(' expr (',' expr)* ')' | '(' expr ')'
           | 'true' | 'false'

Functions: ``int(x)`` (x is a whole number), ``floor``, ``ceil``, ``abs``, ``min``, ``max``,
``pow(x, n)`` (n a whole number from 0 to 64), ``distinct(a, b, ...)`` (no two equal). Every
expression is typed statically (number or truth value), so a constraint that is not a truth value
is an error at load time, not at sampling.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import TracelangError
from ..numbers import Exact, ceil, floor, mod, power_bits

MAX_CHARS = 1_000
MAX_DEPTH = 60
MAX_DIGITS = 30
MAX_VALUE_DIGITS = 400  # a computed numerator or denominator; beyond it the sample is rejected
_VALUE_BITS = int(MAX_VALUE_DIGITS * 3.33)

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(==|!=|<=|>=|[-+*/%()<>,.]))")


class ExprError(TracelangError, ValueError):
    """A malformed expression; ``column`` is 1-based in the expression text."""

    def __init__(self, message: str, text: str, column: int):
        super().__init__(f"{message} (column {column} of `{text}`)")
        self.message, self.text, self.column = message, text, column


class Undefined(TracelangError):
    """A name without a value or a division by zero while evaluating: the sample is rejected."""


Env = Mapping[str, Any]
Fn = Callable[[Env], Any]


@dataclass(frozen=True)
class Compiled:
    """A compiled expression: ``fn(env)`` evaluates it; ``names`` are the variables it reads."""

    text: str
    kind: str  # "num" or "bool"
    fn: Fn
    names: frozenset[str]

    def __call__(self, env: Env) -> Any:
        return self.fn(env)


def _bounded(x: Any) -> Any:
    """Refuse a value too large to be a template quantity (and too slow to carry on)."""
    if isinstance(x, Exact) and (x.numerator.bit_length() > _VALUE_BITS or x.denominator.bit_length() > _VALUE_BITS):
        raise Undefined(f"a value of more than {MAX_VALUE_DIGITS} digits")
    return x


def _divisor(b: Exact) -> Exact:
    if b == 0:
        raise Undefined("division by zero")
    return b


def _div(a: Exact, b: Exact) -> Exact:
    return a / _divisor(b)


def _mod(a: Exact, b: Exact) -> Exact:
    return mod(a, _divisor(b))


def _distinct(*xs: Exact) -> bool:
    return len(set(xs)) == len(xs)


def _pow(base: Exact, exp: Exact) -> Exact:
    if exp.denominator != 1 or not 0 <= exp <= 64:
        raise Undefined("pow takes a whole exponent from 0 to 64")
    e = int(exp.numerator)
    if power_bits(base, e) > _VALUE_BITS:
        raise Undefined(f"a value of more than {MAX_VALUE_DIGITS} digits")
    return base**e


# name -> (min args, max args or None, arg kind, result kind, function)
_FUNCTIONS: dict[str, tuple[int, int | None, str, str, Callable[..., Any]]] = {
    "int": (1, 1, "num", "bool", lambda x: x.denominator == 1),
    "floor": (1, 1, "num", "num", floor),
    "ceil": (1, 1, "num", "num", ceil),
    "abs": (1, 1, "num", "num", abs),
    "min": (2, None, "num", "num", min),
    "max": (2, None, "num", "num", max),
    "distinct": (2, None, "num", "bool", _distinct),
    "pow": (2, 2, "num", "num", _pow),
}

_ARITH: dict[str, Callable[[Exact, Exact], Exact]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _div,
    "%": _mod,
}
_COMPARE: dict[str, Callable[[Exact, Exact], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_KEYWORDS = {"and", "or", "not", "true", "false"}


@dataclass
class _Tok:
    kind: str  # num | name | op | end
    text: str
    col: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            col = pos + len(text[pos:]) - len(text[pos:].lstrip()) + 1
            raise ExprError(f"unexpected character `{text[col - 1]}`", text, col)
        num, name, op = m.groups()
        col = m.start(m.lastindex or 0) + 1
        if num is not None:
            out.append(_Tok("num", num, col))
        elif name is not None:
            out.append(_Tok("kw" if name in _KEYWORDS else "name", name, col))
        else:
            out.append(_Tok("op", op, col))
        pos = m.end()
    out.append(_Tok("end", "", len(text) + 1))
    return out


def _apply(op: Callable[[Exact, Exact], Exact], a: Fn, b: Fn) -> Fn:
    return lambda env: _bounded(op(a(env), b(env)))


def _lookup(name: str, attr: str | None) -> Fn:
    if attr is None:
        def get(env: Env) -> Any:
            try:
                return env[name]
            except KeyError:
                raise Undefined(name) from None
        return get

    def get_attr(env: Env) -> Any:
        try:
            return env[name].attrs[attr]
        except (KeyError, AttributeError):
            raise Undefined(f"{name}.{attr}") from None
    return get_attr


class _Parser:
    def __init__(self, text: str, attr_kind: Callable[[str, str], str | None] | None):
        if len(text) > MAX_CHARS:
            raise ExprError(f"longer than {MAX_CHARS} characters", text[:40] + "...", 1)
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0
        self.names: set[str] = set()
        self.attr_kind = attr_kind

    # ------------------------------------------------------------------ helpers

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def error(self, message: str, tok: _Tok | None = None) -> ExprError:
        tok = tok or self.tok
        return ExprError(message, self.text, tok.col)

    def take(self, text: str) -> bool:
        if self.tok.text == text and self.tok.kind in ("op", "kw"):
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.take(text):
            found = self.tok.text or "the end"
            raise self.error(f"expected `{text}`, found `{found}`")

    def want(self, node: tuple[str, Fn], kind: str, tok: _Tok) -> Fn:
        if node[0] != kind:
            what = "a number" if kind == "num" else "a truth value (a comparison, and/or/not)"
            raise self.error(f"expected {what} here", tok)
        return node[1]

    # ------------------------------------------------------------------ grammar

    def parse(self) -> tuple[str, Fn]:
        node = self.disjunction()
        if self.tok.kind != "end":
            raise self.error(f"unexpected `{self.tok.text}`")
        return node

    def nested(self, rule: Callable[[], tuple[str, Fn]]) -> tuple[str, Fn]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nested deeper than {MAX_DEPTH} levels")
        try:
            return rule()
        finally:
            self.depth -= 1

    def disjunction(self) -> tuple[str, Fn]:
        tok = self.tok
        left = self.conjunction()
        if self.tok.text != "or":
            return left
        parts = [self.want(left, "bool", tok)]
        while self.take("or"):
            tok = self.tok
            parts.append(self.want(self.conjunction(), "bool", tok))
        return "bool", lambda env: any(p(env) for p in parts)

    def conjunction(self) -> tuple[str, Fn]:
        tok = self.tok
        left = self.negation()
        if self.tok.text != "and":
            return left
        parts = [self.want(left, "bool", tok)]
        while self.take("and"):
            tok = self.tok
            parts.append(self.want(self.negation(), "bool", tok))
        return "bool", lambda env: all(p(env) for p in parts)

    def negation(self) -> tuple[str, Fn]:
        if self.take("not"):
            tok = self.tok
            inner = self.want(self.nested(self.negation), "bool", tok)
            return "bool", lambda env: not inner(env)
        return self.comparison()

    def comparison(self) -> tuple[str, Fn]:
        tok = self.tok
        first = self.sum()
        if not (self.tok.kind == "op" and self.tok.text in _COMPARE):
            return first
        operands = [self.want(first, "num", tok)]
        ops: list[Callable[[Exact, Exact], bool]] = []
        while self.tok.kind == "op" and self.tok.text in _COMPARE:
            ops.append(_COMPARE[self.tok.text])
            self.i += 1
            tok = self.tok
            operands.append(self.want(self.sum(), "num", tok))
        if len(ops) == 1:
            a, b, op = operands[0], operands[1], ops[0]
            return "bool", lambda env: op(a(env), b(env))

        def chain(env: Env) -> bool:
            values = [f(env) for f in operands]
            return all(op(values[k], values[k + 1]) for k, op in enumerate(ops))
        return "bool", chain

    def binary(self, operand: Callable[[], tuple[str, Fn]], symbols: str) -> tuple[str, Fn]:
        tok = self.tok
        node = operand()
        while self.tok.kind == "op" and self.tok.text in symbols:
            op = _ARITH[self.tok.text]
            self.i += 1
            a = self.want(node, "num", tok)
            tok = self.tok
            b = self.want(operand(), "num", tok)
            node = ("num", _apply(op, a, b))
        return node

    def sum(self) -> tuple[str, Fn]:
        return self.binary(self.term, "+-")

    def term(self) -> tuple[str, Fn]:
        return self.binary(self.unary, "*/%")

    def unary(self) -> tuple[str, Fn]:
        if self.take("-"):
            tok = self.tok
            inner = self.want(self.nested(self.unary), "num", tok)
            return "num", lambda env: -inner(env)
        return self.atom()

    def atom(self) -> tuple[str, Fn]:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            whole, _, frac = tok.text.partition(".")
            if len(whole) + len(frac) > MAX_DIGITS:
                raise self.error(f"a number of more than {MAX_DIGITS} digits", tok)
            value = Exact(int(whole + frac), 10 ** len(frac))
            return "num", lambda env: value
        if tok.kind == "kw" and tok.text in ("true", "false"):
            self.i += 1
            flag = tok.text == "true"
            return "bool", lambda env: flag
        if self.take("("):
            node = self.nested(self.disjunction)
            self.expect(")")
            return node
        if tok.kind != "name":
            raise self.error(f"expected a number, a name or `(`, found `{tok.text or 'the end'}`")
        self.i += 1
        if self.take("("):
            return self.call(tok)
        attr = None
        if self.take("."):
            if self.tok.kind != "name":
                raise self.error("expected an attribute name after `.`")
            attr = self.tok.text
            self.i += 1
        self.names.add(tok.text)
        kind = "num"
        if attr is not None and self.attr_kind is not None:
            found = self.attr_kind(tok.text, attr)
            if found is None:
                raise self.error(f"`{tok.text}` has no numeric attribute `{attr}`", tok)
        return kind, _lookup(tok.text, attr)

    def call(self, name: _Tok) -> tuple[str, Fn]:
        spec = _FUNCTIONS.get(name.text)
        if spec is None:
            raise self.error(f"unknown function `{name.text}` (functions: {', '.join(sorted(_FUNCTIONS))})", name)
        lo, hi, arg_kind, result, fn = spec
        args: list[Fn] = []
        while True:
            tok = self.tok
            args.append(self.want(self.nested(self.disjunction), arg_kind, tok))
            if not self.take(","):
                break
        self.expect(")")
        if len(args) < lo or (hi is not None and len(args) > hi):
            raise self.error(f"`{name.text}` takes {lo if lo == hi else f'at least {lo}'} argument(s)", name)
        if len(args) == 1:
            (a,) = args
            return result, lambda env: fn(a(env))
        return result, lambda env: fn(*(a(env) for a in args))


def compile_expr(text: str, kind: str | None = None,
                 attr_kind: Callable[[str, str], str | None] | None = None) -> Compiled:
    """Parse and compile ``text``; ``kind`` ("num"/"bool") is the type it must have.

    ``attr_kind(name, attr)`` validates ``name.attr`` references at compile time (None: unknown).
    """
    parser = _Parser(text, attr_kind)
    got, fn = parser.parse()
    if kind is not None and got != kind:
        what = "a number" if kind == "num" else "a truth value (a comparison, and/or/not)"
        raise ExprError(f"the expression must be {what}", text, 1)
    return Compiled(text, got, fn, frozenset(parser.names))
