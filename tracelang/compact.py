"""The compact surface: the same IR as the canonical YAML, one code-shaped line per step.

    expert arithmetic                     block percentage        (a composed trace: one header
    14 -> trays                           ...                      per block, `block` for `- expert:`)
    mul(trays, rolls_per_tray) -> step1   return x
    sub(step1, left_over) -> result       block arithmetic
    return result                         init(prev.result) -> y

Reading turns the text into the same concrete syntax tree the YAML road gives (``syntax.Map`` with
``op`` and the IR's field names as keys, positioned at the compact text), so ``build.py`` checks it
and reports its mistakes at the right line and column. Writing is the inverse. Which fields a call's
arguments fill is read off the step's IR class (the IR's field order, the defined name after ``->``),
the rule the grammar's ``compact`` section and the decoder's automaton follow too.
"""

from __future__ import annotations

import difflib
import re
from functools import cache

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from .build import field_kind
from .diagnostics import MISSING_FIELD, SYNTAX_ERROR, TOO_LONG, UNKNOWN_FIELD, UNKNOWN_OP, Diagnostic
from .grammar import SURFACES as _RULES
from .grammar import grammar_text, terminal_choices
from .ir import STEP_TYPES, Block, InitStep, Program, Step, TableStep, step_fields, value_text
from .limits import DEFAULT_LIMITS, Limits
from .numbers import render
from .syntax import Document, Map, Scalar, Seq, SyntaxFailure, scalar_of, syntax_error

SURFACES = tuple(_RULES)
COMPARE_PREFIX = "compare."  # compare's ops share names with compute's (max, min): the prefix tells them apart
_COMMENT = re.compile(r"#[^\n]*")


def is_compact(text: str) -> bool:
    """The surface of a text, told by its first line that is not blank or a comment: a YAML
    trace's has a colon (``expert:``, ``- expert:``, ``- {op: ...}``), a compact one's never."""
    for line in text.splitlines():
        body = _COMMENT.sub("", line).strip()
        if body:
            return ":" not in body
    return False


def surface_of(text: str) -> str:
    return "compact" if is_compact(text) else "yaml"


# ---------------------------------------------------------------- the call shapes, from the IR


@cache
def heads() -> dict[str, tuple[str, str | None]]:
    """Each call name of the compact surface -> (op, compute_op or None)."""
    out: dict[str, tuple[str, str | None]] = {}
    for op, cls in STEP_TYPES.items():
        if op in ("init", "query"):
            continue  # `N -> x`, `init(prev.result) -> x`, `return x`
        if issubclass(cls, TableStep):
            prefix = COMPARE_PREFIX if op == "compare" else ""
            for cop in terminal_choices(f"{op.upper()}_OP"):
                out[prefix + cop] = (op, cop)
        else:
            out[op] = (op, None)
    return out


@cache
def call_fields(cls: type[Step]) -> tuple[tuple[str, ...], str | None]:
    """(the fields a call's arguments fill, in order; the field after ``->``)."""
    defined = cls.defines[0] if cls.defines else None
    given = tuple(f for f in step_fields(cls) if f != defined and field_kind(cls, f) != "op_name"
                  and not (cls is InitStep and f == "value"))
    return given, defined


# ---------------------------------------------------------------- writing


def _value(value: object) -> str:
    """A field's value as a call writes it: a list's items are the call's arguments."""
    return ", ".join(map(value_text, value)) if isinstance(value, list) else value_text(value)


def format_step(step: Step) -> str:
    if type(step) is InitStep and step.value is not None:
        return f"{render(step.value.value)} -> {step.var.name}"
    if step.op == "query":
        return f"return {step.var.name}"  # type: ignore[attr-defined]
    cls = type(step)
    given, defined = call_fields(cls)
    cop = step.__dict__.get("compute_op")
    head = step.op if cop is None else (COMPARE_PREFIX if step.op == "compare" else "") + cop
    args = ", ".join(_value(getattr(step, f)) for f in given if getattr(step, f) is not None)
    line = f"{head}({args})"
    return line if defined is None else f"{line} -> {_value(getattr(step, defined))}"


def format_program(program: Program, comments: list[tuple[int, str]] = ()) -> str:
    """IR -> compact text; comments each before the first block or step at or after their line."""
    pending = sorted(comments)
    lines: list[str] = []

    def notes(node: Block | Step) -> None:
        line = node.span.line if node.span else 0
        while pending and pending[0][0] <= line:
            lines.append(pending.pop(0)[1])

    for block in program.blocks:
        notes(block)
        lines.append(f"{'block' if program.composed else 'expert'} {block.expert}")
        for step in block.trace:
            notes(step)
            lines.append(format_step(step))
    lines += [c for _, c in pending]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- reading


@cache
def _parser() -> Lark:
    return Lark(grammar_text(), parser="lalr", start="compact_start", maybe_placeholders=False)


def _key(name: str, at: Scalar) -> Scalar:
    return Scalar("name", name, at.line, at.column, at.end_column)


def _value_node(tok: Token) -> Scalar:
    kind = {"NAME": "name", "NUMBER": "number", "REF": "ref"}[tok.type]
    return scalar_of(tok, kind)


class _Reader:
    def __init__(self) -> None:
        self.diags: list[Diagnostic] = []
        self.recovered: set[str] = set()  # the names of a line left out (as build.py's, no cascade)

    def drop(self, values: list[Scalar | None]) -> None:
        self.recovered.update(v.text for v in values if v is not None and v.kind == "name")

    def line(self, tree: Tree) -> Map | None:
        kids = [c for c in tree.children if not (isinstance(c, Token) and c.type == "_NL")]
        first = kids[0]
        if isinstance(first, Token) and first.type == "K_RETURN":
            value = _value_node(kids[1])
            op = scalar_of(first, "name")
            op = Scalar("name", "query", op.line, op.column, op.column + 6)
            return Map([(_key("op", op), op), (_key("var", value), value)], op.line, op.column)
        name = _value_node(kids[-1]) if len(kids) > 1 and kids[-2].type == "K_ARROW" else None
        if isinstance(first, Token):  # `value -> name`: an init
            value = _value_node(first)
            op = Scalar("name", "init", value.line, value.column, value.end_column)
            return Map([(_key("op", op), op), (_key("value", value), value), (_key("var", name), name)],  # type: ignore[arg-type]
                       value.line, value.column)
        return self.call(first, name)

    def call(self, call: Tree, name: Scalar | None) -> Map | None:
        head_tok, *rest = call.children
        head = _value_node(head_tok)
        head.kind = "name"
        values = [_value_node(t) for t in rest if t.type not in ("K_LPAR", "K_RPAR", "COMMA")]
        if head.text == "init":
            op, cop = "init", None
            cls: type[Step] = InitStep
            fields = ["source"]
        else:
            hit = heads().get(head.text)
            if hit is None:
                close = difflib.get_close_matches(head.text, [*heads(), "init"], n=1, cutoff=0.6)
                self.diags.append(Diagnostic(UNKNOWN_OP, f"unknown op `{head.text}`", head.line, head.column,
                                             head.end_column, f"did you mean `{close[0]}`?" if close else None))
                self.drop([*values, name])
                return None
            op, cop = hit
            cls = STEP_TYPES[op]
            fields = list(call_fields(cls)[0])
        step = self.step(head, op, cop, cls, fields, values, name)
        if step is None:
            self.drop([*values, name])
        return step

    def step(self, head: Scalar, op: str, cop: str | None, cls: type[Step], fields: list[str],
             values: list[Scalar], name: Scalar | None) -> Map | None:
        defined = call_fields(cls)[1]
        op_node = Scalar("name", op, head.line, head.column, head.end_column)
        pairs: list[tuple[Scalar, object]] = [(_key("op", op_node), op_node)]
        if cop is not None:
            pairs.append((_key("compute_op", head), Scalar("name", cop, head.line, head.column, head.end_column)))
        shown = head.text
        if fields and field_kind(cls, fields[0]) == "args":
            pairs.append((_key(fields[0], head), Seq(list(values), head.line, head.end_column)))
        else:
            for i, value in enumerate(values):
                if i >= len(fields):
                    self.diags.append(Diagnostic(
                        UNKNOWN_FIELD, f"`{shown}` takes {len(fields)} argument{'s' * (len(fields) != 1)}: "
                        f"{', '.join(fields)}", value.line, value.column, value.end_column))
                    return None
                pairs.append((_key(fields[i], value), value))
            missing = fields[len(values):]
            if missing:
                self.diags.append(Diagnostic(MISSING_FIELD, f"`{shown}` needs `{missing[0]}`", head.line, head.column,
                                             head.end_column, f"write `{shown}({', '.join(fields)})`"))
                return None
        if defined is None and name is not None:
            self.diags.append(Diagnostic(UNKNOWN_FIELD, f"`{shown}` defines no name; it takes no `-> {name.text}`",
                                         name.line, name.column, name.end_column,
                                         "it changes its arguments in place"))
            return None
        if defined is not None:
            if name is None:
                self.diags.append(Diagnostic(MISSING_FIELD, f"`{shown}` needs a name for its result", head.line,
                                             head.column, head.end_column, f"write `{shown}(...) -> NAME`"))
                return None
            pairs.append((_key(defined, name), name))
        return Map(pairs, head.line, head.column)  # type: ignore[arg-type]

    def block(self, tree: Tree) -> Map:
        head, name, *rest = tree.children
        expert = _value_node(name)
        steps = [m for m in (self.line(t) for t in rest if isinstance(t, Tree)) if m is not None]
        kw = scalar_of(head, "name")
        pairs = [(_key("expert", kw), expert), (_key("trace", kw), Seq(steps, kw.line, kw.column))]  # type: ignore[list-item]
        return Map(pairs, kw.line, kw.column)  # type: ignore[arg-type]


def _headers(blocks: list[Tree]) -> bool:
    """Whether the trace is composed (`block` headers); raises SyntaxFailure at a header that
    does not fit: a trace has one `expert NAME` header, or a `block NAME` header per block."""
    words = [b.children[0].value.strip() for b in blocks]
    composed = words[0] == "block"
    for block, word in zip(blocks[1:], words[1:], strict=True):
        if not composed or word != "block":
            tok = block.children[0]
            raise SyntaxFailure(Diagnostic(
                SYNTAX_ERROR, f"a second header (`{word}`) in a trace headed `{words[0]} NAME`" if not composed
                else "an `expert` header in a trace of `block` headers", tok.line, tok.column,
                tok.column + len(word), "a trace has one `expert NAME` header, or a `block NAME` header per block"))
    return composed


def read(text: str, limits: Limits = DEFAULT_LIMITS) -> tuple[Document, list[Diagnostic], set[str]]:
    """Compact text -> the concrete syntax tree ``build.py`` reads, the line mistakes found on the
    way and the names of the lines they left out. Raises SyntaxFailure with a positioned diagnostic."""
    if len(text) > limits.max_chars:
        raise SyntaxFailure(Diagnostic(TOO_LONG, f"the text has {len(text):,} characters; the limit is "
                                       f"{limits.max_chars:,}", 1, 1))
    src = text if text.endswith("\n") else text + "\n"
    try:
        tree = _parser().parse(src)
    except UnexpectedInput as err:
        raise SyntaxFailure(syntax_error(err, src)) from None
    comments = [(n, m.group()) for n, line in enumerate(src.split("\n"), start=1)
                for m in [_COMMENT.search(line)] if m]
    reader = _Reader()
    blocks = [t for t in tree.children if isinstance(t, Tree)]
    composed = _headers(blocks)
    maps = [reader.block(b) for b in blocks]
    root = Seq(maps, maps[0].line, maps[0].column) if composed else maps[0]  # type: ignore[arg-type]
    return Document(root, comments), reader.diags, reader.recovered
