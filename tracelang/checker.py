"""Static checks on the IR: experts and ops, arity, scope, the query, degenerate computation.

Runs before execution and never evaluates anything but literals: a trace that passes is
well-formed for every input, and what is left to the runtime is arithmetic (division by zero,
amounts, sizes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from . import experts as registry
from .degenerate import PERCENT_IDENTITY, ROUNDING, repeated
from .diagnostics import (
    MISSING_QUERY,
    NO_OP_COMPUTE,
    QUERY_OF_INPUT,
    REPEATED_QUERY,
    REPEATED_SUBTRACE,
    STEP_AFTER_QUERY,
    UNDEFINED_VARIABLE,
    UNGROUNDED_VALUE,
    UNKNOWN_COMPUTE_OP,
    UNKNOWN_EXPERT,
    UNRESOLVED_SOURCE,
    UNUSED_VARIABLE,
    VARIABLE_OVERWRITTEN,
    WRONG_ARITY,
    WRONG_EXPERT,
    Diagnostic,
)
from .experts.base import OpSpec
from .ir import (
    AddEntityStep,
    Arg,
    Block,
    CompareStep,
    ComputeStep,
    InitStep,
    Node,
    Num,
    PercentStep,
    Program,
    QueryStep,
    Step,
    TransferStep,
    Var,
    names_in,
)
from .numbers import Exact, render
from .scope import Scope

# A grounding hook: given an init value, say whether the question supports it (W701). A hook that
# also has ``stated(value) -> bool`` (``grounding.grounder_for`` does) tells which values the
# question itself states: an input holding one of those is a quantity of the problem, so the no-op
# rules (E401) do not apply to it; a constant the hook merely allows (1, 100) is not exempt.
Grounder = Callable[[Exact], bool]


def _diag(code: str, message: str, node: Node | None, hint: str | None = None) -> Diagnostic:
    span = node.span if node is not None else None
    if span is None:
        return Diagnostic(code, message, 1, 1, None, hint)
    return Diagnostic(code, message, span.line, span.column, span.end_column, hint)


class _BlockChecker:
    def __init__(self, block: Block, index: int, recovered: set[str], grounder: Grounder | None):
        self.block, self.index, self.recovered, self.grounder = block, index, recovered, grounder
        self.out: list[Diagnostic] = []
        self.scope = Scope(getattr(grounder, "stated", None))
        self.defs = self.scope.defs  # read here, written only by the scope
        self.used: set[str] = set()
        self.expert = registry.get(block.expert)
        self.first: dict[tuple, Step] = {}  # computation key -> the step that first computed it

    def emit(self, *args, **kw) -> None:
        self.out.append(_diag(*args, **kw))

    def run(self) -> list[Diagnostic]:
        if self.expert is None:
            known = ", ".join(f"`{n}`" for n in sorted(registry.experts()))
            self.emit(UNKNOWN_EXPERT, f"unknown expert `{self.block.expert}`", self.block, f"experts: {known}")
        queries: list[QueryStep] = []
        repeats: list[tuple[Step, Step]] = []
        for step in self.block.trace:
            if queries:
                self.emit(STEP_AFTER_QUERY, f"`{step.op}` comes after the query", step,
                          "the query is the last step of its block")
            self.ops(step)
            self.reads(step)
            key = self.scope.computation(step, self.spec(step))
            if key is not None:
                earlier = self.first.setdefault(key, step)
                if earlier is not step:
                    repeats.append((step, earlier))
            self.no_op(step)
            self.defines(step)
            self.scope.advance(step, key)
            if isinstance(step, QueryStep):
                queries.append(step)
                self.query(step, len(queries))
        if not queries:
            last = self.block.trace[-1] if self.block.trace else self.block
            self.emit(MISSING_QUERY, "the block has no query", last, "end the block with `{op: query, var: NAME}`")
        self.report_repeats(repeats)
        self.unused()
        return self.out

    # ---------------------------------------------------------------- ops

    def ops(self, step: Step) -> None:
        if self.expert is not None and step.op not in self.expert.ops:
            offering = registry.experts_offering(step.op)
            self.emit(WRONG_EXPERT, f"expert `{self.block.expert}` does not offer `{step.op}`", step,
                      f"declare `expert: {offering[0]}`" if offering else None)
        if isinstance(step, InitStep) and step.value is not None and self.grounder is not None \
                and not self.grounder(step.value.value):
            self.emit(UNGROUNDED_VALUE, f"{render(step.value.value)} is not a quantity of the question", step.value,
                      "take init values from the question, or use an allowed constant")
        self.literals(step)
        compute_op = step.__dict__.get("compute_op")
        if compute_op is None:
            return
        table = registry.answering(self.expert, step.op).compute_ops(step.op)
        spec = table.get(compute_op)
        if spec is None:
            import difflib

            close = difflib.get_close_matches(compute_op, list(table), n=1)
            hint = f"did you mean `{close[0]}`?" if close else f"{step.op} takes {', '.join(sorted(table))}"
            self.emit(UNKNOWN_COMPUTE_OP, f"unknown compute_op `{compute_op}` for `{step.op}`", step, hint)
            return
        n = len(step.args)
        if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
            want = (f"exactly {spec.min_args}" if spec.min_args == spec.max_args
                    else f"at least {spec.min_args}" if spec.max_args is None
                    else f"{spec.min_args} to {spec.max_args}")
            self.emit(WRONG_ARITY, f"`{compute_op}` takes {want} args, got {n}", step)

    def literals(self, step: Step) -> None:
        """A literal in `args` or `amount` is a value written in as much as an init's (W701)."""
        if self.grounder is None:
            return
        fields = [*getattr(step, "args", ()), getattr(step, "amount", None)]
        for arg in fields:
            if isinstance(arg, Num) and not self.grounder(arg.value):
                self.emit(UNGROUNDED_VALUE, f"{render(arg.value)} is not a quantity of the question", arg,
                          "take literals from the question, or use an allowed constant")

    def spec(self, step: Step) -> OpSpec | None:
        compute_op = step.__dict__.get("compute_op")
        return None if compute_op is None else registry.answering(self.expert, step.op).spec(step.op, compute_op)

    # ---------------------------------------------------------------- scope

    def reads(self, step: Step) -> None:
        for var in names_in(step, step.reads):
            d = self.defs.get(var.name)
            if d is None:
                if var.name not in self.recovered:
                    hint = "define it with `init` before this step"
                    if var.name in ("prev", "result") or var.name.startswith("sub"):
                        hint = "to use an earlier block's answer, `init` a variable with `source: prev.result`"
                    self.emit(UNDEFINED_VARIABLE, f"`{var.name}` is not defined", var, hint)
                continue
            self.used.add(var.name)

    def defines(self, step: Step) -> None:
        if isinstance(step, InitStep) and step.source is not None:
            ref = step.source
            target = ref.target(self.index)
            if target is None or not 0 <= target < self.index:
                self.emit(UNRESOLVED_SOURCE, f"`{ref}` names no earlier block (this is block {self.index})", ref,
                          "`prev.result` and `subN.result` refer to blocks before this one")
        for var in names_in(step, step.defines):
            if var.name in self.defs:
                self.emit(VARIABLE_OVERWRITTEN, f"`{var.name}` is already defined on line {self.defs[var.name].line}",
                          var, "give every value its own name")

    # ---------------------------------------------------------------- the query

    def query(self, step: QueryStep, count: int) -> None:
        if count > 1:
            self.emit(REPEATED_QUERY, "a second query in the block", step, "a block has exactly one query")
            return
        d = self.defs.get(step.var.name)
        if d is not None and d.kind == "input" and not d.changed:
            self.emit(QUERY_OF_INPUT, f"the query returns `{step.var.name}`, which no step computed", step.var,
                      "the answer must come out of the steps, not be written in as an input")

    # ---------------------------------------------------------------- degenerate computation

    def const(self, arg: Arg) -> Exact | None:
        return self.scope.const(arg)

    def integral(self, arg: Arg) -> bool:
        return self.scope.integral(arg)

    def no_op(self, step: Step) -> None:
        if step.mutates:
            self.no_op_entity(step)
            return
        if isinstance(step, PercentStep):
            identity = PERCENT_IDENTITY[step.op]
            if self.const(step.rate) == identity:
                self.emit(NO_OP_COMPUTE, f"`{step.op}` by {render(identity)}% leaves `{step.base.name}` unchanged",
                          step, "drop the step and use its input directly")
            return
        if not isinstance(step, (ComputeStep, CompareStep)):
            return
        if self.no_op_shape(step):
            return
        expert = registry.answering(self.expert, step.op)
        arg = expert.noop(step.op, step.compute_op, step.args, self.const)
        if arg is not None:
            shown = arg.name if isinstance(arg, Var) else render(arg.value)
            identity = self.const(arg)
            self.emit(NO_OP_COMPUTE, f"`{step.compute_op}` with `{shown}` ({render(identity)}) leaves its input "  # type: ignore[arg-type]
                      "unchanged", arg, "drop the step and use its input directly")

    def no_op_shape(self, step: ComputeStep | CompareStep) -> bool:
        """An arg given twice where that makes the step degenerate, or rounding an integer."""
        cop = step.compute_op
        keys = [("v", a.name) if isinstance(a, Var) else ("n", a.value) for a in step.args]
        kind = repeated(cop, keys)
        if kind is not None:
            first = step.args[0] if kind == "constant" else step.args[keys.index(next(
                k for k in keys if keys.count(k) > 1))]
            shown = first.name if isinstance(first, Var) else render(first.value)
            if kind == "idempotent":
                self.emit(NO_OP_COMPUTE, f"`{cop}` of `{shown}` twice: the repeat changes nothing", step,
                          "give each value once")
            else:
                self.emit(NO_OP_COMPUTE, f"`{cop}` of `{shown}` with itself is a constant, whatever it holds", step,
                          "a constant is written in, not computed: combine the question's quantities")
            return True
        if cop in ROUNDING and isinstance(step, ComputeStep) and len(step.args) == 1 and self.integral(step.args[0]):
            arg = step.args[0]
            shown = arg.name if isinstance(arg, Var) else render(arg.value)
            self.emit(NO_OP_COMPUTE, f"`{cop}` of `{shown}`, an integer already, leaves it unchanged", arg,
                      "drop the step and use its input directly")
            return True
        return False

    def no_op_entity(self, step: Step) -> None:
        """An entity op that changes nothing would let a query return an input as if computed."""
        if isinstance(step, TransferStep) and step.from_entity.name == step.to_entity.name:
            self.emit(NO_OP_COMPUTE, f"`transfer` from `{step.from_entity.name}` to itself leaves it unchanged", step,
                      "name two different variables")
            return
        amount: Arg = step.amount  # type: ignore[attr-defined]
        if isinstance(step, AddEntityStep) and self.const(step.entity) == 0:
            self.emit(NO_OP_COMPUTE, f"`add_entity` onto `{step.entity.name}`, which holds 0, only copies the amount",
                      step, "create the variable with the amount instead, or combine quantities")
            return
        name = names_in(step, step.mutates)[0].name
        if self.const(amount) == 0 and (name in self.defs or not isinstance(step, AddEntityStep)):
            shown = f"`{amount.name}` (0)" if isinstance(amount, Var) else "0"
            self.emit(NO_OP_COMPUTE, f"`{step.op}` of {shown} leaves `{name}` unchanged", amount,
                      "drop the step and use the variable as it is")

    def report_repeats(self, repeats: list[tuple[Step, Step]]) -> None:
        # Group repeats that follow each other in the trace into one diagnostic per run.
        order = {id(s): i for i, s in enumerate(self.block.trace)}
        runs: list[list[tuple[Step, Step]]] = []
        for pair in repeats:
            if runs and order[id(pair[0])] == order[id(runs[-1][-1][0])] + 1:
                runs[-1].append(pair)
            else:
                runs.append([pair])
        for run in runs:
            first, firsts_earlier = run[0][0], run[0][1]
            line = lambda s: s.span.line if s.span else 0  # noqa: E731
            if len(run) == 1:
                msg = f"this step recomputes line {line(firsts_earlier)}"
            else:
                msg = (f"lines {line(first)}–{line(run[-1][0])} repeat the computation of "
                       f"lines {', '.join(str(line(e)) for _, e in run)}")
            self.emit(REPEATED_SUBTRACE, msg, first, "reuse the earlier result instead of computing it again")

    def unused(self) -> None:
        for step in self.block.trace:
            for var in names_in(step, step.defines + step.creates):
                d = self.defs.get(var.name)
                if d is not None and var.name not in self.used and not d.changed and var.name not in self.recovered \
                        and d.line == (var.span.line if var.span else 0):
                    self.emit(UNUSED_VARIABLE, f"`{var.name}` is never used", var, "remove the step or use its value")


def block_scope(program: Program, index: int = 0, grounder: Grounder | None = None) -> Scope:
    """The scope that checking block ``index`` leaves: its definitions and value numbers (the
    decoder's guide advances the same model over the steps it writes)."""
    checker = _BlockChecker(program.blocks[index], index, set(), grounder)
    checker.run()
    return checker.scope


def check(program: Program, recovered: Iterable[str] = (), grounder: Grounder | None = None) -> list[Diagnostic]:
    """Every static diagnostic of a program, in source order."""
    recovered = set(recovered)
    out: list[Diagnostic] = []
    for i, block in enumerate(program.blocks):
        out.extend(_BlockChecker(block, i, recovered, grounder).run())
    if len(out) > 1:
        out.sort(key=lambda d: (d.line, d.column))
    return out
