"""The expert registry. An expert is a named set of ops with their runtime semantics.

Built-in experts register themselves below; third-party packages add experts through the
``tracelang.experts`` entry-point group (each entry point is an ``Expert`` instance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points

from .base import Env, ExecError, OpSpec

Handler = Callable[..., object]


@dataclass(frozen=True)
class Expert:
    name: str
    description: str
    handlers: dict[str, Handler] = field(repr=False)
    # Operation tables for ops that take a `compute_op` (compute, compare).
    tables: dict[str, dict[str, OpSpec]] = field(default_factory=dict, repr=False)

    @property
    def ops(self) -> frozenset[str]:
        return frozenset(self.handlers)


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


__all__ = ["Env", "ExecError", "Expert", "OpSpec", "experts", "experts_offering", "get", "register"]
