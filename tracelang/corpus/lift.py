"""New instances of GSM-8K *train* problems: lift the question quantities that feed the trace into
variables, resample them, re-execute the trace, and write the new numbers into the question.

For each imported train record (question + canonical trace) a ``LiftPlan`` is made once:

* the question's quantities come from ``tracelang.grounding.extract`` (with spans);
* quantities are grouped by value ("value classes"); a class is lifted when every occurrence is
  plainly written (``48``, ``1,200``, ``$3.50``, ``25%``, ``three``), some ``init`` of the trace
  takes that value, and nothing else could mean the same number (a derived value such as 0.25
  for "25%", a constant the question licenses such as 60 minutes, a literal in the trace, 0 or 1);
* a problem whose question states a plain number that feeds no init is left out: that number may
  depend on the lifted ones ("30 students, 12 boys and 18 girls"), and changing only some would
  make the text contradict itself.

A sample draws a new value per class in the original's form (same decimal places, round numbers
stay round, percents stay percents, words stay words), rebuilds the IR with the new init values,
and keeps it only if the runtime agrees on the structure the original had: every step's sign,
integrality where the original was whole, the outcome of comparisons and which argument min/max
picked, and an answer as whole as the original's. Then the verify gate runs as for templates.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from random import Random

from .. import ir
from ..checker import check
from ..errors import UsageError
from ..formatter import format_step
from ..ir import CompareStep, ComputeStep, InitStep, Num, Program, Var
from ..numbers import Exact, ceil, floor, render
from ..pipeline import parse
from ..record import content_id, make_record
from ..runtime import Execution, execute
from .numwords import to_words
from .skeleton import program_text
from .verify import nice, verify

MAX_TRIES = 40
_PLAIN = {
    "number": re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?"),
    "money": re.compile(r"\$(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?"),
    "percent": re.compile(r"(\d+)(\.\d+)?(%| percent)"),
}
_WORD_NUMBERS = {to_words(n): n for n in range(2, 21)}


@dataclass(frozen=True)
class _Occurrence:
    start: int
    end: int
    kind: str  # number | money | percent | word
    text: str


@dataclass
class _Class:
    value: Exact
    occurrences: list[_Occurrence]
    inits: list[tuple[int, int]]  # (block, step index) of the inits taking this value
    places: int  # decimal places written
    grain: Exact  # new values are multiples of this
    lo: Exact
    hi: Exact


@dataclass
class LiftPlan:
    origin: str  # the train record's id
    question: str
    program: Program
    classes: list[_Class]
    frozen: set[Exact]  # values of the question that stay as they are
    signs: list[int]
    whole: list[bool]
    picks: list[object]  # per step: comparison outcome / min-max argument index / None
    answer_places: int
    lines: list[list[str]] = field(default_factory=list)  # canonical step lines per block
    last: list[Exact] = field(default_factory=list)  # the values of the latest sample

    def sample(self, rng: Random) -> tuple[str, Program, Execution] | None:
        values: list[Exact] = []
        taken = set(self.frozen)
        for c in self.classes:
            span = int((c.hi - c.lo) / c.grain)
            for _ in range(8):
                v = c.lo + c.grain * rng.randrange(span + 1)
                if v not in taken and v not in (0, 1):
                    break
            else:
                return None
            taken.add(v)
            values.append(v)
        if all(v == c.value for v, c in zip(values, self.classes, strict=True)):
            return None
        program = self._program(values)
        run = execute(program)
        if run.diagnostics or run.answer is None:
            return None
        if not self._same_structure(program, run):
            return None
        if not nice(run.answer, self.answer_places):
            return None
        self.last = values
        return self._question(values), program, run

    def samples(self, rng: Random, tries: int = 10) -> bool:
        """Whether new values that keep the original's structure turn up at all (tried once, when
        the plan is made, so that generation does not keep drawing for a plan that never yields)."""
        return any(self.sample(rng) is not None for _ in range(tries))

    def grounded(self, rng: Random, tries: int = 10) -> bool:
        """Whether a sample's question states every init value (the checker's W701 with the data
        layer's quantity reader). True by construction: new numbers are written in the forms of
        the ones they replace, and whatever is not lifted stays as the importer grounded it. Tests
        and ``lint`` confirm it; generation does not pay for it per record."""
        from ..grounding import grounder_for

        for _ in range(tries):
            drawn = self.sample(rng)
            if drawn is not None:
                question, program, _ = drawn
                return not check(program, grounder=grounder_for(question))
        return False

    def text(self, values: list[Exact]) -> str:
        """Canonical trace text for new init values: the original's lines, the lifted inits rewritten."""
        blocks = [list(lines) for lines in self.lines]
        for c, v in zip(self.classes, values, strict=True):
            for b, s in c.inits:
                name = self.program.blocks[b].trace[s].var.name  # type: ignore[union-attr]
                blocks[b][s] = f"- {{op: init, var: {name}, value: {render(v)}}}"
        return program_text([(blk.expert, lines) for blk, lines in zip(self.program.blocks, blocks, strict=True)],
                            self.program.composed)

    def _program(self, values: list[Exact]) -> Program:
        new_value: dict[tuple[int, int], Exact] = {}
        for c, v in zip(self.classes, values, strict=True):
            for at in c.inits:
                new_value[at] = v
        blocks = []
        for b, block in enumerate(self.program.blocks):
            steps = []
            for s, step in enumerate(block.trace):
                v = new_value.get((b, s))
                if v is not None:
                    value = ir.make(Num, kind="num", value=v)
                    step = ir.make(InitStep, op="init", var=step.var, value=value, source=None)
                steps.append(step)
            blocks.append(ir.make(ir.Block, expert=block.expert, trace=steps))
        return ir.make(Program, composed=self.program.composed, blocks=blocks)

    def _same_structure(self, program: Program, run) -> bool:
        steps = run.steps
        if len(steps) != len(self.signs):
            return False
        picks = _picks(run)
        for k, (_, _, value) in enumerate(steps):
            if value is None:
                continue
            if _sign(value) != self.signs[k] or (self.whole[k] and value.denominator != 1):
                return False
            if picks[k] != self.picks[k]:
                return False
        return True

    def _question(self, values: list[Exact]) -> str:
        edits: list[tuple[int, int, str]] = []
        for c, v in zip(self.classes, values, strict=True):
            for occ in c.occurrences:
                edits.append((occ.start, occ.end, _write(v, occ, c.places)))
        text = self.question
        for start, end, new in sorted(edits, reverse=True):
            text = text[:start] + new + text[end:]
        return text


def _sign(v: Exact) -> int:
    return (v > 0) - (v < 0)


def _picks(run) -> list[object]:
    """What each step decided: a comparison's outcome, the argument min/max picked, else None."""
    values: dict[tuple[int, str], Exact] = {}
    out: list[object] = []
    for b, step, value in run.steps:
        pick: object = None
        op = getattr(step, "compute_op", None)
        if isinstance(step, (ComputeStep, CompareStep)) and op in ("min", "max"):
            args = [a.value if isinstance(a, Num) else values.get((b, a.name)) for a in step.args]
            pick = next((i for i, a in enumerate(args) if a == value), None)
        elif isinstance(step, CompareStep) and op in ("gt", "lt", "eq"):
            pick = value
        out.append(pick)
        var = getattr(step, "var", None)
        if isinstance(var, Var) and value is not None:
            values[(b, var.name)] = value
    return out


def _write(v: Exact, occ: _Occurrence, places: int) -> str:
    if occ.kind == "word":
        word = to_words(int(v.numerator))
        return word.capitalize() if occ.text[:1].isupper() else word
    grouped = "," in occ.text
    scaled = v * 10**places
    whole, frac = divmod(int(floor(scaled).numerator), 10**places)
    digits = f"{int(whole):,}" if grouped else str(int(whole))
    if places:
        digits += "." + str(int(frac)).rjust(places, "0")
    if occ.kind == "money":
        return "$" + digits
    if occ.kind == "percent":
        return digits + ("%" if occ.text.endswith("%") else " percent")
    return digits


def _occurrence(q) -> _Occurrence | None:
    if q.kind == "word":
        n = _WORD_NUMBERS.get(q.text.lower())
        return _Occurrence(q.start, q.end, "word", q.text) if n is not None and n == q.value else None
    pattern = _PLAIN.get(q.kind)
    if pattern is None or not pattern.fullmatch(q.text):
        return None
    return _Occurrence(q.start, q.end, q.kind, q.text)


def _looks_like_year(value: Exact, occurrences: list) -> bool:
    return value.denominator == 1 and 1800 <= value <= 2100 and all(o.kind == "number" and "," not in o.text
                                                                     for o in occurrences)


def _places(text: str) -> int:
    m = re.search(r"\.(\d+)", text)
    return len(m.group(1)) if m else 0


def _range(value: Exact, kind: str, places: int) -> tuple[Exact, Exact, Exact]:
    """(grain, low, high) for new values of the same form as ``value``."""
    if kind == "word":
        return Exact(1), Exact(2), Exact(12)
    if places:
        grain = Exact(1, 10**places)
        for g in (Exact(1, 4), Exact(1, 2)):
            if places >= 1 and (value / g).denominator == 1 and g >= grain:
                grain = g
    else:
        grain = Exact(1)
        for g in (5, 10, 25, 50, 100, 500, 1000):
            if (value / g).denominator == 1 and value >= 4 * g:
                grain = Exact(g)
    if kind == "percent" and value < 100:
        grain = Exact(5) if (value / 5).denominator == 1 else grain
        return grain, grain, Exact(95)
    if places == 0 and value <= 12:
        return grain, Exact(2), Exact(12)
    lo = max(grain, _ceil_to(value / 2, grain))
    hi = _ceil_to(value * 2, grain)
    return grain, lo, hi


def _ceil_to(x: Exact, grain: Exact) -> Exact:
    return grain * ceil(x / grain)


def plan(record: dict) -> LiftPlan | None:
    """The lifting plan of one imported train record, or None when nothing can be lifted safely."""
    from ..grounding import constants_for, extract

    question, trace = record.get("question"), record.get("trace")
    if not isinstance(question, str) or not isinstance(trace, str):
        return None
    meta = record.get("meta")
    if isinstance(meta, dict) and meta.get("warnings"):
        return None  # the importer kept it with an ungrounded value: so would every lifted copy
    report = parse(trace)
    if report.program is None or not report.complete:
        return None
    program = report.program
    if check(program):
        return None  # only clean traces are lifted (execution needs a checked program)
    run = execute(program)
    if run.diagnostics or run.answer is None:
        return None
    quantities = extract(question)
    constants = {c.value for c in constants_for(question)}
    derived = {v for q in quantities for v in q.also if v != q.value}
    literals = {a.value for block in program.blocks for step in block.trace
                for a in getattr(step, "args", None) or () if isinstance(a, Num)}
    inits: dict[Exact, list[tuple[int, int]]] = {}
    for b, block in enumerate(program.blocks):
        for s, step in enumerate(block.trace):
            if isinstance(step, InitStep) and step.value is not None:
                inits.setdefault(step.value.value, []).append((b, s))
    by_value: dict[Exact, list] = {}
    for q in quantities:
        by_value.setdefault(q.value, []).append(q)
    # A quantity whose derived value the trace uses (0.75 for "25% off") stays as written: the
    # trace would keep the old derived value while the text changed.
    used_through_derived = {q.value for q in quantities if any(a != q.value and a in inits for a in q.also)}
    classes: list[_Class] = []
    frozen: set[Exact] = set()
    for value, qs in by_value.items():
        occurrences = [_occurrence(q) for q in qs]
        plain = all(o is not None for o in occurrences)
        if value not in inits:
            feeds = value in used_through_derived or value in derived or value in constants
            if any(o is not None and o.kind != "word" for o in occurrences) and not feeds:
                return None  # a plain number the trace does not use: it may depend on the others
            frozen.add(value)
            continue
        kinds = {o.kind for o in occurrences if o is not None}
        if (not plain or len(kinds) != 1 or value in derived or value in constants or value in literals
                or value in used_through_derived
                or value in (0, 1) or value < 0 or _looks_like_year(value, occurrences)):
            frozen.add(value)
            continue
        kind = kinds.pop()
        places = max(_places(o.text) for o in occurrences)  # type: ignore[union-attr]
        grain, lo, hi = _range(value, kind, places)
        if hi <= lo:
            frozen.add(value)
            continue
        classes.append(_Class(value, occurrences, inits[value], places, grain, lo, hi))  # type: ignore[arg-type]
    if not classes:
        return None
    frozen |= constants | literals
    signs = [_sign(v) if v is not None else 0 for _, _, v in run.steps]
    whole = [v is not None and v.denominator == 1 for _, _, v in run.steps]
    answer = run.answer
    places = 0 if answer.denominator == 1 else 2
    lift = LiftPlan(str(record.get("id", "")), question, program, classes, frozen, signs, whole, _picks(run), places,
                    [[format_step(step) for step in block.trace] for block in program.blocks])
    return lift if lift.samples(Random(0)) else None


@dataclass
class LiftSource:
    """Makes lifted records, one train problem after another in a seeded order."""

    plans: list[LiftPlan]
    rejected: Counter = field(default_factory=Counter)
    _order: list[int] = field(default_factory=list)
    _next: int = 0

    @classmethod
    def from_records(cls, records: Iterable[dict]) -> LiftSource:
        plans = [p for p in (plan(r) for r in records) if p is not None]
        return cls(plans)

    def make(self, rng: Random) -> dict | None:
        if not self.plans:
            return None
        if self._next >= len(self._order):
            self._order = list(range(len(self.plans)))
            rng.shuffle(self._order)
            self._next = 0
        p = self.plans[self._order[self._next]]
        self._next += 1
        for _ in range(MAX_TRIES):
            drawn = p.sample(rng)
            if drawn is None:
                continue
            question, program, run = drawn
            answer, why = verify(program, run=run)
            if answer is None:
                self.rejected[why] += 1
                return None
            trace = p.text(p.last)
            return make_record(content_id("lift", question, trace), question, trace, answer,
                               program.blocks[0].expert, "synthetic:gsm8k-lift",
                               {"origin": p.origin, "lifted": len(p.classes)})
        self.rejected["no-sample"] += 1
        return None


class TrainError(UsageError, ValueError):
    """A --gsm8k-train input that cannot be used (missing, not train, unreadable)."""


def train_records(path: str, progress=None) -> list[dict]:
    """Imported GSM-8K train records from ``path``: a corpus of records with traces (as
    ``tracelang gsm8k import`` writes) or the raw GSM-8K file, imported here. Refuses test."""
    from ..data.gsm8k import load, split_of_path
    from ..data.importer import convert
    from ..fileio import InputError, read_jsonl

    if split_of_path(path) == "test" or "test" in path.rsplit("/", 1)[-1].lower():
        raise TrainError(f"{path}: GSM-8K test is for evaluation only; lift from train")
    try:
        first = next((obj for _, obj in read_jsonl(path)), None)
        if first is not None and isinstance(first.get("trace"), str):
            records = [obj for _, obj in read_jsonl(path) if isinstance(obj.get("trace"), str)]
            if any(str(r.get("source", "")).endswith("test") for r in records):
                raise TrainError(f"{path}: holds GSM-8K test records; lift from train only")
            return records
        out: list[dict] = []
        for problem in load(path):
            if problem.split == "test":
                raise TrainError(f"{path}: GSM-8K test is for evaluation only; lift from train")
            conversion = convert(problem)
            if conversion.record is not None:
                out.append(conversion.record)
            if progress is not None:
                progress()
        return out
    except InputError as err:
        raise TrainError(str(err)) from None
