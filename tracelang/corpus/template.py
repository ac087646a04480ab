"""Templates: TOML tables compiled once into samplers, phrase lists and a trace skeleton.

The format is specified in ``spec/templates.md``. In short, one ``[[template]]`` table per
template, with ``id``, ``answer`` (an expression the trace's result must equal), ``facts`` (a
list of facts, each a list of alternative phrasings), ``question`` (alternatives), ``trace``
(canonical tracelang with slots) and ``[template.vars]`` (samplers), plus optional
``constraints``, ``when``, ``free``, ``decimals``, ``output``, ``feed``, ``weight``, ``family``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from random import Random
from typing import Any

from ..errors import UsageError
from ..numbers import Exact
from .expr import Compiled, ExprError, Undefined, compile_expr
from .pools import Pool, PoolEntry, PoolError, exact_number, identifier
from .skeleton import Skeleton, SkeletonError, compile_trace
from .text import FORMATS, NUMBER_ATTRS, Format, Text, TextError, compile_text

MAX_TRIES = 60  # samples tried before a template gives up on one record
_ID = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*")
_VAR = re.compile(r"[a-z_][a-z0-9_]*")
_TEMPLATE_KEYS = {"id", "family", "answer", "decimals", "constraints", "facts", "question", "when", "free",
                  "trace", "vars", "output", "feed", "weight", "distractors"}
_VAR_KEYS = {"range", "step", "choice", "pool", "expr", "const", "cue", "format", "words"}
_KINDS = ("range", "choice", "pool", "expr", "const")
MAX_RANGE_VALUES = 10**9


class TemplateError(UsageError, ValueError):
    """A template that cannot be compiled, with the file, line and template named."""


@dataclass
class VarSpec:
    name: str
    kind: str  # range | choice | pool | expr | const
    format: Format
    pool: Pool | None = None
    lo: Exact | None = None
    step: Exact | None = None
    count: int = 0
    choices: list[object] = field(default_factory=list)
    expr: Compiled | None = None
    cue: list[str] = field(default_factory=list)  # for a const: words of the text that state it

    @property
    def is_number(self) -> bool:
        return self.kind in ("range", "expr", "const") or \
            (self.kind == "choice" and not isinstance(self.choices[0], PoolEntry))

    def draw(self, rng: Random, env: dict, used: set[int]) -> object:
        if self.kind == "range":
            return self.lo + self.step * rng.randrange(self.count)  # type: ignore[operator]
        if self.kind == "choice":
            return self.choices[rng.randrange(len(self.choices))]
        if self.kind == "const":
            return self.lo
        if self.kind == "pool":
            entries = self.pool.entries  # type: ignore[union-attr]
            for _ in range(30):
                entry = entries[rng.randrange(len(entries))]
                if id(entry) not in used:
                    return entry
            return None
        return self.expr(env)  # type: ignore[misc]


@dataclass
class Template:
    id: str
    family: str
    path: str
    line: int
    expert: str
    vars: dict[str, VarSpec]
    answer: Compiled
    decimals: int
    constraints: list[Compiled]
    facts: list[list[Text]]
    question: list[Text]
    when: list[Text]
    free: list[int]  # fact indices (from 0) that may trade places
    skeleton: Skeleton
    output: str | None
    feed: dict[str, str]
    weight: float
    distractors: list[Text]
    trace_text: str
    formats: dict[str, Format] = field(default_factory=dict)
    _checks: list[list[Compiled]] = field(default_factory=list)  # constraints to test once var i is known

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}: template `{self.id}`"

    def sample(self, rng: Random, fixed: dict[str, object] | None = None, used: set[int] | None = None,
               tries: int = MAX_TRIES) -> dict[str, object] | None:
        """Values for every variable satisfying every constraint, or None after ``tries`` attempts.
        ``fixed`` values are taken as given (a fed answer, a shared person); ``used`` holds the ids of
        pool entries already in the record, which are not drawn again."""
        used = used if used is not None else set()
        fixed = fixed or {}
        if fixed and not self._fixed_ok(fixed):
            return None  # a constraint on the given values alone fails: no draw can help
        for _ in range(tries):
            env = dict(fixed)
            taken = set(used)  # entries of the record so far and of this attempt: drawn once each
            if self._attempt(rng, env, taken):
                used |= taken
                return env
        return None

    def _fixed_ok(self, fixed: dict[str, object]) -> bool:
        known = set(fixed) | {n for n, spec in self.vars.items() if spec.kind == "const"}
        env = dict(fixed)
        for spec in self.vars.values():
            if spec.kind == "const":
                env[spec.name] = spec.lo
        for check in self.constraints:
            if check.names <= known:
                try:
                    if not check.fn(env):
                        return False
                except Undefined:
                    return False
        return True

    def _attempt(self, rng: Random, env: dict, taken: set[int]) -> bool:
        for i, spec in enumerate(self.vars.values()):
            if spec.name not in env:
                try:
                    value = spec.draw(rng, env, taken)
                except Undefined:
                    return False
                if value is None:
                    return False
                if spec.pool is not None:
                    taken.add(id(value))
                env[spec.name] = value
            for check in self._checks[i]:
                try:
                    if not check.fn(env):
                        return False
                except Undefined:
                    return False
        return True

    def expected(self, env: dict) -> Exact | None:
        try:
            return self.answer.fn(env)
        except Undefined:
            return None


# ---------------------------------------------------------------- loading


def _fail(where: str, message: str) -> TemplateError:
    return TemplateError(f"{where}: {message}")


def phrases(value: object, where: str, what: str) -> list[Text]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise _fail(where, f"`{what}` must be a phrase or a non-empty list of alternative phrases")
    out = []
    for item in items:
        try:
            out.append(compile_text(item))
        except TextError as err:
            raise _fail(where, f"`{what}`: {err}") from None
    return out


def var_spec(name: str, raw: object, pools: dict[str, Pool], where: str) -> VarSpec:
    at = f"{where}: var `{name}`"
    if not _VAR.fullmatch(name):
        raise _fail(at, "variable names are lower-case letters, digits and _")
    if isinstance(raw, str):
        raw = {"pool": raw}
    if not isinstance(raw, dict):
        raise _fail(at, "a variable is a pool name or a table (range, choice, pool, expr or const)")
    unknown = set(raw) - _VAR_KEYS
    if unknown:
        raise _fail(at, f"unknown key `{sorted(unknown)[0]}` (keys: {', '.join(sorted(_VAR_KEYS))})")
    kinds = [k for k in _KINDS if k in raw]
    if len(kinds) != 1:
        raise _fail(at, "give exactly one of `range`, `choice`, `pool`, `expr`, `const`")
    kind = kinds[0]
    fmt_name = raw.get("format", "number")
    if fmt_name not in FORMATS:
        raise _fail(at, f"unknown format `{fmt_name}` ({', '.join(FORMATS)})")
    words = raw.get("words", fmt_name == "number")
    if not isinstance(words, bool):
        raise _fail(at, "`words` is true or false")
    spec = VarSpec(name, kind, Format(fmt_name, words))
    try:
        if kind == "range":
            bounds = raw["range"]
            if not isinstance(bounds, list) or len(bounds) != 2:
                raise _fail(at, "`range` is [low, high]")
            lo, hi = (exact_number(b, f"{at}: range") for b in bounds)
            step = exact_number(raw.get("step", 1), f"{at}: step")
            if step <= 0 or hi < lo:
                raise _fail(at, "a range needs low <= high and a positive step")
            count = (hi - lo) / step
            if count.denominator != 1:
                raise _fail(at, "high - low must be a whole number of steps")
            if count >= MAX_RANGE_VALUES:
                raise _fail(at, f"a range of more than {MAX_RANGE_VALUES} values")
            spec.lo, spec.step, spec.count = lo, step, int(count.numerator) + 1
        elif kind == "choice":
            options = raw["choice"]
            if not isinstance(options, list) or not options:
                raise _fail(at, "`choice` is a non-empty list")
            if all(isinstance(o, str) for o in options):
                spec.choices = [PoolEntry(o, {"id": identifier(o)}) for o in options]
            else:
                spec.choices = [exact_number(o, f"{at}: choice") for o in options]
        elif kind == "const":
            spec.lo = exact_number(raw["const"], f"{at}: const")
            cue = raw.get("cue", [])
            if isinstance(cue, str):
                cue = [cue]
            if not isinstance(cue, list) or not all(isinstance(c, str) and c.strip() for c in cue):
                raise _fail(at, "`cue` is a word or a list of words that state the constant in the text")
            spec.cue = [c.lower() for c in cue]
        elif kind == "pool":
            pool = pools.get(raw["pool"])
            if pool is None:
                raise _fail(at, f"no pool `{raw['pool']}` (pools: {', '.join(sorted(pools))})")
            spec.pool = pool
        else:
            if not isinstance(raw["expr"], str):
                raise _fail(at, "`expr` is an expression in quotes")
    except PoolError as err:
        raise _fail(at, str(err).split(": ", 1)[-1]) from None
    if "step" in raw and kind != "range":
        raise _fail(at, "`step` belongs to a `range`")
    if "cue" in raw and kind != "const":
        raise _fail(at, "`cue` belongs to a `const`")
    return spec


def _attr_kind(specs: dict[str, VarSpec]):
    def kind(name: str, attr: str) -> str | None:
        spec = specs.get(name)
        if spec is None or spec.pool is None:
            return None
        return "num" if spec.pool.attr_kinds.get(attr) == "num" else None
    return kind


def _line_of(source: str, template_id: str) -> int:
    m = re.search(r'^\s*id\s*=\s*["\']' + re.escape(template_id) + r'["\']', source, re.MULTILINE)
    return source.count("\n", 0, m.start()) + 1 if m else 1


def compile_template(raw: dict[str, Any], pools: dict[str, Pool], path: str, source: str, index: int) -> Template:
    tid = raw.get("id")
    if not isinstance(tid, str) or not _ID.fullmatch(tid):
        raise _fail(f"{path}: template {index + 1}", "`id` is a dotted lower-case name like `money.change`")
    line = _line_of(source, tid)
    where = f"{path}:{line}: template `{tid}`"
    unknown = set(raw) - _TEMPLATE_KEYS
    if unknown:
        raise _fail(where, f"unknown key `{sorted(unknown)[0]}`")
    for key in ("answer", "facts", "question", "trace", "vars"):
        if key not in raw:
            raise _fail(where, f"missing `{key}`")
    raw_vars = raw["vars"]
    if not isinstance(raw_vars, dict) or not raw_vars:
        raise _fail(where, "`vars` is a table of variables")
    specs = {name: var_spec(name, value, pools, where) for name, value in raw_vars.items()}
    attr_kind = _attr_kind(specs)

    def expr(text: object, kind: str, what: str) -> Compiled:
        if not isinstance(text, str):
            raise _fail(where, f"{what} must be an expression in quotes")
        try:
            compiled = compile_expr(text, kind, attr_kind)
        except ExprError as err:
            raise _fail(where, f"{what}: {err}") from None
        unknown_names = sorted(compiled.names - set(specs))
        if unknown_names:
            raise _fail(where, f"{what}: `{unknown_names[0]}` is not a variable of the template")
        return compiled

    order = list(specs)
    for name, value in raw_vars.items():
        if isinstance(value, dict) and "expr" in value:
            spec = specs[name]
            spec.expr = expr(value["expr"], "num", f"var `{name}`")
            late = [n for n in spec.expr.names if order.index(n) >= order.index(name)]
            if late:
                raise _fail(where, f"var `{name}` uses `{late[0]}`, which is defined after it (or is itself)")
    answer = expr(raw["answer"], "num", "`answer`")
    constraints_raw = raw.get("constraints", [])
    if not isinstance(constraints_raw, list):
        raise _fail(where, "`constraints` is a list of expressions")
    constraints = [expr(c, "bool", f"constraint {i + 1}") for i, c in enumerate(constraints_raw)]
    checks: list[list[Compiled]] = [[] for _ in order]
    for c in constraints:
        last = max((order.index(n) for n in c.names), default=0)
        checks[last].append(c)

    facts_raw = raw["facts"]
    if not isinstance(facts_raw, list) or not facts_raw:
        raise _fail(where, "`facts` is a list of facts, each a list of alternative phrasings")
    facts = [phrases(f, where, f"facts[{i + 1}]") for i, f in enumerate(facts_raw)]
    question = phrases(raw["question"], where, "question")
    when = phrases(raw["when"], where, "when") if "when" in raw else []
    distractors = phrases(raw["distractors"], where, "distractors") if "distractors" in raw else []
    free_raw = raw.get("free", [])
    if not isinstance(free_raw, list) or any(not isinstance(i, int) or not 1 <= i <= len(facts) for i in free_raw):
        raise _fail(where, f"`free` lists fact numbers from 1 to {len(facts)}")
    decimals = raw.get("decimals", 0)
    if decimals not in (0, 1, 2):
        raise _fail(where, "`decimals` is 0, 1 or 2 (how many decimal places the answer may have)")
    weight = raw.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
        raise _fail(where, "`weight` is a positive number")
    output = raw.get("output")
    feed = raw.get("feed", {})
    if output is not None and not isinstance(output, str):
        raise _fail(where, "`output` is a kind name like `money.have`")
    if not isinstance(feed, dict) or any(not isinstance(v, str) for v in feed.values()):
        raise _fail(where, "`feed` maps variables to kind names")
    for name in feed:
        if name not in specs:
            raise _fail(where, f"feed: `{name}` is not a variable of the template")

    def kind_of(name: str, attr: str | None) -> str:
        spec = specs[name]  # KeyError: unknown variable, reported by compile_trace
        if spec.pool is not None and attr is not None:
            if attr not in spec.pool.attr_kinds and attr != "id":
                raise KeyError(name)
            return "num" if spec.pool.attr_kinds.get(attr) == "num" else "name"
        if spec.pool is not None or (spec.kind == "choice" and not spec.is_number):
            return "name"
        if attr is not None:
            raise KeyError(name)
        return "num"

    trace_text = raw["trace"]
    if not isinstance(trace_text, str):
        raise _fail(where, "`trace` is the trace text in ''' quotes")
    try:
        skeleton = compile_trace(trace_text.strip("\n") + "\n", kind_of)
    except SkeletonError as err:
        if err.line is None:
            raise _fail(where, f"trace: {err}") from None
        first = trace_text.strip("\n").splitlines()[0]
        at = source.find(first, source.find(tid))
        line = source.count("\n", 0, at) + err.line if at >= 0 else line
        raise _fail(f"{path}:{line}: template `{tid}`", f"trace: {str(err).split(': ', 1)[1]}") from None
    check_slots(specs, [a for alts in facts for a in alts] + question + when + distractors, where)
    return Template(
        id=tid, family=raw.get("family", tid.split(".")[0]), path=path, line=line, expert=skeleton.expert,
        vars=specs, answer=answer, decimals=decimals, constraints=constraints, facts=facts, question=question,
        when=when, free=[i - 1 for i in free_raw], skeleton=skeleton, output=output, feed=dict(feed),
        weight=float(weight), distractors=distractors, trace_text=trace_text,
        formats={n: s.format for n, s in specs.items()}, _checks=checks,
    )


def check_slots(specs: dict[str, VarSpec], texts: list[Text], where: str) -> None:
    """Every slot names a variable, with an attribute the variable has."""
    for text in texts:
        for slot in text.slots:
            spec = specs.get(slot.var)
            if spec is None:
                raise _fail(where, f"`{{{slot.var}}}` in \"{text.source}\" names no variable")
            if slot.attr is None:
                if spec.pool is not None and not spec.pool.has_text:
                    raise _fail(where, f"`{{{slot.var}}}` in \"{text.source}\": pool `{spec.pool.name}` has no "
                                       "`text`; name an attribute")
                continue
            ok = slot.attr in spec.pool.attr_kinds if spec.pool is not None else \
                (spec.is_number and slot.attr in NUMBER_ATTRS)
            if not ok:
                raise _fail(where, f"`{{{slot.var}.{slot.attr}}}` in \"{text.source}\": `{slot.var}` has no "
                                   f"attribute `{slot.attr}`")
