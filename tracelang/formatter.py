"""IR -> canonical text: one step per line, keys in the IR's field order (the grammar's
`canonical` rule spells out the same layout; tests keep the two equal). ``surface="compact"``
writes the compact surface instead (compact.py)."""

from __future__ import annotations

from . import compact
from .ir import Block, Program, Step, step_fields, value_text


def format_step(step: Step) -> str:
    parts = [f"op: {step.op}"]
    for name in step_fields(type(step)):
        value = getattr(step, name)
        if value is not None:
            parts.append(f"{name}: {value_text(value)}")
    return "- {" + ", ".join(parts) + "}"


class _Comments:
    """Comments of the source, each re-emitted before the first block or step at or after its line:
    formatting moves them to a line of their own but never drops one."""

    def __init__(self, comments: list[tuple[int, str]]):
        self.pending = sorted(comments)

    def before(self, node: Block | Step, indent: str) -> list[str]:
        line = node.span.line if node.span else 0
        out = []
        while self.pending and self.pending[0][0] <= line:
            out.append(indent + self.pending.pop(0)[1])
        return out


def format_program(program: Program, comments: list[tuple[int, str]] = (), surface: str = "yaml") -> str:
    if surface == "compact":
        return compact.format_program(program, comments)
    if surface != "yaml":
        raise ValueError(f"unknown surface {surface!r}; surfaces: yaml, compact")
    lines: list[str] = []
    notes = _Comments(list(comments))
    indent = "  " if program.composed else ""
    for block in program.blocks:
        lines += notes.before(block, "")
        lines += [f"- expert: {block.expert}", "  trace:"] if program.composed else \
            [f"expert: {block.expert}", "trace:"]
        for step in block.trace:
            lines += notes.before(step, indent)
            lines.append(indent + format_step(step))
    lines += [c for _, c in notes.pending]
    return "\n".join(lines) + "\n"
