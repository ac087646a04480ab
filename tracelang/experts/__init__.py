"""The expert registry. An expert is a named set of ops with their runtime semantics.

Built-in experts register themselves below; third-party packages add experts through the
``tracelang.experts`` entry-point group (each entry point is an ``Expert`` instance).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import TypeVar

from ..ir import Step
from ..numbers import Exact
from .base import Env, ExecError, Identities, OpSpec, apply_table

A = TypeVar("A")  # an arg as its reader keeps it (an IR arg, a draft's tuple)

Handler = Callable[..., object]
Identity = tuple[Exact, str]  # the arg value that leaves an op unchanged, and where: "any" | "rest"


@dataclass(frozen=True)
class Expert:
    """A named set of ops. The checker, the decoder's guide and the runtime ask the block's expert,
    through these methods only, what it offers (``ops``), how a step runs (``run``: a compute_op by
    the expert's own table, another op by its handler), what a ``compute_op`` is (``spec``,
    ``compute_ops``: arity, exact function, what the decoder relies on) and when a step is a no-op
    (``identity``, ``noop``); so an expert brings ops without an edit anywhere else."""

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

    def compute_ops(self, op: str) -> dict[str, OpSpec]:
        """The ``compute_op`` table of ``op`` (empty for an op that takes none)."""
        return self.tables.get(op, {})

    def spec(self, op: str, compute_op: str) -> OpSpec | None:
        """What ``compute_op`` of ``op`` is, or None where this expert has no such compute_op."""
        return self.tables.get(op, {}).get(compute_op)

    def identity(self, op: str, compute_op: str) -> Identity | None:
        """The arg value that leaves ``compute_op`` of ``op`` unchanged (E401), and where it counts:
        this expert's no-op table (``identities``) where it names the pair, else the op spec's own
        ``identity``, so an expert that brings an op with an identity needs no table entry for it."""
        if (op, compute_op) in self.identities:
            return self.identities[(op, compute_op)]
        spec = self.spec(op, compute_op)
        return spec.identity if spec is not None else None

    def run(self, step: Step, env: Env) -> Exact:
        """Run ``step``: a ``compute_op`` by this expert's table, any other op by its handler."""
        table = self.tables.get(step.op)
        if table is not None:
            return apply_table(table, step, env)  # type: ignore[arg-type]
        return self.handlers[step.op](step, env)  # type: ignore[return-value]

    def noop(self, op: str, compute_op: str, args: Sequence[A], const: Callable[[A], Exact | None]) -> A | None:
        """The first of ``args`` whose known constant (``const``) is the identity: the step is then
        a no-op (E401). The checker passes IR args, the guide its drafts'."""
        identity = self.identity(op, compute_op)
        if identity is None:
            return None
        value, where = identity
        for arg in (args if where == "any" else args[1:]):
            if const(arg) == value:
                return arg
        return None


_REGISTRY: dict[str, Expert] = {}


def register(expert: Expert) -> Expert:
    if expert.name in _REGISTRY and _REGISTRY[expert.name] is not expert:
        raise ValueError(f"expert {expert.name!r} is already registered")
    _REGISTRY[expert.name] = expert
    _ANY.clear()
    return expert


def unregister(name: str) -> None:
    """Remove an expert (one a test registered); the built-ins stay."""
    _REGISTRY.pop(name, None)
    _ANY.clear()


_ANY: list[Expert] = []  # the one `anyone()`, rebuilt when the registry changes


def anyone() -> Expert:
    """Where a block names no known expert (E101 already said so), or a decoder level does not
    check ops: every op of every expert, each from the first expert (by name) that offers it, so
    arity and values are still checked. The built-in experts share the core ops, so the choice
    of expert does not matter for them."""
    if not _ANY:
        handlers: dict[str, Handler] = {}
        tables: dict[str, dict[str, OpSpec]] = {}
        identities: Identities = {}
        for name in sorted(experts()):
            e = experts()[name]
            for op, fn in e.handlers.items():
                handlers.setdefault(op, fn)
            for op, table in e.tables.items():
                if op not in tables:  # the table and its no-op entries from the same expert
                    tables[op] = table
                    identities.update({k: v for k, v in e.identities.items() if k[0] == op})
        _ANY.append(Expert("(any)", "every expert's ops", handlers, tables, identities))
    return _ANY[0]


@cache
def _load_builtins_and_plugins() -> None:
    from . import arithmetic, comparison, entity_track, percentage, rate_equation  # noqa: F401

    for ep in entry_points(group="tracelang.experts"):
        register(ep.load())


def answering(expert: Expert | None, op: str) -> Expert:
    """Who answers for ``op`` in a block of ``expert``: the expert itself where it offers the op;
    else (an unknown expert, an op it lacks: errors the checker reports) ``anyone()``, so the
    step's arity and values are still checked."""
    return expert if expert is not None and op in expert.handlers else anyone()


def experts() -> dict[str, Expert]:
    _load_builtins_and_plugins()
    return _REGISTRY


def get(name: str) -> Expert | None:
    return experts().get(name)


def experts_offering(op: str) -> list[str]:
    return sorted(e.name for e in experts().values() if op in e.ops)


__all__ = ["Env", "ExecError", "Expert", "Identities", "Identity", "OpSpec", "answering", "anyone", "experts",
           "experts_offering", "get", "register", "unregister"]
