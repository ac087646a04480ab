"""Executes a checked program exactly, step by step, through the experts' handlers."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import experts as registry
from .diagnostics import Diagnostic
from .experts import Env, ExecError
from .ir import Node, Program, QueryStep, Step
from .limits import DEFAULT_LIMITS, Limits
from .numbers import ZERO, Exact


@dataclass
class Execution:
    steps: list[tuple[int, Step, Exact | None]] = field(default_factory=list)  # (block, step, value)
    results: list[Exact] = field(default_factory=list)  # each block's answer
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def answer(self) -> Exact | None:
        return self.results[-1] if self.results and not self.diagnostics else None

    @property
    def magnitude(self) -> Exact:
        """The largest absolute value any step read or computed: the scale of a double evaluation's
        rounding error (``numbers.same_answer``)."""
        return max((abs(v) for _, _, v in self.steps if v is not None), default=ZERO)


def execute(program: Program, limits: Limits = DEFAULT_LIMITS) -> Execution:
    """Run a program that passed the checker. Runtime failures become E5xx/E6xx diagnostics."""
    env = Env(limits)
    run = Execution()
    for b, block in enumerate(program.blocks):
        expert = registry.get(block.expert)
        if expert is None:
            raise ValueError(f"execute() needs a checked program: unknown expert {block.expert!r}")
        env.values = {}
        answer: Exact | None = None
        for step in block.trace:
            if step.op not in expert.ops:
                raise ValueError(f"execute() needs a checked program: {expert.name!r} does not offer {step.op!r}")
            try:
                # every result is held to the value limit here, whatever the expert (a plugin's
                # too); the variables a handler writes are held to it by Env.set
                value = expert.run(step, env)
                if value is not None:
                    env.bound(value, step)
            except ExecError as err:
                node = err.node if isinstance(err.node, Node) and err.node.span else step
                span = node.span
                run.diagnostics.append(Diagnostic(err.code, err.message, span.line if span else 1,
                                                  span.column if span else 1,
                                                  span.end_column if span else None, err.hint))
                return run
            run.steps.append((b, step, value))  # type: ignore[arg-type]
            if isinstance(step, QueryStep):
                answer = value  # type: ignore[assignment]
        env.results.append(answer)  # type: ignore[arg-type]
        run.results.append(answer)  # type: ignore[arg-type]
    return run
