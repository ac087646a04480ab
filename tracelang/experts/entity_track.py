"""`entity_track`: quantities that change hands. An entity is an ordinary variable of the block
(``init`` creates one as well as ``add_entity``): ``consume`` takes from it, ``add_entity`` adds to
it and ``transfer`` moves an amount between two; a missing receiver starts at 0."""

from __future__ import annotations

from ..diagnostics import INSUFFICIENT_AMOUNT, INVALID_OPERAND
from ..ir import AddEntityStep, ConsumeStep, TransferStep
from ..numbers import ZERO, Exact, render
from . import Expert, register
from .base import COMPUTE_IDENTITIES, COMPUTE_OPS, CORE_HANDLERS, Env, ExecError


def _amount(step, env: Env) -> Exact:
    amount = env.read(step.amount)
    if amount < ZERO:
        raise ExecError(INVALID_OPERAND, f"the amount {render(amount)} is negative", step.amount,
                        "move the quantity the other way instead")
    return amount


def _take(env: Env, name: str, amount: Exact, step: object) -> None:
    held = env.values[name]
    if amount > held:
        raise ExecError(INSUFFICIENT_AMOUNT, f"`{name}` holds {render(held)} but gives {render(amount)}", step)
    env.set(name, held - amount, step)


def _give(env: Env, name: str, amount: Exact, step: object) -> Exact:
    return env.set(name, env.values.get(name, ZERO) + amount, step)


def op_add_entity(step: AddEntityStep, env: Env) -> Exact:
    # Not negative: adding a negative amount would take without consume's check of what is held (E502).
    return _give(env, step.entity.name, _amount(step, env), step)


def op_transfer(step: TransferStep, env: Env) -> Exact:
    amount = _amount(step, env)
    _take(env, step.from_entity.name, amount, step)
    return _give(env, step.to_entity.name, amount, step)


def op_consume(step: ConsumeStep, env: Env) -> Exact:
    _take(env, step.entity.name, _amount(step, env), step)
    return env.values[step.entity.name]


EXPERT = register(Expert(
    "entity_track", "the arithmetic ops plus add_entity, transfer and consume, which change a variable in place",
    {**CORE_HANDLERS, "add_entity": op_add_entity, "transfer": op_transfer, "consume": op_consume},
    {"compute": COMPUTE_OPS}, COMPUTE_IDENTITIES,
))
