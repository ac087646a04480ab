"""A template's trace, compiled once into an IR skeleton that each sample fills in.

The trace is tracelang canonical text with slots (``value: {price}``, ``entity: {name}``). It is
compiled by putting a sentinel number or name in each slot, parsing the text with the language's
own parser, and remembering which IR fields hold sentinels. A sample then builds its IR directly
(no text, no parsing): steps without slots are shared, the others get fresh nodes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..diagnostics import has_errors
from ..errors import TracelangError
from ..formatter import format_step
from ..ir import Block, InitStep, Num, Ref, Step, Var, make, step_fields
from ..numbers import render
from ..pipeline import parse
from .pools import PoolEntry

_SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\}")
_NUM_SENTINEL = 97_531_000_000
_NAME_SENTINEL = "zz_slot_"
PREV = make(Ref, block="prev", field="result")


class SkeletonError(TracelangError, ValueError):
    def __init__(self, message: str, line: int | None = None):
        super().__init__(message if line is None else f"trace line {line}: {message}")
        self.line = line


@dataclass(frozen=True, slots=True)
class TraceSlot:
    var: str
    attr: str | None
    kind: str  # "num" (a number) or "name" (a variable name)


@dataclass
class _Plan:
    step: Step  # the parsed step; shared as is when it holds no slot
    fields: dict[str, object] = field(default_factory=dict)
    slots: list[tuple[str, int | None, TraceSlot]] = field(default_factory=list)  # (field, list index, slot)
    init_of: str | None = None  # the variable whose slot is this init's whole value
    line: str = ""  # the step's canonical text, sentinels where the slots go
    tokens: list[tuple[str, TraceSlot]] = field(default_factory=list)  # (sentinel text, slot)


@dataclass
class Skeleton:
    expert: str
    plans: list[_Plan]
    slots: list[TraceSlot]

    @property
    def init_slots(self) -> dict[str, int]:
        """Slot variable -> how many init steps take it as their value (a feed needs exactly one)."""
        out: dict[str, int] = {}
        for plan in self.plans:
            if plan.init_of is not None:
                out[plan.init_of] = out.get(plan.init_of, 0) + 1
        return out

    def build(self, values: dict[str, object], fed: str | None = None) -> Block:
        """The block for one sample; ``fed`` names the variable taken from the previous block."""
        steps: list[Step] = []
        for plan in self.plans:
            if not plan.slots:
                steps.append(plan.step)
                continue
            if fed is not None and plan.init_of == fed:
                steps.append(make(InitStep, op="init", var=plan.step.var, value=None, source=PREV))
                continue
            fields = dict(plan.fields)
            for fname, index, slot in plan.slots:
                node = _node(slot, values)
                if index is None:
                    fields[fname] = node
                else:
                    items = fields[fname]
                    if items is plan.fields[fname]:
                        items = fields[fname] = list(items)  # type: ignore[arg-type]
                    items[index] = node  # type: ignore[index]
            steps.append(make(type(plan.step), **fields))
        return make(Block, expert=self.expert, trace=steps)

    def lines(self, values: dict[str, object], fed: str | None = None) -> list[str]:
        """The block's steps as canonical text, straight from the sample (what ``format_program``
        writes for ``build``'s IR, without walking it)."""
        out: list[str] = []
        for plan in self.plans:
            if not plan.tokens:
                out.append(plan.line)
            elif fed is not None and plan.init_of == fed:
                out.append(f"- {{op: init, var: {plan.step.var.name}, source: prev.result}}")
            else:
                line = plan.line
                for token, slot in plan.tokens:
                    value = slot_value(slot, values)
                    line = line.replace(token, value if slot.kind == "name" else render(value))  # type: ignore[arg-type]
                out.append(line)
        return out


def program_text(blocks: list[tuple[str, list[str]]], composed: bool | None = None) -> str:
    """Canonical text of (expert, step lines) blocks: one plain block, or a composed list (the
    default when there is more than one block)."""
    if not (composed if composed is not None else len(blocks) > 1):
        expert, lines = blocks[0]
        return f"expert: {expert}\ntrace:\n" + "".join(line + "\n" for line in lines)
    return "".join(f"- expert: {expert}\n  trace:\n" + "".join(f"  {line}\n" for line in lines)
                   for expert, lines in blocks)


def slot_value(slot: TraceSlot, values: dict[str, object]) -> object:
    value = values[slot.var]
    if isinstance(value, PoolEntry):
        if slot.attr is None:
            return value.attrs["id"] if slot.kind == "name" else value.text
        return value.attrs[slot.attr]
    return value


def _node(slot: TraceSlot, values: dict[str, object]) -> object:
    value = slot_value(slot, values)
    if slot.kind == "name":
        return make(Var, kind="var", name=value)
    return make(Num, kind="num", value=value)


def compile_trace(text: str, kind_of: Callable[[str, str | None], str]) -> Skeleton:
    """Compile trace text with slots. ``kind_of(var, attr)`` says whether a slot is a number or a name
    (and raises ``KeyError`` for an unknown variable)."""
    slots: list[TraceSlot] = []
    by_key: dict[tuple[str, str | None], int] = {}

    def sentinel(m: re.Match) -> str:
        key = (m.group(1), m.group(2))
        if key not in by_key:
            try:
                kind = kind_of(*key)
            except KeyError:
                line = text.count("\n", 0, m.start()) + 1
                raise SkeletonError(f"`{m.group(0)}` names no variable of the template", line) from None
            by_key[key] = len(slots)
            slots.append(TraceSlot(key[0], key[1], kind))
        k = by_key[key]
        return _sentinel(k, slots[k].kind)

    filled = _SLOT.sub(sentinel, text)
    report = parse(filled)
    errors = [d for d in report.diagnostics if d.severity == "error"]
    if report.program is None or has_errors(report.diagnostics) or not report.complete:
        d = errors[0] if errors else None
        raise SkeletonError(d.message if d else "the trace does not parse", d.line if d else None)
    if report.program.composed or len(report.program.blocks) != 1:
        raise SkeletonError("a template's trace is one block (`expert:` and `trace:`); chains compose them")
    block = report.program.blocks[0]
    if len(slots) >= 1000:
        raise SkeletonError("more than 999 slots in one trace")
    num_slots = {_NUM_SENTINEL + k: s for k, s in enumerate(slots) if s.kind == "num"}
    name_slots = {_sentinel(k, "name"): s for k, s in enumerate(slots) if s.kind == "name"}
    tokens = {s: _sentinel(k, s.kind) for k, s in enumerate(slots)}

    def which(node: object) -> TraceSlot | None:
        if isinstance(node, Num) and node.value.denominator == 1:
            return num_slots.get(int(node.value.numerator))
        if isinstance(node, Var):
            return name_slots.get(node.name)
        return None

    plans: list[_Plan] = []
    seen: set[TraceSlot] = set()
    for step in block.trace:
        plan = _Plan(step, {"op": step.op})
        for fname in step_fields(type(step)):
            value = getattr(step, fname)
            plan.fields[fname] = _strip(value)
            for index, item in enumerate(value) if isinstance(value, list) else [(None, value)]:
                slot = which(item)
                if slot is not None:
                    plan.slots.append((fname, index, slot))
                    seen.add(slot)
        if isinstance(step, InitStep) and plan.slots and plan.slots[0][0] == "value":
            plan.init_of = plan.slots[0][2].var if plan.slots[0][2].attr is None else None
        if not plan.slots:
            plan.step = _strip_step(step)
        plan.line = format_step(step)
        plan.tokens = [(tokens[slot], slot) for slot in dict.fromkeys(sl for _, _, sl in plan.slots)]
        plans.append(plan)
    missing = [s for s in slots if s not in seen]
    if missing:
        s = missing[0]
        raise SkeletonError(f"the slot `{{{s.var}{'.' + s.attr if s.attr else ''}}}` is in a position that "
                            f"takes {'a number' if s.kind == 'name' else 'a name'}")
    return Skeleton(block.expert, plans, slots)


def _sentinel(k: int, kind: str) -> str:
    """A stand-in for slot ``k`` in the parsed text; all of one kind have the same width, so none is
    a prefix of another and text replacement is exact."""
    return f"{_NAME_SENTINEL}{k:03d}" if kind == "name" else str(_NUM_SENTINEL + k)


def _strip(value: object) -> object:
    """Copy of a field value without source spans (a sample's trace has no text positions)."""
    if isinstance(value, list):
        return [_strip(v) for v in value]
    if isinstance(value, Var):
        return make(Var, kind="var", name=value.name)
    if isinstance(value, Num):
        return make(Num, kind="num", value=value.value)
    if isinstance(value, Ref):
        return make(Ref, block=value.block, field=value.field)
    return value


def _strip_step(step: Step) -> Step:
    fields = {"op": step.op} | {f: _strip(getattr(step, f)) for f in step_fields(type(step))}
    return make(type(step), **fields)
