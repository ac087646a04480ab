"""GSM-8K calculator annotations -> canonical traces.

A solution's annotations (``<<48/2=24>>``) describe its computation exactly. Each one is parsed
(``calc.py``), nested expressions are decomposed into one compute step per operation, and every
operand is resolved, in this order, to
  1. an earlier result with that value that nothing used yet (how solutions chain their lines),
  2. a quantity of the question (an ``init`` named from the words around it), a fresh occurrence
     first so that "5 apples and 5 pears" stay two inputs,
  3. an earlier result already used, then a question quantity already used,
  4. a value derived from a quantity (0.25 for "25%", 4 for "a quarter") or a licensed constant
     (60 minutes per hour, ...; see tracelang/grounding.py),
  5. otherwise the operand is ungrounded and the problem fails with ``ungrounded_value``.
Percent patterns (``x*25/100``, ``x*0.25`` with "25%" in the question) become ``percent_of``.
Steps that recompute an earlier step are reused, identity operands (``*1``, ``+0``) dropped, and
steps that do not lead to the answer removed; the answer's step is ``result``, the others are
named from the solution line that computes them (``clips_in_may``, ``naming.step_name``), else
``step1..n``. The trace is then checked (with grounding) and executed through the pipeline, and
kept only if it has no errors, no warnings and the gold answer.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..degenerate import IDEMPOTENT, SELF_CONSTANT
from ..diagnostics import UNGROUNDED_VALUE
from ..errors import TracelangError
from ..formatter import format_program
from ..grounding import Quantity, constants_for, extract, grounder_for
from ..ir import Block, ComputeStep, InitStep, Num, PercentStep, Program, QueryStep, Var, make
from ..numbers import ONE, ZERO, Exact, ceil, floor, render
from ..pipeline import analyze
from ..record import make_record
from .calc import Annotation, Bin, CalcError, Expr, Lit, Neg, Pct, annotations, evaluate
from .contamination import Guard, Match
from .gsm8k import Problem
from .naming import Namer, base_name, context_words, derived_name, solution_name, step_name
from .splits import split_of

# Failure categories, each explained in spec/quantities.md ("Importer failures").
FAILURES = (
    "missing_gold",  # no number on the "####" line
    "no_annotations",  # the solution computes nothing in <<...>>
    "unparsable_annotation",  # an annotation outside the calculator grammar
    "invalid_annotation",  # division by zero or a huge power inside an annotation
    "ungrounded_value",  # an operand neither in the question, a constant, nor an earlier result
    "algebra",  # the solution solves an equation for an unknown (x = ...), which annotations skip
    "answer_not_computed",  # no step's value is the gold answer
    "answer_is_input",  # the gold answer is a question quantity that no step computes
    "trace_rejected",  # the checker or runtime rejected the trace, or it disagrees with gold
    "contaminated",  # converted, but the question overlaps the reference set (GSM-8K test)
)

_IDENTITY = {"add": (ZERO, "any"), "sub": (ZERO, "rest"), "mul": (ONE, "any"), "div": (ONE, "rest"),
             "pow": (ONE, "rest")}
_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "^": "pow"}
_COMMUTATIVE = {"add", "mul"}


class ImportFailure(TracelangError):
    def __init__(self, category: str, detail: str = ""):
        super().__init__(f"{category}: {detail}" if detail else category)
        self.category, self.detail = category, detail


@dataclass
class _Input:
    name: str
    value: Exact
    order: tuple[int, int]  # (0, position in question) for quantities, (1, n) for constants


@dataclass
class _Step:
    op: str  # a compute_op, or percent_of
    args: list[str]
    var: str
    value: Exact


@dataclass
class _Result:
    var: str
    value: Exact
    stated: Exact | None
    top: bool  # a whole annotation's value (not a sub-expression's)


@dataclass
class Conversion:
    problem_id: str
    record: dict[str, Any] | None = None
    failure: str | None = None
    detail: str = ""
    warnings: list[str] = field(default_factory=list)
    match: Match | None = None  # the overlap that refused a contaminated record


class _Builder:
    def __init__(self, question: str, strict: bool = False):
        self.question, self.strict = question, strict
        self.line_text = ""  # the solution line being read, to name ungrounded values
        self.solution = ""
        self.ungrounded: set[str] = set()
        self.quantities: list[Quantity] = extract(question)
        self.constants = constants_for(question)
        self.namer = Namer()
        self.inputs: dict[str, _Input] = {}
        self.occurrence_var: dict[int, str] = {}  # quantity index -> its input's name
        self.names: dict[int, str] = {}  # quantity index -> the name its words suggest
        self.derived_var: dict[Exact, str] = {}
        self.steps: list[_Step] = []
        self.values: dict[str, Exact] = {}
        self.keys: dict[str, object] = {}  # value numbering, as the checker does it
        self.memo: dict[object, str] = {}
        self.results: list[_Result] = []
        self.used: set[str] = set()
        self.labels: dict[str, str] = {}  # step variable -> the name its solution line gives it
        self.counter = 0

    # ---------------------------------------------------------------- operands

    def _input(self, name: str, value: Exact, order: tuple[int, int]) -> str:
        name = self.namer.fresh(name)
        self.inputs[name] = _Input(name, value, order)
        self.values[name] = value
        self.keys[name] = ("input", name)
        return name

    def _name(self, index: int) -> str:
        if index not in self.names:
            self.names[index] = base_name(self.question, self.quantities[index])
        return self.names[index]

    def _words(self, index: int) -> set[str]:
        return {w.rstrip("s") for w in self._name(index).split("_")}

    def _quantity_var(self, index: int) -> str:
        if index not in self.occurrence_var:
            q = self.quantities[index]
            self.occurrence_var[index] = self._input(self._name(index), q.value, (0, q.start))
        return self.occurrence_var[index]

    def _derived_var(self, value: Exact) -> str | None:
        if value in self.derived_var:
            return self.derived_var[value]
        for q in self.quantities:
            if value in q.also:
                name = derived_name(self.question, q, value)
                self.derived_var[value] = self._input(name, value, (0, q.start))
                return self.derived_var[value]
        for n, const in enumerate(self.constants):
            if const.value == value:
                self.derived_var[value] = self._input(const.name, value, (1, n))
                return self.derived_var[value]
        return None

    def operand(self, value: Exact, taken: set[str], distinct: bool = False) -> str:
        """The variable an annotation operand refers to (see the module docstring for the order);
        ``taken`` holds the operation's other operands, so that ``5+5`` can add two inputs.
        ``distinct``: never one of ``taken`` (``2/2`` of one input is a constant, E401)."""
        matches = [r for r in reversed(self.results) if r.value == value or r.stated == value]
        matches.sort(key=lambda r: not r.top)  # stable: whole annotations first, most recent first
        for r in matches:
            if r.var not in self.used and r.var not in taken:
                return r.var
        occurrences = [i for i, q in enumerate(self.quantities) if q.value == value]
        if len(occurrences) > 1:  # "5 runners x 8 hours": the words after the number pick the 8
            hints = context_words(self.line_text, value)
            best = max(occurrences, key=lambda i: len(hints & self._words(i)))
            if hints & self._words(best) and self.occurrence_var.get(best) not in taken:
                return self._quantity_var(best)
        for i in occurrences:
            if i not in self.occurrence_var:
                return self._quantity_var(i)
        candidates = [r.var for r in matches] + [self.occurrence_var[i] for i in occurrences]
        for var in candidates:
            if var not in taken:
                return var
        if candidates and not distinct:  # x*x: the same value twice, and only one source of it
            return candidates[0]
        derived = self._derived_var(value)
        if derived is not None:
            return derived
        if self.strict:
            raise ImportFailure("ungrounded_value", render(value))
        return self._ungrounded(value)

    def _ungrounded(self, value: Exact) -> str:
        """An input for a value the solution knows but the question does not state (the legs of a
        dog, a count it worked out in prose): named from the solution's words, checked as W701."""
        if value not in self.derived_var:
            name = solution_name(self.line_text, value) or solution_name(self.solution, value) or \
                "number_" + render(value).replace(".", "_").replace(
                "/", "_over_").replace("-", "minus_")
            self.derived_var[value] = self._input(name, value, (2, len(self.inputs)))
        self.ungrounded.add(self.derived_var[value])
        return self.derived_var[value]

    # ---------------------------------------------------------------- steps

    def step(self, op: str, args: list[str]) -> str:
        ident = _IDENTITY.get(op)
        if ident is not None:  # drop identity operands that are inputs: the checker calls them no-ops
            value, where = ident
            keep = [a for i, a in enumerate(args)
                    if not (a in self.inputs and self.values[a] == value and (where == "any" or i > 0))]
            if len(keep) <= 1:  # x*1 is x; 1*1 is the first 1
                return keep[0] if keep else args[0]
            args = keep
        arg_keys = [self.keys[a] for a in args]
        if op in _COMMUTATIVE:
            arg_keys = sorted(arg_keys, key=repr)
        key = (op, tuple(arg_keys)) if op.startswith("percent") else ("compute", op, tuple(arg_keys))
        if key in self.memo:
            return self.memo[key]
        vals = [self.values[a] for a in args]
        if op == "add":
            value = sum(vals, ZERO)
        elif op == "sub":
            value = vals[0] - sum(vals[1:], ZERO)
        elif op == "mul":
            value = ONE
            for v in vals:
                value *= v
        elif op == "div":
            if vals[1] == 0:
                raise ImportFailure("invalid_annotation", "division by zero")
            value = vals[0] / vals[1]
        elif op == "pow":
            value = vals[0] ** int(vals[1].numerator)
        elif op == "floor":
            value = floor(vals[0])
        elif op == "ceil":
            value = ceil(vals[0])
        elif op == "percent_of":
            value = vals[0] * vals[1] / 100
        elif op == "percent_off":
            value = vals[0] * (100 - vals[1]) / 100
        elif op == "percent_increase":
            value = vals[0] * (100 + vals[1]) / 100
        else:  # pragma: no cover - ops come from _OPS
            raise AssertionError(op)
        self.counter += 1
        var = f"_t{self.counter}"
        self.steps.append(_Step(op, list(args), var, value))
        self.values[var], self.keys[var], self.memo[key] = value, ("value", key), var
        for a in args:
            self.used.add(a)
        return var

    def expression(self, node: Expr) -> str:
        """Emit the steps of an annotation expression; the variable holding its value."""
        percent = self._percent(node)
        if percent is not None:
            op, base, rate = percent
            base_var = self.expression(base)
            var = self.step(op, [base_var, self._quantity_var(rate)])
            self.results.append(_Result(var, self.values[var], None, False))
            return var
        if isinstance(node, Lit):
            return self.operand(node.value, set())
        if isinstance(node, (Neg, Pct)):
            return self.operand(evaluate(node), set())
        folded = self._fold(node)
        if folded is not None:
            return folded
        if node.op == "//":  # floor division: a div, then a floor
            return self.step("floor", [self.expression(Bin("/", node.left, node.right))])
        op = _OPS[node.op]
        parts = _flatten(node) if op in ("add", "mul", "sub") else [node.left, node.right]
        args: list[str] = []
        distinct = op in IDEMPOTENT or op in SELF_CONSTANT  # a repeated arg makes the step degenerate
        for part in parts:
            if isinstance(part, (Lit, Neg, Pct)):
                args.append(self.operand(evaluate(part), set(args), distinct))
            else:
                args.append(self.expression(part))
        if op == "pow" and self.values[args[1]].denominator != 1:
            raise ImportFailure("invalid_annotation", "a fractional power")
        var = self.step(op, args)
        self.results.append(_Result(var, self.values[var], None, False))
        return var

    def _fold(self, node: Bin) -> str | None:
        """``3/4`` written for the question's "3/4" or "three quarters": one input, not a division."""
        if node.op != "/" or not (isinstance(node.left, Lit) and isinstance(node.right, Lit)):
            return None
        if node.right.value == 0:
            return None
        value = node.left.value / node.right.value
        for i, q in enumerate(self.quantities):
            if q.kind == "fraction" and q.value == value:
                return self._quantity_var(i)
        return None

    def _percent(self, node: Expr) -> tuple[str, Expr, int] | None:
        """A percent pattern over a percent P the question states: (op, base, quantity index).
        ``x*P/100``, ``P/100*x``, ``x*P*.01``, ``x*0.P``, ``x*P%`` -> percent_of; ``x*(1-P/100)``,
        ``x*(100-P)/100``, ``x*0.75`` for 25% -> percent_off; the same with ``+`` (``x*1.5`` for 50%)
        -> percent_increase. The base is the product of the other factors."""
        if not isinstance(node, Bin):
            return None
        if node.op == "/" and _is(node.right, 100) and isinstance(node.left, Bin) and node.left.op == "*":
            factors = _flatten(node.left)
            for k, factor in enumerate(factors):
                found = self._rate(factor, hundred=True)
                if found is not None:
                    return found[0], _product(factors[:k] + factors[k + 1:]), found[1]
        if node.op == "*":
            factors = _flatten(node)
            hundredth = [k for k, f in enumerate(factors) if _is(f, Exact(1, 100))]
            for k, factor in enumerate(factors):
                found = self._rate(factor, hundred=False)
                rest = factors[:k] + factors[k + 1:]
                if found is None and hundredth and k != hundredth[0]:  # x*P*.01
                    found = self._rate(factor, hundred=True)
                    rest = [f for j, f in enumerate(factors) if j not in (k, hundredth[0])]
                if found is not None and rest:
                    return found[0], _product(rest), found[1]
        return None

    def _rate(self, node: Expr, hundred: bool) -> tuple[str, int] | None:
        """The percent op and quantity a rate expression stands for: with ``hundred`` the rate is in
        percent (``P``, ``100-P``), else a fraction (``P/100``, ``0.P``, ``P%``, ``1-P/100``, ``0.75``)."""
        scale = 1 if hundred else 100
        if isinstance(node, Lit):
            percent = node.value * scale
            for op, sign in (("percent_of", 0), ("percent_off", -1), ("percent_increase", 1)):
                for i, q in enumerate(self.quantities):
                    if q.kind == "percent" and percent == (q.value if sign == 0 else 100 + sign * q.value):
                        return op, i
            return None
        if not hundred and isinstance(node, Pct):
            found = self._rate(node.arg, hundred=True)
            return found if found is not None and found[0] == "percent_of" else None
        if not isinstance(node, Bin):
            return None
        if not hundred and node.op == "/" and _is(node.right, 100):
            found = self._rate(node.left, hundred=True)
            return found if found is not None and found[0] == "percent_of" else None
        if node.op in "+-" and _is(node.left, 100 if hundred else 1):
            found = self._rate(node.right, hundred)
            if found is not None and found[0] == "percent_of":
                return ("percent_off" if node.op == "-" else "percent_increase"), found[1]
        return None

    def annotation(self, ann: Annotation, line_text: str = "") -> None:
        if isinstance(ann.expr, Lit):  # <<37=37>> computes nothing
            return
        self.line_text = line_text
        var = self.expression(ann.expr)
        self.results.append(_Result(var, self.values[var], ann.stated, True))
        if var not in self.inputs and var not in self.labels:
            self.labels[var] = step_name(line_text, self.values[var])

    # ---------------------------------------------------------------- the program

    def program(self, answer_var: str) -> tuple[Program, str]:
        """The trace that computes ``answer_var``: only the steps and inputs it needs, renamed."""
        needed: set[str] = {answer_var}
        kept: list[_Step] = []
        for st in reversed(self.steps):
            if st.var in needed:
                kept.append(st)
                needed.update(st.args)
        kept.reverse()
        rename: dict[str, str] = {}
        unnamed = 0
        for st in kept:
            label = self.labels.get(st.var)
            if st.var == answer_var:
                rename[st.var] = "result"
            elif label and label not in self.namer.taken:  # "pet_beds_3" would read as another input
                rename[st.var] = self.namer.fresh(label)
            else:
                unnamed += 1
                rename[st.var] = f"step{unnamed}"
        inputs = sorted((self.inputs[n] for n in needed if n in self.inputs), key=lambda i: i.order)
        trace: list = [make(InitStep, op="init", var=make(Var, name=i.name), value=make(Num, value=i.value),
                            source=None) for i in inputs]
        for st in kept:
            args = [make(Var, name=rename.get(a, a)) for a in st.args]
            out = make(Var, name=rename[st.var])
            if st.op.startswith("percent_"):
                trace.append(make(PercentStep, op=st.op, base=args[0], rate=args[1], var=out))
            else:
                trace.append(make(ComputeStep, op="compute", compute_op=st.op, args=args, var=out))
        trace.append(make(QueryStep, op="query", var=make(Var, name="result")))
        expert = choose_expert(kept, inputs)
        block = make(Block, expert=expert, trace=trace)
        return make(Program, composed=False, blocks=[block]), expert


def _is(node: Expr, value: int | Exact) -> bool:
    return isinstance(node, Lit) and node.value == value


def _product(factors: list[Expr]) -> Expr:
    node = factors[0]
    for f in factors[1:]:
        node = Bin("*", node, f)
    return node


def _flatten(node: Bin) -> list[Expr]:
    """``a+b+c`` -> [a, b, c]; ``a-b-c`` -> [a, b, c] (sub takes the first minus the rest)."""
    parts: list[Expr] = []
    op = node.op
    while isinstance(node, Bin) and node.op == op:
        parts.append(node.right)
        node = node.left
        if op == "-":  # only the left spine of a subtraction chain is one sub
            continue
    parts.append(node)
    parts.reverse()
    if op in "+*":  # commutative: flatten right operands of the same op too
        flat: list[Expr] = []
        for p in parts:
            flat.extend(_flatten(p) if isinstance(p, Bin) and p.op == op else [p])
        return flat
    return parts


def choose_expert(steps: list[_Step], inputs: list[_Input]) -> str:
    """``percentage`` when a percent op is used; ``rate_equation`` when a per-unit rate input is
    multiplied or divided; else ``arithmetic``."""
    if any(s.op.startswith("percent_") for s in steps):
        return "percentage"
    rates = {i.name for i in inputs if "_per_" in i.name}
    if any(s.op in ("mul", "div") and rates.intersection(s.args) for s in steps):
        return "rate_equation"
    return "arithmetic"


_ALGEBRA = re.compile(r"(?<![A-Za-z0-9.])[0-9]+[a-zA-Z](?![A-Za-z])|\b[Ll]et [a-zA-Z] |\b[a-zA-Z] ?= ?<<")


def _answer_var(builder: _Builder, problem: Problem) -> str:
    """The step whose value is the gold answer: a whole annotation's, latest first, else a
    sub-expression's; else the last result rounded down or up, or times 100 for a percent."""
    gold = problem.gold
    tops = [r for r in reversed(builder.results) if r.top and r.value == gold]
    others = [r for r in reversed(builder.results) if not r.top and r.value == gold]
    for r in tops + others:
        if r.var not in builder.inputs:
            return r.var
    last = next((r for r in reversed(builder.results) if r.top), None)
    if last is not None and last.var not in builder.inputs:
        value = last.value
        if floor(value) == gold:
            return builder.step("floor", [last.var])
        if ceil(value) == gold:
            return builder.step("ceil", [last.var])
        if value * 100 == gold and re.search(r"percent|%", problem.question, re.I):
            return builder.step("mul", [last.var, builder.operand(Exact(100), {last.var})])
    if _ALGEBRA.search(problem.solution):
        raise ImportFailure("algebra", render(gold))
    if tops or any(gold in q.values for q in builder.quantities):
        raise ImportFailure("answer_is_input", render(gold))
    raise ImportFailure("answer_not_computed", render(gold))


def convert(problem: Problem, split_name: str | None = None, strict: bool = False) -> Conversion:
    """Convert one problem; a ``Conversion`` with the record, or the failure category and detail.

    An operand that is neither a question quantity, a derived value, a licensed constant nor an
    earlier result becomes an input that the checker warns about (W701), counted in the record's
    ``meta.warnings`` and in the report; with ``strict`` the problem fails (``ungrounded_value``)."""
    out = Conversion(problem.id)
    try:
        if problem.gold is None:
            raise ImportFailure("missing_gold")
        try:
            anns = annotations(problem.solution, prose=True)
        except CalcError as err:
            raise ImportFailure("unparsable_annotation", str(err)) from None
        if not anns:
            raise ImportFailure("no_annotations")
        builder = _Builder(problem.question, strict)
        builder.solution = problem.solution.split("####")[0]
        lines = problem.solution.split("\n")
        try:
            for ann in anns:
                builder.annotation(ann, lines[ann.line - 1] if ann.line <= len(lines) else "")
        except CalcError as err:
            raise ImportFailure("invalid_annotation", str(err)) from None
        program, expert = builder.program(_answer_var(builder, problem))
        text = format_program(program)
        report = analyze(text, expected=problem.gold, grounder=grounder_for(problem.question))
        codes = [d.code for d in report.diagnostics]
        if not report.ok or not report.correct or set(codes) - {UNGROUNDED_VALUE}:
            raise ImportFailure("trace_rejected", ",".join(codes) or f"answer {report.answer}")
        out.warnings = codes
    except ImportFailure as failure:
        out.failure, out.detail = failure.category, failure.detail
        return out
    steps = sum(1 for line in text.splitlines() if line.startswith("- {op: ") and "op: init" not in line) - 1
    split = split_name or split_of(problem.id)
    meta: dict[str, Any] = {"split": problem.split if split == "other" else split, "index": problem.index,
                            "steps": steps}
    if out.warnings:
        meta["warnings"] = dict(Counter(out.warnings))
    out.record = make_record(problem.id, problem.question, text, problem.gold, expert, problem.source, meta)
    return out


@dataclass
class ImportReport:
    total: int = 0
    converted: int = 0
    failures: Counter = field(default_factory=Counter)
    warnings: Counter = field(default_factory=Counter)  # diagnostics of kept traces, by code
    with_warnings: int = 0  # kept traces that have any
    experts: Counter = field(default_factory=Counter)
    failed_ids: dict[str, list[str]] = field(default_factory=dict)
    contaminated: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def coverage(self) -> float:
        return self.converted / self.total if self.total else 0.0

    def add(self, conversion: Conversion) -> None:
        self.total += 1
        if conversion.record is not None:
            self.converted += 1
            self.experts[conversion.record["expert"]] += 1
            self.warnings.update(conversion.warnings)
            self.with_warnings += bool(conversion.warnings)
        else:
            self.failures[conversion.failure] += 1
            self.failed_ids.setdefault(conversion.failure, []).append(conversion.problem_id)
            if conversion.failure == "contaminated":
                self.contaminated.append({"id": conversion.problem_id, **conversion.match.to_json()})

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "converted": self.converted,
            "coverage": round(self.coverage, 6),
            "failures": dict(sorted(self.failures.items(), key=lambda kv: (-kv[1], kv[0]))),
            "clean": self.converted - self.with_warnings,
            "clean_coverage": round((self.converted - self.with_warnings) / self.total, 6) if self.total else 0.0,
            "warnings": dict(sorted(self.warnings.items())),
            "experts": dict(sorted(self.experts.items())),
            "failed_ids": {k: v for k, v in sorted(self.failed_ids.items())},
            "contaminated": self.contaminated,
            "seconds": round(self.seconds, 3),
        }


class Imported(NamedTuple):
    records: list[dict[str, Any]]
    report: ImportReport


def import_problems(problems: Iterable[Problem], *, strict: bool = False, guard: Guard | None = None,
                    allow_contaminated: bool = False) -> Imported:
    """Convert problems to records; a converted record whose question overlaps ``guard``'s reference
    set is refused (failure ``contaminated``) unless ``allow_contaminated``."""
    start = time.perf_counter()
    records: list[dict[str, Any]] = []
    report = ImportReport()
    for problem in problems:
        conversion = convert(problem, strict=strict)
        if conversion.record is not None and guard is not None:
            match = guard.check(problem.question)
            if match is not None and allow_contaminated:
                conversion.record["meta"]["contaminated"] = match.to_json()
            elif match is not None:
                conversion.record, conversion.failure, conversion.match = None, "contaminated", match
                conversion.detail = match.reference_id
        report.add(conversion)
        if conversion.record is not None:
            records.append(conversion.record)
    report.seconds = time.perf_counter() - start
    return Imported(records, report)
