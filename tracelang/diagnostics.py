"""Diagnostics: stable codes, one-line messages, a caret under the place, a hint.

Every code is declared once here, as a constant named after it (``UNDEFINED_VARIABLE`` is E201)
that enters it in ``CODES``, and is documented with a failing example in ``spec/diagnostics.md``.
The rest of the package writes a code only through its constant, so a mistyped one fails at import,
and a ``Diagnostic`` refuses a code that is not in the table. Codes are never renumbered, and a
retired code has no constant: it is never reported again nor reused. E = error, W = warning.
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


CODES: dict[str, Code] = {}


def _declare(code: str, name: str, summary: str, retired: bool = False) -> str:
    """Enter a code in the table and give it back for the constant that names it: the rest of the
    package writes codes only through these constants, so a mistyped code fails at import."""
    if code in CODES:
        raise ValueError(f"diagnostic code {code} is declared twice")
    CODES[code] = Code(code, name, summary, retired)
    return code


# 0xx: text and records
SYNTAX_ERROR = _declare("E001", "syntax-error", "the text is not a trace in the grammar")
INVALID_RECORD = _declare("E002", "invalid-record", "a corpus line is not a JSON object with a `trace` string")
INVALID_ANSWER = _declare("E003", "invalid-answer", "a record's `answer` is not a finite exact number")
WRONG_ANSWER = _declare("E004", "wrong-answer", "the trace runs to a value other than its record's `answer`")
# 1xx: structure of steps and blocks
UNKNOWN_EXPERT = _declare("E101", "unknown-expert", "the expert is not in the registry")
WRONG_EXPERT = _declare("E102", "wrong-expert", "the declared expert does not offer this op")
UNKNOWN_OP = _declare("E103", "unknown-op", "the op does not exist")
UNKNOWN_FIELD = _declare("E104", "unknown-field", "the field does not exist on this op (or is given twice)")
MISSING_FIELD = _declare("E105", "missing-field", "a field the op requires is absent")
WRONG_TYPE = _declare("E106", "wrong-type", "a field holds the wrong kind of value")
EXPRESSION_IN_INIT = _declare("E107", "expression-in-init", "init holds an expression instead of one number")
UNKNOWN_COMPUTE_OP = _declare("E108", "unknown-compute-op", "the compute_op does not exist for this op")
WRONG_ARITY = _declare("E109", "wrong-arity", "the compute_op takes another number of args")
# 2xx: names
UNDEFINED_VARIABLE = _declare("E201", "undefined-variable", "a name is used before any step defines it")
VARIABLE_OVERWRITTEN = _declare("E202", "variable-overwritten", "a name is defined a second time")
UNRESOLVED_SOURCE = _declare("E203", "unresolved-source", "a source names no earlier block")
# retired: no constant, so nothing can report it again
_declare("E204", "not-an-entity", "retired: an entity op may change any variable of its block", retired=True)
UNUSED_VARIABLE = _declare("W201", "unused-variable", "a defined variable is never used")
# 3xx: the query
MISSING_QUERY = _declare("E301", "missing-query", "the block has no query")
REPEATED_QUERY = _declare("E302", "repeated-query", "the block has more than one query")
QUERY_OF_INPUT = _declare("E303", "query-of-input", "the query returns a value no step computed")
STEP_AFTER_QUERY = _declare("E304", "step-after-query", "a step follows the query")
# 4xx: degenerate computation
NO_OP_COMPUTE = _declare("E401", "no-op-compute", "a step leaves its input unchanged (add 0, mul 1, consume 0, ...)")
REPEATED_SUBTRACE = _declare("E402", "repeated-subtrace", "a run of steps recomputes what earlier steps computed")
# 5xx: execution
DIVISION_BY_ZERO = _declare("E501", "division-by-zero", "a step divides by zero")
INSUFFICIENT_AMOUNT = _declare("E502", "insufficient-amount",
                               "a transfer or consume takes more than the variable holds")
INVALID_OPERAND = _declare("E503", "invalid-operand", "an operand is outside the op's domain")
# 6xx: resource limits
TOO_LONG = _declare("E601", "too-long", "the trace exceeds the size limits")
TOO_DEEP = _declare("E602", "too-deep", "the text nests deeper than the limit")
NUMBER_TOO_LARGE = _declare("E603", "number-too-large", "a literal or a computed value exceeds the size limit")
# 7xx: grounding in the question
UNGROUNDED_VALUE = _declare("W701", "ungrounded-value",
                            "an init value is neither in the question nor an allowed constant")


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
