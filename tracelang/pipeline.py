"""The one road through the language: text -> CST -> IR -> checks -> execution -> verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import canonical, compact
from .build import build
from .checker import Grounder, check
from .diagnostics import Diagnostic, has_errors
from .ir import Program
from .limits import DEFAULT_LIMITS, Limits
from .numbers import Exact, answer_value, render, same_answer
from .runtime import Execution, execute
from .syntax import SyntaxFailure, parse_cst


@dataclass
class Report:
    text: str
    program: Program | None = None
    complete: bool = False  # every step made it into the IR
    diagnostics: list[Diagnostic] = field(default_factory=list)
    comments: list[tuple[int, str]] = field(default_factory=list)
    recovered: set[str] = field(default_factory=set)  # names of steps the builder had to leave out
    execution: Execution | None = None
    expected: Exact | None = None

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)

    @property
    def answer(self) -> Exact | None:
        return self.execution.answer if self.execution is not None and self.ok else None

    @property
    def correct(self) -> bool | None:
        if self.expected is None:
            return None
        if self.answer is None or self.execution is None:
            return False
        return same_answer(self.answer, self.expected, self.execution.magnitude)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "answer": None if self.answer is None else render(self.answer),
            "expected": None if self.expected is None else render(self.expected),
            "correct": self.correct,
            "diagnostics": [d.to_json() for d in self.diagnostics],
        }


def parse(text: str, limits: Limits = DEFAULT_LIMITS) -> Report:
    """Text to IR with the structural diagnostics; no checks, no execution."""
    report = Report(text)
    surface = compact.is_compact(text)
    program = None if surface else canonical.read(text, limits)
    if program is not None:  # the fast road: canonical text, nothing to report
        report.program, report.complete = program, True
        return report
    found: list[Diagnostic] = []
    left_out: set[str] = set()
    try:
        if surface:
            doc, found, left_out = compact.read(text, limits)
        else:
            doc = parse_cst(text, limits)
    except SyntaxFailure as failure:
        report.diagnostics.append(failure.diagnostic)
        return report
    report.comments = doc.comments
    built = build(doc.root, limits)
    report.program, report.complete = built.program, built.complete and not found
    report.diagnostics.extend(sorted(found + built.diagnostics, key=lambda d: (d.line, d.column)))
    report.recovered = built.recovered | left_out
    return report


def analyze(
    text: str,
    *,
    expected: str | int | Exact | None = None,
    grounder: Grounder | None = None,
    execute_program: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> Report:
    """Parse, check and (when error-free) execute a trace; compare with ``expected`` if given."""
    report = parse(text, limits)
    if expected is not None:
        report.expected = expected if isinstance(expected, Exact) else answer_value(expected)
    if report.program is not None:
        found = check(report.program, report.recovered, grounder)
        if found:
            report.diagnostics.extend(found)
            report.diagnostics.sort(key=lambda d: (d.line, d.column))
        if execute_program and report.ok:
            report.execution = execute(report.program, limits)
            report.diagnostics.extend(report.execution.diagnostics)
    return report
