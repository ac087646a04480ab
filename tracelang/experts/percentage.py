"""`percentage`: the core ops plus percent_of, percent_off and percent_increase (rate in percent)."""

from __future__ import annotations

from ..ir import PercentStep
from ..numbers import ONE, Exact
from . import Expert, register
from .base import COMPUTE_OPS, CORE_HANDLERS, Env

HUNDRED = Exact(100)

_PERCENT = {
    "percent_of": lambda base, rate: base * rate / HUNDRED,
    "percent_off": lambda base, rate: base * (ONE - rate / HUNDRED),
    "percent_increase": lambda base, rate: base * (ONE + rate / HUNDRED),
}


def op_percent(step: PercentStep, env: Env) -> Exact:
    value = env.bound(_PERCENT[step.op](env.values[step.base.name], env.values[step.rate.name]), step)
    env.values[step.var.name] = value
    return value


EXPERT = register(Expert("percentage", "the arithmetic ops plus percent_of, percent_off, percent_increase",
                         {**CORE_HANDLERS, **dict.fromkeys(_PERCENT, op_percent)}, {"compute": COMPUTE_OPS}))
