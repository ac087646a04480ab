"""The expert registry. An expert is a named set of ops with their runtime semantics.

Built-in experts register themselves below; third-party packages add experts through the
``tracelang.experts`` entry-point group (each entry point is an ``Expert`` instance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points

from ..numbers import Exact
from .base import Env, ExecError, Identities, OpSpec

Handler = Callable[..., object]


@dataclass(frozen=True)
class Expert:
    name: str
    description: str
    handlers: dict[str, Handler] = field(repr=False)
    # Operation tables for ops that take a `compute_op` (compute, compare).
    tables: dict[str, dict[str, OpSpec]] = field(default_factory=dict, repr=False)
    # The no-op table (E401): (op, compute_op) -> (the arg value that makes the step carry an input
    # unchanged, where: "any" arg or the "rest" after the first). Each expert module holds its own.
    identities: Identities = field(default_factory=dict, repr=False)

    @property
    def ops(self) -> frozenset[str]:
        return frozenset(self.handlers)


def identity(expert: Expert | None, op: str, compute_op: str) -> tuple[Exact, str] | None:
    """The one reading of the no-op table: which arg value makes ``op`` / ``compute_op`` of
    ``expert`` an identity (E401), and where; None when no value does. The checker and the decoder's
    guide both ask here, so no op escapes the rule in one and not the other."""
    return None if expert is None else expert.identities.get((op, compute_op))


_REGISTRY: dict[str, Expert] = {}


def register(expert: Expert) -> Expert:
    if expert.name in _REGISTRY and _REGISTRY[expert.name] is not expert:
        raise ValueError(f"expert {expert.name!r} is already registered")
    _REGISTRY[expert.name] = expert
    return expert


@cache
def _load_builtins_and_plugins() -> None:
    from . import arithmetic, comparison, entity_track, percentage, rate_equation  # noqa: F401

    for ep in entry_points(group="tracelang.experts"):
        register(ep.load())


def experts() -> dict[str, Expert]:
    _load_builtins_and_plugins()
    return _REGISTRY


def get(name: str) -> Expert | None:
    return experts().get(name)


def experts_offering(op: str) -> list[str]:
    return sorted(e.name for e in experts().values() if op in e.ops)


__all__ = ["Env", "ExecError", "Expert", "OpSpec", "experts", "experts_offering", "get", "identity", "register"]
