"""Diagnostics: stable codes, one-line messages, a caret under the place, a hint.

Every code is listed in ``CODES`` and documented with a failing example in ``spec/diagnostics.md``;
codes are never renumbered, and a retired code is never reported again nor reused. E = error,
W = warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    name: str
    summary: str
    retired: bool = False  # no check reports it any more; the code keeps its old meaning, unused

    @property
    def severity(self) -> Severity:
        return "warning" if self.code.startswith("W") else "error"


CODES: dict[str, Code] = {
    c.code: c
    for c in (
        # 0xx: text and records
        Code("E001", "syntax-error", "the text is not a trace in the grammar"),
        Code("E002", "invalid-record", "a corpus line is not a JSON object with a `trace` string"),
        Code("E003", "invalid-answer", "a record's `answer` is not a finite exact number"),
        Code("E004", "wrong-answer", "the trace runs to a value other than its record's `answer`"),
        # 1xx: structure of steps and blocks
        Code("E101", "unknown-expert", "the expert is not in the registry"),
        Code("E102", "wrong-expert", "the declared expert does not offer this op"),
        Code("E103", "unknown-op", "the op does not exist"),
        Code("E104", "unknown-field", "the field does not exist on this op (or is given twice)"),
        Code("E105", "missing-field", "a field the op requires is absent"),
        Code("E106", "wrong-type", "a field holds the wrong kind of value"),
        Code("E107", "expression-in-init", "init holds an expression instead of one number"),
        Code("E108", "unknown-compute-op", "the compute_op does not exist for this op"),
        Code("E109", "wrong-arity", "the compute_op takes another number of args"),
        # 2xx: names
        Code("E201", "undefined-variable", "a name is used before any step defines it"),
        Code("E202", "variable-overwritten", "a name is defined a second time"),
        Code("E203", "unresolved-source", "a source names no earlier block"),
        Code("E204", "not-an-entity", "retired: an entity op may change any variable of its block", retired=True),
        Code("W201", "unused-variable", "a defined variable is never used"),
        # 3xx: the query
        Code("E301", "missing-query", "the block has no query"),
        Code("E302", "repeated-query", "the block has more than one query"),
        Code("E303", "query-of-input", "the query returns a value no step computed"),
        Code("E304", "step-after-query", "a step follows the query"),
        # 4xx: degenerate computation
        Code("E401", "no-op-compute", "a step leaves its input unchanged (add 0, mul 1, consume 0, ...)"),
        Code("E402", "repeated-subtrace", "a run of steps recomputes what earlier steps computed"),
        # 5xx: execution
        Code("E501", "division-by-zero", "a step divides by zero"),
        Code("E502", "insufficient-amount", "a transfer or consume takes more than the variable holds"),
        Code("E503", "invalid-operand", "an operand is outside the op's domain"),
        # 6xx: resource limits
        Code("E601", "too-long", "the trace exceeds the size limits"),
        Code("E602", "too-deep", "the text nests deeper than the limit"),
        Code("E603", "number-too-large", "a literal or a computed value exceeds the size limit"),
        # 7xx: grounding in the question
        Code("W701", "ungrounded-value", "an init value is neither in the question nor an allowed constant"),
    )
}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    line: int = 1  # 1-based, in the trace text
    column: int = 1  # 1-based
    end_column: int | None = None  # exclusive; None marks one character
    hint: str | None = None

    def __post_init__(self) -> None:
        # the one table: a code that is not in it (a typo) or is retired is a bug where it is made
        known = CODES.get(self.code)
        if known is None or known.retired:
            raise ValueError(f"diagnostic code {self.code!r} is {'retired' if known else 'not in CODES'}")

    @property
    def severity(self) -> Severity:
        return CODES[self.code].severity

    @property
    def name(self) -> str:
        return CODES[self.code].name

    def to_json(self) -> dict[str, object]:
        """The JSON form. ``end_column`` is always a number, exclusive, and marks at least one
        character (as the caret does); ``hint`` is null when there is none."""
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "end_column": max(self.end_column or 0, self.column + 1),
            "hint": self.hint,
        }


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)


def render(diag: Diagnostic, text: str, location: str) -> str:
    """Human form, after ruff and rustc: ``where:line:col: CODE message``, the line, a caret, a hint."""
    lines = text.splitlines()
    head = f"{location}:{diag.line}:{diag.column}: {diag.code} {diag.message}"
    if not 1 <= diag.line <= len(lines):
        return head + (f"\n  = hint: {diag.hint}" if diag.hint else "")
    src = lines[diag.line - 1]
    if len(src) > 200:  # keep the caret readable on absurd lines
        start = max(0, diag.column - 80)
        src, col = src[start : start + 160], diag.column - start
    else:
        col = diag.column
    width = max(1, (diag.end_column or diag.column + 1) - diag.column)
    width = min(width, max(1, len(src) - col + 1))
    gutter = " " * len(str(diag.line))
    out = [
        head,
        f"{gutter} |",
        f"{diag.line} | {src}",
        f"{gutter} | {' ' * (col - 1)}{'^' * width}",
    ]
    if diag.hint:
        out.append(f"{gutter} = hint: {diag.hint}")
    return "\n".join(out)
