"""What every expert shares: the execution environment and the core ops (init, compute, query)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..diagnostics import DIVISION_BY_ZERO, INVALID_OPERAND, NUMBER_TOO_LARGE
from ..errors import TracelangError
from ..ir import ComputeStep, InitStep, Num, QueryStep, Var
from ..limits import Limits
from ..numbers import ONE, ZERO, Exact, ceil, floor, mod, power_bits, render


class ExecError(TracelangError):
    """A runtime failure with its diagnostic code and the IR node it concerns."""

    def __init__(self, code: str, message: str, node: object = None, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.node, self.hint = code, message, node, hint


@dataclass
class Env:
    limits: Limits
    values: dict[str, Exact] = field(default_factory=dict)  # every variable, entities included
    results: list[Exact] = field(default_factory=list)  # answers of earlier blocks

    def read(self, arg: Var | Num) -> Exact:
        if isinstance(arg, Num):
            return arg.value
        return self.values[arg.name]

    def set(self, name: str, value: Exact, node: object) -> Exact:
        """Give ``name`` a value: the one way a handler writes a variable, so that every value any op
        makes (a consume's remainder and a transfer's giver included) is held to the value limit."""
        self.values[name] = self.bound(value, node)
        return value

    def bound(self, value: Exact, node: object) -> Exact:
        """Refuse values too large to be a grade-school quantity (and too slow to carry on)."""
        limit_bits = int(self.limits.max_value_digits * 3.33)
        if value.numerator.bit_length() > limit_bits or value.denominator.bit_length() > limit_bits:
            raise ExecError(NUMBER_TOO_LARGE, f"a value of more than {self.limits.max_value_digits} digits", node)
        return value


@dataclass(frozen=True)
class OpSpec:
    """A compute_op: its arity bounds and exact function."""

    min_args: int
    max_args: int | None
    fn: Callable[[list[Exact], Env, object], Exact]
    summary: str
    commutative: bool = False
    # The arg value that makes the op a no-op, by position ("any" or "rest" = all but the first).
    identity: tuple[Exact, str] | None = None
    # What the decoder must know to refuse a runtime error without evaluating: ``divides``, the
    # second arg divides (0 there is E501); ``partial``, it may fail in other ways too (pow's
    # exponent), so the decoder evaluates it. An op with neither fails only on size (E603).
    divides: bool = False
    partial: bool = False


def divisor(b: Exact, node: object) -> Exact:
    """``b``, refused (E501) when it is zero."""
    if b == ZERO:
        raise ExecError(DIVISION_BY_ZERO, "division by zero", node)
    return b


def div(a: Exact, b: Exact, node: object) -> Exact:
    return a / divisor(b, node)


def _mod(xs: list[Exact], env: Env, node: object) -> Exact:
    a, b = xs
    return mod(a, divisor(b, node))


def _pow(xs: list[Exact], env: Env, node: object) -> Exact:
    base, exp = xs
    if exp.denominator != 1:
        raise ExecError(INVALID_OPERAND, f"the exponent {render(exp)} is not an integer", node)
    e = int(exp.numerator)
    if abs(e) > env.limits.max_exponent:
        raise ExecError(NUMBER_TOO_LARGE, f"the exponent {e} exceeds the limit {env.limits.max_exponent}", node)
    if power_bits(base, e) > env.limits.max_value_digits * 3.33:
        raise ExecError(NUMBER_TOO_LARGE, f"a value of more than {env.limits.max_value_digits} digits", node)
    if e < 0 and base == ZERO:
        raise ExecError(DIVISION_BY_ZERO, "division by zero (zero to a negative power)", node)
    return base**e


# An n-ary op's running value (left to right) may grow to this many times the value limit and no
# further: a step of 10,000 huge args then fails at once with E603 instead of multiplying them all
# out first. The final value is bounded by the value limit as usual.
RUNNING_FACTOR = 4


def _running_bound(total: Exact, env: Env, node: object) -> None:
    limit_bits = int(env.limits.max_value_digits * 3.33 * RUNNING_FACTOR)
    if total.numerator.bit_length() > limit_bits or total.denominator.bit_length() > limit_bits:
        digits = env.limits.max_value_digits * RUNNING_FACTOR
        raise ExecError(NUMBER_TOO_LARGE, f"a running value of more than {digits} digits while combining the args",
                        node)


def _sum(xs: list[Exact], env: Env, node: object) -> Exact:
    total = ZERO
    for x in xs:
        total += x
        _running_bound(total, env, node)
    return total


def _product(xs: list[Exact], env: Env, node: object) -> Exact:
    total = ONE
    for x in xs:
        total *= x
        if total == ZERO:
            return total
        _running_bound(total, env, node)
    return total


COMPUTE_OPS: dict[str, OpSpec] = {
    "add": OpSpec(2, None, lambda xs, env, n: _sum(xs, env, n), "sum of all args", True, (ZERO, "any")),
    "sub": OpSpec(2, None, lambda xs, env, n: xs[0] - _sum(xs[1:], env, n), "first minus the rest", False,
                  (ZERO, "rest")),
    "mul": OpSpec(2, None, lambda xs, env, n: _product(xs, env, n), "product of all args", True, (ONE, "any")),
    "div": OpSpec(2, 2, lambda xs, env, n: div(xs[0], xs[1], n), "first divided by second", False,
                  (ONE, "rest"), divides=True),
    "mod": OpSpec(2, 2, _mod, "remainder of first divided by second (floored)", divides=True),
    "pow": OpSpec(2, 2, _pow, "first to the power of second (an integer)", False, (ONE, "rest"), partial=True),
    "floor": OpSpec(1, 1, lambda xs, env, n: floor(xs[0]), "largest integer not above the arg"),
    "ceil": OpSpec(1, 1, lambda xs, env, n: ceil(xs[0]), "smallest integer not below the arg"),
    "min": OpSpec(2, None, lambda xs, env, n: min(xs), "smallest arg", True),
    "max": OpSpec(2, None, lambda xs, env, n: max(xs), "largest arg", True),
}


Identities = dict[tuple[str, str], tuple[Exact, str]]

# The compute ops' identities (add 0, mul 1, sub/div/pow by 0/1/1 after the first), and max with 0:
# for a quantity (never below 0) max(a, 0) is a; below 0 it is the 0 written in. Either way no computation.
COMPUTE_IDENTITIES: Identities = {
    **{("compute", name): spec.identity for name, spec in COMPUTE_OPS.items() if spec.identity is not None},
    ("compute", "max"): (ZERO, "any"),
}


def op_init(step: InitStep, env: Env) -> Exact:
    if step.source is not None:
        index = step.source.target(len(env.results))
        value = env.results[index]  # type: ignore[index]  # the checker refused a source naming no block (E203)
    else:
        value = step.value.value  # type: ignore[union-attr]
    return env.set(step.var.name, value, step)


def apply_table(table: dict[str, OpSpec], step: ComputeStep, env: Env) -> Exact:
    spec = table[step.compute_op]
    return env.set(step.var.name, spec.fn([env.read(a) for a in step.args], env, step), step)


def op_compute(step: ComputeStep, env: Env) -> Exact:
    return apply_table(COMPUTE_OPS, step, env)


def op_query(step: QueryStep, env: Env) -> Exact:
    return env.values[step.var.name]


CORE_HANDLERS = {"init": op_init, "compute": op_compute, "query": op_query}
