"""The gate every generated record passes: a clean check, an exact run, the expected answers.

"Clean" means no diagnostic at all, warnings included (unused names, no-op computes, repeated
computation, queries of inputs): a training trace should be one a careful person would write.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..checker import check
from ..ir import Program
from ..numbers import Exact
from ..runtime import Execution, execute


def nice(value: Exact | None, decimals: int) -> bool:
    """A positive answer with at most ``decimals`` decimal places."""
    if value is None or value <= 0:
        return False
    if decimals == 0:
        return value.denominator == 1
    scaled = value * 10**decimals
    return scaled.denominator == 1


def verify(program: Program, expected: Sequence[Exact | None] | None = None,
           run: Execution | None = None) -> tuple[Exact | None, str]:
    """Run the gate. Returns (answer, "") on success, (None, reason) otherwise.

    ``expected`` holds each block's answer as the template states it; the runtime must agree with
    every one. No value along the way may be negative (a count, price or time never is). ``run`` is
    an execution of this very program the caller already made (it is not repeated).
    """
    diags = check(program)
    if diags:
        return None, f"check:{diags[0].code}"
    if run is None:
        run = execute(program)
    if run.diagnostics:
        return None, f"run:{run.diagnostics[0].code}"
    if expected is not None and list(run.results) != list(expected):
        return None, "answer-mismatch"
    for _, _, value in run.steps:
        if value is not None and value < 0:
            return None, "negative"
    return run.answer, ""
