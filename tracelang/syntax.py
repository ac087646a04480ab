"""Text -> concrete syntax tree (maps, sequences, scalars with positions), by the LALR parser of
the grammar's ``start`` rule. Canonical text usually skips this road (see ``canonical.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Union

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lark import PostLex

from .diagnostics import SYNTAX_ERROR, TOO_DEEP, TOO_LONG, Diagnostic
from .errors import TracelangError
from .grammar import grammar_text, terminal_patterns
from .limits import DEFAULT_LIMITS, Limits


@dataclass(slots=True)
class Scalar:
    kind: str  # name | number | ref | expr
    text: str  # unquoted content
    line: int
    column: int
    end_column: int
    quoted: bool = False


@dataclass(slots=True)
class Seq:
    items: list[Node]
    line: int
    column: int


@dataclass(slots=True)
class Map:
    pairs: list[tuple[Scalar, Node]] = field(default_factory=list)
    line: int = 1
    column: int = 1


@dataclass(slots=True)
class Document:
    root: Node
    comments: list[tuple[int, str]] = field(default_factory=list)  # (line, "# text")


Node = Union[Scalar, Seq, Map]


class SyntaxFailure(TracelangError):
    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


# ------------------------------------------------------------------ lenient road: LALR + indents

_TOKEN_WORDS = {
    "COLON": "`:`", "COMMA": "`,`", "LBRACE": "`{`", "RBRACE": "`}`", "LSQB": "`[`", "RSQB": "`]`",
    "DASH": "`- `", "_NL": "a line break", "_INDENT": "an indented line", "_DEDENT": "a less indented line",
    "NAME": "a name", "NUMBER": "a number", "REF": "a reference like `prev.result`",
    "SQ_STRING": "a quoted string", "DQ_STRING": "a quoted string", "OP": "an operator",
    "GAP": "a space", "$END": "the end of the text",
    "K_ARROW": "`->`", "K_LPAR": "`(`", "K_RPAR": "`)`", "K_HEAD": "`expert NAME`", "K_RETURN": "`return`",
}


class _Indents(PostLex):
    """Turns line-start indentation into _INDENT/_DEDENT tokens, with positions and a depth limit."""

    always_accept = ("_NL",)

    def __init__(self, max_depth: int):
        self.max_depth = max_depth
        self.comments: list[tuple[int, str]] = []  # of the last parse; parsing is single-threaded

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        levels = [0]
        token = None
        self.comments = []
        for token in stream:
            yield token
            if token.type != "_NL":
                continue
            *ends, indent_str = token.split("\n")
            for k, end in enumerate(ends):
                if "#" in end:
                    self.comments.append((token.line + k, end[end.index("#"):].rstrip("\r")))
            indent = len(indent_str.expandtabs(8))
            line = (token.end_line or token.line or 1)
            if indent > levels[-1]:
                if len(levels) > self.max_depth:
                    raise SyntaxFailure(Diagnostic(TOO_DEEP, f"nesting deeper than {self.max_depth} levels",
                                                   line, indent + 1, hint="a trace needs at most 3 levels"))
                levels.append(indent)
                yield Token.new_borrow_pos("_INDENT", indent_str, token)
                continue
            while indent < levels[-1]:
                levels.pop()
                yield Token.new_borrow_pos("_DEDENT", indent_str, token)
            if indent != levels[-1]:
                raise SyntaxFailure(Diagnostic(
                    SYNTAX_ERROR, f"indentation of {indent} matches no enclosing block (expected {levels[-1]})",
                    line, 1, indent + 1, hint="align the line with the lines of its block"))
        while len(levels) > 1:
            levels.pop()
            yield Token.new_borrow_pos("_DEDENT", "", token) if token else Token("_DEDENT", "")


def scalar_of(tok: Token, kind: str) -> Scalar:
    """A token's scalar, its position past any blanks the token carries."""
    text = tok.value.strip()
    lead = len(tok.value) - len(tok.value.lstrip())
    col = tok.column + lead
    return Scalar(kind, text, tok.line, col, col + len(text))


def _unquote(tok: Token) -> str:
    body = tok.value[1:-1]
    if tok.type == "SQ_STRING":
        return body.replace("''", "'")
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


@cache
def _kinds() -> re.Pattern[str]:
    pats = terminal_patterns()
    return re.compile(f"(?P<ref>{pats['REF']})|(?P<name>{pats['NAME']})|(?P<number>{pats['NUMBER']})")


@lru_cache(maxsize=8192)  # names and numbers repeat across a corpus; this is a hot path
def classify(text: str) -> str:
    """The kind of an unquoted or quoted scalar's content, by the grammar's own terminals."""
    m = _kinds().fullmatch(text)
    return m.lastgroup if m else "expr"  # type: ignore[return-value]


_ATOMS = {"NAME": "name", "NUMBER": "number", "REF": "ref"}


class _ToCST(Transformer):
    """Parse tree -> CST. Depth is bounded by the postlexer, so the recursion is too."""

    def start(self, children):
        return children[-1]

    def mapping(self, pairs):
        first = pairs[0][0]
        return Map(pairs, first.line, first.column)

    def sequence(self, items):
        items = [self._node(it) for it in items]
        return Seq(items, items[0].line, items[0].column)  # a block sequence sits where its first item does

    def pair(self, children):
        return children[0], self._node(children[2])

    flow_pair = pair

    def item(self, children):
        dash = children[0]
        rest = [c for c in children[1:] if not (isinstance(c, Token) and c.type == "_NL")]
        if isinstance(rest[0], tuple):  # block-style map: first pair on the dash line
            pairs = [rest[0]] + (rest[1].pairs if len(rest) > 1 else [])
            return Map(pairs, dash.line, dash.column + len(dash.value))
        return self._node(rest[0])

    def key(self, children):
        (c,) = children
        return c if isinstance(c, Scalar) else scalar_of(c, "name")

    def flow_map(self, children):
        brace = children[0]
        pairs = [c for c in children if isinstance(c, tuple)]
        return Map(pairs, brace.line, brace.column)

    def flow_seq(self, children):
        br = children[0]
        items = [self._node(c) for c in children[1:-1] if not (isinstance(c, Token) and c.type == "COMMA")]
        return Seq(items, br.line, br.column)

    @staticmethod
    def _node(c):
        if isinstance(c, Token) and c.type in _ATOMS:
            return scalar_of(c, _ATOMS[c.type])
        return c

    def string(self, children):
        (tok,) = children
        content = _unquote(tok)
        return Scalar(classify(content), content, tok.line, tok.column, tok.column + len(tok.value), True)

    def expression(self, children):
        children = [self._node(c) for c in children]
        parts = [c.value if isinstance(c, Token) else c.text for c in children]
        first = children[0]
        line = first.line
        col = first.column if isinstance(first, Scalar) else first.column + len(first.value) - len(
            first.value.lstrip())
        text = "".join(parts).strip()
        return Scalar("expr", text, line, col, col + len(text))



@cache
def _lenient(max_depth: int) -> tuple[Lark, _Indents]:
    indents = _Indents(max_depth)
    return Lark(grammar_text(), parser="lalr", start="start", postlex=indents, maybe_placeholders=False), indents


def _expected(names: set[str]) -> str:
    words = sorted({_TOKEN_WORDS.get(n, f"`{n}`") for n in names if not n.startswith("__")})
    if len(words) > 6:
        words = words[:6] + ["…"]
    return ", ".join(words)


def syntax_error(err: UnexpectedInput, text: str) -> Diagnostic:
    line, col = max(1, err.line or 1), max(1, err.column or 1)
    if isinstance(err, UnexpectedCharacters):
        ch = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        shown = "a tab" if ch == "\t" else f"`{ch}`"
        return Diagnostic(SYNTAX_ERROR, f"unexpected character {shown}", line, col, col + 1,
                          hint=f"expected {_expected(set(err.allowed or ()))}" if err.allowed else None)
    if isinstance(err, UnexpectedToken):
        tok = err.token
        if tok.type == "$END":
            lines = text.splitlines() or [""]
            line, col = len(lines), len(lines[-1]) + 1
            what = "end of text"
        elif tok.type in ("_NL", "_DEDENT", "_INDENT"):
            what = {"_NL": "end of line", "_INDENT": "indentation", "_DEDENT": "end of an indented block"}[tok.type]
            line, col = tok.line, tok.column
            if tok.type != "_NL":
                line = tok.end_line or line
                col = len(tok.value) + 1
        else:
            what = f"`{tok.value.strip()}`"
            lead = len(tok.value) - len(tok.value.lstrip())
            col += lead
        end = col + max(1, len(tok.value.strip())) if tok.type not in ("_NL", "$END") else col + 1
        return Diagnostic(SYNTAX_ERROR, f"unexpected {what}", line, col, end,
                          hint=f"expected {_expected(set(err.expected))}")
    if isinstance(err, UnexpectedEOF):
        return Diagnostic(SYNTAX_ERROR, "unexpected end of the text", line, col,
                          hint=f"expected {_expected(set(err.expected))}")
    return Diagnostic(SYNTAX_ERROR, str(err).splitlines()[0], line, col)


# ------------------------------------------------------------------ entry point

def parse_cst(text: str, limits: Limits = DEFAULT_LIMITS) -> Document:
    """Parse trace text to a CST. Raises SyntaxFailure with a positioned diagnostic."""
    if len(text) > limits.max_chars:
        raise SyntaxFailure(Diagnostic(TOO_LONG, f"the text has {len(text):,} characters; the limit is "
                                       f"{limits.max_chars:,}", 1, 1))
    src = text if text.endswith("\n") else text + "\n"
    if not src.strip():
        raise SyntaxFailure(Diagnostic(SYNTAX_ERROR, "the text is empty", 1, 1,
                                       hint="a trace starts with `expert: NAME` and `trace:`"))
    parser, indents = _lenient(limits.max_depth)
    try:
        tree = parser.parse(src)
    except SyntaxFailure:
        raise
    except UnexpectedInput as err:
        raise SyntaxFailure(syntax_error(err, src)) from None
    except LarkError as err:  # a postlexer error wrapped by lark
        inner = err.__context__
        if isinstance(inner, SyntaxFailure):
            raise inner from None
        raise SyntaxFailure(Diagnostic(SYNTAX_ERROR, str(err).splitlines()[0], 1, 1)) from None
    return Document(_ToCST().transform(tree), indents.comments)
