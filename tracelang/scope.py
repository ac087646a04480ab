"""The scope of a block: what each name holds as far as a static check can tell, and the value
numbers that tell one computation from another.

One model for the checker and the decoder's guide. It is advanced one IR step at a time and reads
only the step's declarations (``Step.defines``, ``reads``, ``mutates``, ``creates`` in ir.py), never
its op's name, so a new op needs no change here:

- a step that defines a name from what it reads (compute, compare, the percent ops) *computes* it:
  the name is numbered by the computation (op, compute_op, the value numbers of its operands), so
  the same computation twice gets the same number (E402);
- a step that defines a name and reads nothing (init) writes an *input* in;
- a step that changes names in place (the entity ops) moves its ``amount``: each name it changes
  gets a fresh number; a name in ``creates`` that is missing is created at 0 first.

The checker runs a ``Scope`` over each block; the guide copies one per written step.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, NamedTuple

from .degenerate import integral_result
from .ir import InitStep, Num, Step, Var, names_in
from .numbers import Exact

if TYPE_CHECKING:
    from .experts.base import OpSpec

# The numbering key of one operand: a value number (int), a literal (``literal_key``), or
# ``("?", name)`` for a name not defined (then equal reads of it are still one computation).
Key = Hashable


class Def(NamedTuple):
    """A defined name. Immutable: the guide's snapshots share them."""

    kind: str  # input (init, or created by an entity op's amount) | computed (compute, percent, compare)
    line: int  # where it was defined (0 without spans)
    # The literal an input holds while the no-op rules may rely on it: None once an entity op changed
    # it, or when the question states it (then a 1 or a 0 is the problem's own quantity).
    const: Exact | None
    changed: bool = False  # an entity op took from it, moved into it or added to what it held
    integral: bool = False  # an integer for every value the block's inputs may hold (rounding it is E401)


def literal_key(value: Exact) -> tuple:
    """A literal operand as numbering keys hold it: ints hash fast, sympy's rationals do not."""
    return ("num", int(value.numerator), int(value.denominator))


def order(key: Key) -> tuple:
    """A total order on operand keys, to sort a commutative op's operands."""
    return (0, key) if isinstance(key, int) else (1, *key)  # type: ignore[misc]


def computation_key(op: str, compute_op: str | None, keys: list, commutative: bool) -> tuple:
    """The key of a computation: equal keys, equal values (E402). ``keys``: its operands' keys in
    field order, as ``Scope.name_key`` and ``literal_key`` give them; sorted here if commutative."""
    if commutative:
        keys = sorted(keys, key=order)
    return (op, *keys) if compute_op is None else (op, compute_op, *keys)


def operands(step: Step) -> list[Var | Num]:
    """What a step reads, in field order, lists flattened, literals included."""
    out: list = []
    values = step.__dict__
    for name in step.reads:
        value = values[name]
        if type(value) is list:
            out.extend(value)
        else:
            out.append(value)
    return out


class Scope:
    """Definitions and value numbers of one block, as its steps so far leave them."""

    __slots__ = ("defs", "numbers", "seen", "counter", "stated")

    def __init__(self, stated: Callable[[Exact], bool] | None = None):
        self.defs: dict[str, Def] = {}
        self.numbers: dict[str, int] = {}  # name -> the value number it holds now
        self.seen: dict[tuple, int] = {}  # computation key -> its value number
        self.counter = 0
        # Whether the question states a value: an input holding one is the problem's own quantity,
        # so it is no constant for the no-op rules.
        self.stated = stated

    def copy(self) -> Scope:
        new = Scope.__new__(Scope)
        new.defs, new.numbers, new.seen = dict(self.defs), dict(self.numbers), dict(self.seen)
        new.counter, new.stated = self.counter, self.stated
        return new

    def fresh(self) -> int:
        self.counter += 1
        return self.counter

    # ---------------------------------------------------------------- what a name holds

    def name_key(self, name: str) -> Key:
        number = self.numbers.get(name)
        return ("?", name) if number is None else number

    def arg_key(self, arg: Var | Num) -> Key:
        return literal_key(arg.value) if type(arg) is Num else self.name_key(arg.name)  # type: ignore[union-attr]

    def const(self, arg: Var | Num) -> Exact | None:
        if type(arg) is Num:
            return arg.value  # type: ignore[union-attr]
        d = self.defs.get(arg.name)  # type: ignore[union-attr]
        return d.const if d is not None else None

    def integral(self, arg: Var | Num) -> bool:
        if type(arg) is Num:
            return arg.value.denominator == 1  # type: ignore[union-attr]
        d = self.defs.get(arg.name)  # type: ignore[union-attr]
        return d is not None and d.integral

    def integral_of(self, step: Step) -> bool:
        """Whether the value a step defines is an integer by construction (degenerate.integral_result)."""
        if type(step) is InitStep:
            return step.value is not None and step.value.value.denominator == 1
        compute_op = step.__dict__.get("compute_op")
        if compute_op is None:
            return False  # percent ops: a fraction in general
        args = operands(step)
        exponent = args[1].value if len(args) == 2 and type(args[1]) is Num else None
        return integral_result(compute_op, [self.integral(a) for a in args], exponent)  # type: ignore[union-attr]

    # ---------------------------------------------------------------- one step

    def computation(self, step: Step, spec: OpSpec | None = None) -> tuple | None:
        """The key of the value a step computes (it defines a name from what it reads), else None.
        ``spec``: its compute_op's entry, which says whether the operands commute."""
        if not (step.defines and step.reads):
            return None
        keys = [self.arg_key(a) for a in operands(step)]
        return computation_key(step.op, step.__dict__.get("compute_op"), keys, spec is not None and spec.commutative)

    def advance(self, step: Step, key: tuple | None) -> None:
        """Define, number and change what ``step`` names. ``key``: ``computation(step)``. A name
        defined already keeps its definition (E202 is the checker's to report) but takes the new
        value number; a changed name that is missing and not in ``creates`` stays undefined (E201)."""
        defined = names_in(step, step.defines)
        changed = names_in(step, step.mutates) if step.mutates else []
        if key is not None:
            number = self.seen.get(key)
            if number is None:
                number = self.seen[key] = self.fresh()
            for var in defined:
                self.numbers[var.name] = number
        else:  # an input, or an entity after a change
            for var in defined + changed:
                self.numbers[var.name] = self.fresh()
        if defined:
            self._define(step, defined)
        if changed:
            self._change(step, changed)

    def _define(self, step: Step, defined: list[Var]) -> None:
        const = None
        if type(step) is InitStep and step.value is not None:
            const = step.value.value
            if self.stated is not None and self.stated(const):
                const = None
        kind = "computed" if step.reads else "input"
        integral = self.integral_of(step)
        for var in defined:
            if var.name not in self.defs:
                self.defs[var.name] = Def(kind, var.span.line if var.span else 0, const, integral=integral)

    def _change(self, step: Step, changed: list[Var]) -> None:
        amount: Var | Num = step.amount  # type: ignore[attr-defined]  # what an entity op moves
        # A step that reads none of the names it changes (add_entity) brings its amount in from
        # outside: a name it creates holds that amount as written, like an init's value.
        inflow = not any(f in step.reads for f in step.mutates)
        creates = step.creates
        moved = self.defs.get(amount.name) if type(amount) is Var else None  # as it was before this step
        for field in step.mutates:
            for var in names_in(step, (field,)):
                d = self.defs.get(var.name)
                whole = self.integral(amount)
                if d is None:
                    if field not in creates:
                        continue  # a missing source: E201
                    line = var.span.line if var.span else 0
                    if inflow:
                        self.defs[var.name] = Def("input", line, self.const(amount), integral=whole)
                        continue
                    if moved is not None and amount.name == getattr(getattr(step, "from_entity", None), "name", None):  # type: ignore[union-attr]
                        # all the giver holds, moved to a new name: the giver under another name,
                        # no computation (an input moved so is still one: querying it is E303)
                        self.defs[var.name] = moved._replace(line=line)
                        continue
                    d = Def("input", line, None, integral=whole)
                # a transfer's new receiver too: 0 plus what it got
                self.defs[var.name] = Def(d.kind, d.line, None, True, d.integral and whole)
