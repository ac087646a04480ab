"""The fast road: canonical text -> IR in one pass.

Canonical text is what the formatter writes and the decoder emits, so it is most of what a
corpus or a model produces. It is first matched whole by a regex compiled from the grammar's
``canonical`` rule; after that its shape is certain (known ops, exact fields, right kinds of
values), and each line only needs splitting into fields. Values go through the builder's own
converters. Anything they refuse (a name over the length limit, 48/2, prev.total) returns None
and the text takes the full road, which reports it.
"""

from __future__ import annotations

import re

from .build import field_kind, num_node, ref_node, var_node
from .grammar import canonical_regex
from .ir import STEP_TYPES, Block, Num, Program, Span, Step, Var, make, step_fields
from .limits import DEFAULT_LIMITS, Limits
from .syntax import classify

# After the grammar matched, a field is `key: value` with value a flat list or a bare scalar.
_FIELD = re.compile(r"([a-z_]+): (\[[^\]]*\]|[^,}]+)")


def _scalar(text: str, line: int, col: int, kind: str, limits: Limits):
    span = Span(line, col, col + len(text))
    if kind == "name":
        return var_node(text, span, limits)
    if kind == "num":
        return num_node(text, span, limits)
    if kind == "arg":
        return var_node(text, span, limits) if classify(text) == "name" else num_node(text, span, limits)
    return ref_node(text, span)


def _step(row: str, line: int, indent: int, limits: Limits) -> Step | None:
    fields = _FIELD.finditer(row, indent + 3, len(row) - 1)
    op_match = next(fields)
    op = op_match.group(2)
    cls = STEP_TYPES[op]
    values: dict[str, object] = dict.fromkeys(step_fields(cls))
    for m in fields:
        key, raw = m.groups()
        col = m.start(2) + 1
        kind = field_kind(cls, key)
        if kind == "op_name":
            values[key] = raw
        elif kind == "args":
            items: list[Var | Num] = []
            pos = col + 1
            for part in raw[1:-1].split(", "):
                node = _scalar(part, line, pos, "arg", limits)
                if node is None:
                    return None
                items.append(node)
                pos += len(part) + 2
            values[key] = items
        else:
            node = _scalar(raw, line, col, kind, limits)
            if node is None:
                return None
            values[key] = node
    start = op_match.start(2) + 1
    return make(cls, op=op, span=Span(line, start, start + len(op)), **values)


def read(text: str, limits: Limits = DEFAULT_LIMITS) -> Program | None:
    """The program of a canonical text, or None when the text is not canonical or needs diagnostics."""
    if len(text) > limits.max_chars or not canonical_regex().fullmatch(text):
        return None
    rows = text.split("\n")[:-1]
    composed = rows[0].startswith("- ")
    indent = 2 if composed else 0
    blocks: list[Block] = []
    steps: list[Step] = []
    total = 0
    for n, row in enumerate(rows, start=1):
        if row[indent] == "-" and row[indent + 2] == "{":
            step = _step(row, n, indent, limits)
            if step is None:
                return None
            steps.append(step)
            total += 1
        elif row[indent] != "t":  # an `expert:` header (the other header line is `trace:`)
            name = row[row.index(":") + 2:]
            col = len(row) - len(name) + 1
            steps = []
            blocks.append(make(Block, expert=name, trace=steps, span=Span(n, col, col + len(name))))
    if total > limits.max_steps or len(blocks) > limits.max_blocks:
        return None
    return make(Program, composed=composed, blocks=blocks, span=Span(1, 3 if composed else 1, 4 if composed else 2))
