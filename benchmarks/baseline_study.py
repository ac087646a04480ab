"""What the study did, as the baseline for our speed claims: ``yaml.safe_load`` the text, validate
it with a pydantic model of the step dicts, and execute it in floating point. No diagnostics beyond
pydantic's, no scope checks, no exactness."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel


class StudyStep(BaseModel):
    op: str
    var: str | None = None
    value: Union[float, str] | None = None
    source: str | None = None
    compute_op: str | None = None
    args: list[Union[float, str]] | None = None
    base: str | None = None
    rate: str | None = None
    entity: str | None = None
    from_entity: str | None = None
    to_entity: str | None = None
    amount: Union[float, str] | None = None


class StudyTrace(BaseModel):
    expert: Literal["arithmetic", "percentage", "entity_track", "rate_equation", "comparison"]
    trace: list[StudyStep]


_FLOAT_OPS = {
    "add": lambda xs: math.fsum(xs), "sub": lambda xs: xs[0] - math.fsum(xs[1:]),
    "mul": lambda xs: math.prod(xs), "div": lambda xs: xs[0] / xs[1], "mod": lambda xs: xs[0] % xs[1],
    "pow": lambda xs: xs[0] ** xs[1], "floor": lambda xs: math.floor(xs[0]), "ceil": lambda xs: math.ceil(xs[0]),
    "min": min, "max": max, "diff": lambda xs: abs(xs[0] - xs[1]), "ratio": lambda xs: xs[0] / xs[1],
}
_PERCENT = {"percent_of": lambda b, r: b * r / 100, "percent_off": lambda b, r: b * (1 - r / 100),
            "percent_increase": lambda b, r: b * (1 + r / 100)}


def _number(value: float | str) -> float:
    # YAML reads `1/3` as a string; the study's traces had none, ours do, so convert them here
    return float(Fraction(value)) if isinstance(value, str) else float(value)


def _run_block(block: StudyTrace, results: list[float]) -> float | None:
    env: dict[str, float] = {}
    answer = None
    val = lambda a: env[a] if isinstance(a, str) and a in env else _number(a)  # noqa: E731
    for s in block.trace:
        if s.op == "init":
            env[s.var] = results[-1] if s.source else _number(s.value)
        elif s.op in ("compute", "compare"):
            env[s.var] = _FLOAT_OPS[s.compute_op]([val(a) for a in s.args])
        elif s.op in _PERCENT:
            env[s.var] = _PERCENT[s.op](env[s.base], env[s.rate])
        elif s.op == "add_entity":
            env[s.entity] = val(s.amount)
        elif s.op == "transfer":
            env[s.from_entity] -= val(s.amount)
            env[s.to_entity] += val(s.amount)
        elif s.op == "consume":
            env[s.entity] -= val(s.amount)
        elif s.op == "query":
            answer = env[s.var]
    return answer


def study_run(text: str) -> float | None:
    data: Any = yaml.safe_load(text)
    blocks = [StudyTrace.model_validate(b) for b in (data if isinstance(data, list) else [data])]
    results: list[float] = []
    for block in blocks:
        results.append(_run_block(block, results))
    return results[-1]
