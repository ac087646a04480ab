"""The failure taxonomy, computed by comparing a prediction with the gold trace the importer made
from the problem's own annotated solution (never by hand):

- ``invalid:<code>``     the trace does not check or run; its first error's code;
- ``value_extraction``   an input the question does not state (W701), or a gold input value missing;
- ``missing_final_step`` the answer is one of the gold trace's earlier values: it stopped early;
- ``multi_entity_confusion`` the right numbers and operations, bound to the wrong quantities, in a
  question about two or more named people (detectable: same values and ops, different answer);
- ``wrong_binding``      the same, without two named people;
- ``wrong_operation``    the gold inputs, combined with other operations;
- ``other``              anything else.
"""

from __future__ import annotations

import re
from collections import Counter

from ..diagnostics import SYNTAX_ERROR, UNGROUNDED_VALUE
from ..ir import ComputeStep, InitStep, Program
from ..pipeline import Report
from ..runtime import execute

_PERSON = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+\b")


def _inputs(program: Program) -> Counter:
    return Counter(s.value.value for b in program.blocks for s in b.trace
                   if isinstance(s, InitStep) and s.value is not None)


def _ops(program: Program) -> Counter:
    return Counter(getattr(s, "compute_op", s.op) for b in program.blocks for s in b.trace
                   if not isinstance(s, InitStep) and s.op != "query")


def _uses_literals(program: Program) -> bool:
    return any(isinstance(s, ComputeStep) and any(a.kind == "num" for a in s.args) for b in program.blocks
               for s in b.trace)


def classify(report: Report, gold: Program | None, question: str) -> str | None:
    """The kind of failure of a prediction, or None when it is correct."""
    if report.correct:
        return None
    errors = [d for d in report.diagnostics if d.severity == "error"]
    if errors or report.program is None:
        return f"invalid:{errors[0].code}" if errors else f"invalid:{SYNTAX_ERROR}"
    if any(d.code == UNGROUNDED_VALUE for d in report.diagnostics):
        return "value_extraction"
    if gold is None:
        return "other"
    gold_inputs, pred_inputs = _inputs(gold), _inputs(report.program)
    if gold_inputs - pred_inputs and not _uses_literals(report.program):
        return "value_extraction"
    run = execute(gold)
    earlier = {v for _, _, v in run.steps[:-2] if v is not None}
    if report.answer in earlier:
        return "missing_final_step"
    if pred_inputs == gold_inputs and _ops(report.program) == _ops(gold):
        people = {m.group(0) for m in _PERSON.finditer(question)}
        return "multi_entity_confusion" if len(people) >= 2 else "wrong_binding"
    if not gold_inputs - pred_inputs:
        return "wrong_operation"
    return "other"
