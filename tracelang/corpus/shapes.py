"""Operation shapes: the sequence of operations a trace performs, the measure of structural variety.

A trace's shape is its operations in order, inits and queries left out: ``mul sub div`` for
"4 boxes of 12, 5 eaten, shared by 3". ``compute`` and ``compare`` steps are named by their
``compute_op`` (compare's prefixed ``cmp_``); percent and entity steps by their op. Composed
traces concatenate their blocks' shapes.
"""

from __future__ import annotations

import re

from ..ir import Program

NOT_OPERATIONS = frozenset({"init", "query", "add_entity"})
_STEP = re.compile(r"\{op: ([a-z_]+)(?:, compute_op: ([a-z_]+))?")


def label(op: str, compute_op: str | None) -> str:
    if op == "compute":
        return compute_op or "compute"
    if op == "compare":
        return f"cmp_{compute_op}"
    return op


def program_shape(program: Program) -> tuple[str, ...]:
    return tuple(label(step.op, getattr(step, "compute_op", None))
                 for block in program.blocks for step in block.trace if step.op not in NOT_OPERATIONS)


def text_shape(trace: str) -> tuple[str, ...] | None:
    """The shape of canonical trace text, read off its lines (None if it is not canonical-looking)."""
    found = _STEP.findall(trace)
    if not found:
        return None
    return tuple(label(op, cop or None) for op, cop in found if op not in NOT_OPERATIONS)
