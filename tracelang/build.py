"""CST -> IR. Reports structural mistakes (unknown op or field, wrong types, expressions in init).

A step with a structural error is left out of the IR; the names it would have defined are
returned as ``recovered`` so that the checker does not cascade "undefined variable" errors.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any, get_args

from .diagnostics import (
    EXPRESSION_IN_INIT,
    MISSING_FIELD,
    NUMBER_TOO_LARGE,
    TOO_LONG,
    UNKNOWN_FIELD,
    UNKNOWN_OP,
    UNRESOLVED_SOURCE,
    WRONG_TYPE,
    Diagnostic,
)
from .ir import (
    STEP_TYPES,
    Block,
    InitStep,
    Num,
    Program,
    Ref,
    Span,
    Step,
    Var,
    make,
    step_fields,
)
from .limits import DEFAULT_LIMITS, Limits
from .numbers import parse_literal
from .syntax import Map, Node, Scalar, Seq

_REF_BLOCK = re.compile(r"prev|sub(0|[1-9][0-9]*)")


@dataclass
class Built:
    program: Program | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    recovered: set[str] = field(default_factory=set)

    @property
    def complete(self) -> bool:
        """True when every step of the text is in the IR (the formatter may rewrite it): the
        builder reports only what it had to leave out."""
        return self.program is not None and not self.diagnostics


def _at(node: Node) -> tuple[int, int, int]:
    if isinstance(node, Scalar):
        return node.line, node.column, node.end_column
    return node.line, node.column, node.column + 1


def _span(node: Node) -> Span:
    line, col, end = _at(node)
    return Span(line, col, end)


def _suggest(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def _describe(node: Node) -> str:
    if isinstance(node, Scalar):
        return {"name": "the name", "number": "the number", "ref": "the reference",
                "expr": "the expression"}[node.kind] + f" `{node.text}`"
    return "a list" if isinstance(node, Seq) else "a mapping"


# Converters from a scalar's text to an IR node, shared with the canonical reader; None means the
# text is not acceptable there (the builder then says why).

def var_node(text: str, span: Span, limits: Limits) -> Var | None:
    return make(Var, name=text, span=span) if len(text) <= limits.max_name_chars else None


def num_node(text: str, span: Span, limits: Limits) -> Num | None:
    lit = parse_literal(text)
    if lit is None or lit.unreduced or lit.digits > limits.max_literal_digits:
        return None
    return make(Num, value=lit.value, span=span)


def ref_node(text: str, span: Span) -> Ref | None:
    block, _, attr = text.partition(".")
    if not _REF_BLOCK.fullmatch(block) or attr != "result":
        return None
    return make(Ref, block=block, span=span)


@cache
def field_kind(cls: type[Step], fname: str) -> str:
    """Which converter a step field takes, read off its type annotation once."""
    if fname == "compute_op":
        return "op_name"
    annotation = cls.model_fields[fname].annotation
    kinds = {annotation, *get_args(annotation)}
    for k in list(kinds):
        kinds.update(get_args(k))  # Annotated[Union[...]] one level down
    if any(getattr(k, "__origin__", None) is list for k in kinds):
        return "args"
    if Ref in kinds:
        return "ref"
    if Num in kinds and Var in kinds:
        return "arg"
    return "num" if Num in kinds else "name"


class _Builder:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.diags: list[Diagnostic] = []
        self.recovered: set[str] = set()
        self.steps = 0

    def err(self, code: str, message: str, node: Node, hint: str | None = None) -> None:
        line, col, end = _at(node)
        self.diags.append(Diagnostic(code, message, line, col, end, hint))

    # ------------------------------------------------------------------ values

    def name(self, node: Node, what: str) -> Var | None:
        if isinstance(node, Scalar) and node.kind == "name":
            var = var_node(node.text, _span(node), self.limits)
            if var is None:
                self.err(TOO_LONG, f"a name of {len(node.text)} characters; the limit is "
                         f"{self.limits.max_name_chars}", node)
            return var
        hint = None
        if isinstance(node, Scalar) and node.kind == "number":
            hint = "give the number a name with `init` first, then use the name"
        self.err(WRONG_TYPE, f"`{what}` takes a variable name, not {_describe(node)}", node, hint)
        return None

    def number(self, node: Node, what: str, in_init: bool) -> Num | None:
        if isinstance(node, Scalar) and node.kind == "number":
            num = num_node(node.text, _span(node), self.limits)
            if num is not None:
                return num
            lit = parse_literal(node.text)
            if lit is not None and lit.digits > self.limits.max_literal_digits:
                self.err(NUMBER_TOO_LARGE, f"a literal of {lit.digits} digits; the limit is "
                         f"{self.limits.max_literal_digits}", node)
                return None
        if in_init and isinstance(node, Scalar) and node.kind in ("expr", "number"):
            self.err(EXPRESSION_IN_INIT, f"init holds the expression `{node.text}`; it takes one number", node,
                     "init each number on its own and compute the result with a `compute` step")
            return None
        hint = "a literal is an integer, a decimal or p/q in lowest terms" if isinstance(node, Scalar) \
            and node.kind in ("expr", "number") else None
        if isinstance(node, Scalar) and node.kind == "name" and in_init:
            hint = "to reuse a variable, use it directly where it is needed"
        self.err(WRONG_TYPE, f"`{what}` takes a number, not {_describe(node)}", node, hint)
        return None

    def arg(self, node: Node, what: str) -> Var | Num | None:
        if isinstance(node, Scalar) and node.kind == "name":
            return self.name(node, what)
        if isinstance(node, Scalar) and node.kind == "number":
            return self.number(node, what, in_init=False)
        self.err(WRONG_TYPE, f"`{what}` takes a variable name or a number, not {_describe(node)}", node)
        return None

    def args(self, node: Node, what: str) -> list | None:
        if not isinstance(node, Seq):
            self.err(WRONG_TYPE, f"`{what}` takes a list like `[a, b]`, not {_describe(node)}", node)
            return None
        out = [self.arg(item, what) for item in node.items]
        return None if any(a is None for a in out) else out

    def ref(self, node: Node, what: str) -> Ref | None:
        if not (isinstance(node, Scalar) and node.kind == "ref"):
            self.err(WRONG_TYPE, f"`{what}` takes a reference like `prev.result`, not {_describe(node)}", node)
            return None
        ref = ref_node(node.text, _span(node))
        if ref is None:
            self.err(UNRESOLVED_SOURCE, f"`{node.text}` names no block result", node,
                     "a source is `prev.result` or `subN.result` (N counts blocks from 0)")
        return ref

    def op_name(self, node: Node, what: str) -> str | None:
        if isinstance(node, Scalar) and node.kind == "name":
            return node.text
        self.err(WRONG_TYPE, f"`{what}` takes an operation name, not {_describe(node)}", node)
        return None

    def value(self, cls: type[Step], fname: str, node: Node) -> Any:
        kind = field_kind(cls, fname)
        if kind == "num":
            return self.number(node, fname, in_init=cls is InitStep)
        return getattr(self, kind)(node, fname)

    # ------------------------------------------------------------------ structure

    def fields(self, node: Map, allowed: list[str], where: str) -> dict[str, tuple[Scalar, Node]]:
        seen: dict[str, tuple[Scalar, Node]] = {}
        for key, value in node.pairs:
            if key.text in seen:
                self.err(UNKNOWN_FIELD, f"field `{key.text}` is given twice", key)
            elif key.text not in allowed:
                hint = _suggest(key.text, allowed) or f"{where} takes {', '.join(f'`{a}`' for a in allowed)}"
                self.err(UNKNOWN_FIELD, f"unknown field `{key.text}` on {where}", key, hint)
            else:
                seen[key.text] = (key, value)
        return seen

    def step(self, node: Node) -> Step | None:
        if not isinstance(node, Map):
            self.err(WRONG_TYPE, f"a step is a mapping like `{{op: init, ...}}`, not {_describe(node)}", node)
            return None
        self.steps += 1
        ops = [v for k, v in node.pairs if k.text == "op"]
        if not ops:
            self.err(MISSING_FIELD, "the step has no `op`", node, "start each step with `op: NAME`")
            self._recover(node)
            return None
        op = self.op_name(ops[0], "op")
        if op is None:
            return None
        cls = STEP_TYPES.get(op)
        if cls is None:
            self.err(UNKNOWN_OP, f"unknown op `{op}`", ops[0], _suggest(op, sorted(STEP_TYPES)))
            self._recover(node)
            return None
        names = step_fields(cls)
        before = len(self.diags)
        given = self.fields(node, ["op", *names], f"`{op}`")
        values: dict[str, Any] = {}
        for fname in names:
            if fname in given:
                values[fname] = self.value(cls, fname, given[fname][1])
            elif not cls.model_fields[fname].is_required():
                values[fname] = None
            else:
                self.err(MISSING_FIELD, f"`{op}` needs `{fname}`", ops[0])
        if cls is InitStep and "value" in given and "source" in given:
            self.err(UNKNOWN_FIELD, "init takes `value` or `source`, not both", given["source"][0])
        elif cls is InitStep and not ("value" in given or "source" in given):
            self.err(MISSING_FIELD, "`init` needs `value` (or `source`)", ops[0])
        if len(self.diags) > before:
            self._recover(node)
            return None
        return make(cls, op=op, span=_span(ops[0]), **values)

    def _recover(self, node: Map) -> None:
        """Remember every name a dropped step mentions: the checker neither calls them undefined
        (a later step may read what it would have defined) nor unused (it may have read them)."""
        for key, value in node.pairs:
            for item in value.items if isinstance(value, Seq) else [value]:
                if key.text != "op" and isinstance(item, Scalar) and item.kind == "name":
                    self.recovered.add(item.text)

    def block(self, node: Node) -> Block | None:
        if not isinstance(node, Map):
            self.err(WRONG_TYPE, f"a block is a mapping with `expert` and `trace`, not {_describe(node)}", node)
            return None
        if any(k.text == "op" for k, _ in node.pairs):
            self.err(MISSING_FIELD, "the steps have no `expert:` and `trace:` header", node,
                     "start the text with `expert: NAME` and `trace:`")
            return None
        given = self.fields(node, ["expert", "trace"], "a block")
        for fname in ("expert", "trace"):
            if fname not in given:
                self.err(MISSING_FIELD, f"the block has no `{fname}`", node)
        if len(given) < 2:
            return None
        expert_node, trace_node = given["expert"][1], given["trace"][1]
        expert = self.op_name(expert_node, "expert")
        if not isinstance(trace_node, Seq):
            self.err(WRONG_TYPE, f"`trace` takes a list of steps, not {_describe(trace_node)}", trace_node)
            return None
        if not trace_node.items:
            self.err(MISSING_FIELD, "`trace` has no steps", given["trace"][0])
        steps = []
        for item in trace_node.items:
            if self.steps >= self.limits.max_steps:
                self.err(TOO_LONG, f"more than {self.limits.max_steps} steps", item)
                break
            steps.append(self.step(item))
        if expert is None:
            return None
        return make(Block, expert=expert, trace=[s for s in steps if s is not None], span=_span(expert_node))

    def program(self, node: Node) -> Program | None:
        if isinstance(node, Seq):
            if len(node.items) > self.limits.max_blocks:
                self.err(TOO_LONG, f"{len(node.items)} blocks; the limit is {self.limits.max_blocks}", node)
                return None
            blocks = [self.block(item) for item in node.items]
            if any(b is None for b in blocks):
                return None
            return make(Program, composed=True, blocks=blocks, span=_span(node))
        block = self.block(node)
        return None if block is None else make(Program, composed=False, blocks=[block], span=_span(node))


def build(cst: Node, limits: Limits = DEFAULT_LIMITS) -> Built:
    builder = _Builder(limits)
    program = builder.program(cst)
    return Built(program, builder.diags, builder.recovered)
