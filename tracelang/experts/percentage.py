"""`percentage`: the core ops plus percent_of, percent_off and percent_increase (rate in percent)."""

from __future__ import annotations

from ..diagnostics import INVALID_OPERAND
from ..ir import PercentStep
from ..numbers import ONE, Exact, render
from . import Expert, register
from .base import COMPUTE_IDENTITIES, COMPUTE_OPS, CORE_HANDLERS, Env, ExecError

HUNDRED = Exact(100)

# Each percent op's exact value from its base and rate (in percent); the decoder's guide evaluates them too.
PERCENT_OPS = {
    "percent_of": lambda base, rate: base * rate / HUNDRED,
    "percent_off": lambda base, rate: base * (ONE - rate / HUNDRED),
    "percent_increase": lambda base, rate: base * (ONE + rate / HUNDRED),
}


def rate_error(op: str, rate: Exact) -> str | None:
    """Why a rate is outside its op's domain, or None: taking off more than the whole (over 100%)
    leaves less than nothing, which no discount or decrease means."""
    if op == "percent_off" and rate > HUNDRED:
        return f"`percent_off` takes off {render(rate)}%, more than the whole"
    return None


def op_percent(step: PercentStep, env: Env) -> Exact:
    rate = env.values[step.rate.name]
    why = rate_error(step.op, rate)
    if why is not None:
        raise ExecError(INVALID_OPERAND, why, step.rate, "a decrease is at most 100%")
    return env.set(step.var.name, PERCENT_OPS[step.op](env.values[step.base.name], rate), step)


EXPERT = register(Expert("percentage", "the arithmetic ops plus percent_of, percent_off, percent_increase",
                         {**CORE_HANDLERS, **dict.fromkeys(PERCENT_OPS, op_percent)}, {"compute": COMPUTE_OPS},
                         COMPUTE_IDENTITIES))
