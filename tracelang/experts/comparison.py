"""`comparison`: the core ops plus compare (differences, ratios, extremes, orderings as 1/0)."""

from __future__ import annotations

from ..ir import CompareStep
from ..numbers import ONE, ZERO, Exact
from . import Expert, register
from .base import COMPUTE_IDENTITIES, COMPUTE_OPS, CORE_HANDLERS, Env, Identities, OpSpec, apply_table, div


def _truth(flag: bool) -> Exact:
    return ONE if flag else ZERO


COMPARE_OPS: dict[str, OpSpec] = {
    "diff": OpSpec(2, 2, lambda xs, env, n: abs(xs[0] - xs[1]), "absolute difference", True),
    "ratio": OpSpec(2, 2, lambda xs, env, n: div(xs[0], xs[1], n), "first divided by second", divides=True),
    "max": OpSpec(2, None, lambda xs, env, n: max(xs), "largest arg", True),
    "min": OpSpec(2, None, lambda xs, env, n: min(xs), "smallest arg", True),
    "gt": OpSpec(2, 2, lambda xs, env, n: _truth(xs[0] > xs[1]), "1 if first > second else 0"),
    "lt": OpSpec(2, 2, lambda xs, env, n: _truth(xs[0] < xs[1]), "1 if first < second else 0"),
    "eq": OpSpec(2, 2, lambda xs, env, n: _truth(xs[0] == xs[1]), "1 if equal else 0", True),
}


# E401's table for this expert: compare's identities beside compute's. ratio by 1, |a - 0|, max with 0.
IDENTITIES: Identities = {
    **COMPUTE_IDENTITIES,
    ("compare", "ratio"): (ONE, "rest"),
    ("compare", "diff"): (ZERO, "any"),
    ("compare", "max"): (ZERO, "any"),
}


def op_compare(step: CompareStep, env: Env) -> Exact:
    return apply_table(COMPARE_OPS, step, env)


EXPERT = register(Expert("comparison", "the arithmetic ops plus compare (diff, ratio, max, min, gt, lt, eq)",
                         {**CORE_HANDLERS, "compare": op_compare},
                         {"compute": COMPUTE_OPS, "compare": COMPARE_OPS}, IDENTITIES))
