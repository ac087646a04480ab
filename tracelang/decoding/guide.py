"""The semantic layer: what each slot and branch of the canonical grammar may hold *here*.

A ``Guide`` is an immutable snapshot of a partly decoded trace: the blocks so far, the current
block's ``Scope`` (scope.py, the checker's own model: the names defined, their kind, the literal an
input holds, value numbers), the exact runtime value of each name, and the step being written. The automaton asks it

- ``allowed(decisions)``: which branches may be taken (another step, which op, another list item,
  closing a list, another block, the end);
- ``slot(slot)``: what a slot may hold (an allow-list, a deny-list of names, a number spec);
- ``complete(slot, text)`` / ``event(e)``: the snapshot after a slot is filled or a step ends.

Every answer keeps a completion possible: a branch or a value is allowed only when some valid
trace continues from it. So a decoder never gets stuck, and what it emits passes ``tracelang
check`` with no error. The checks mirror ``checker.py`` (scope, E303/E304, E401, E402) and run the
experts' own op functions for runtime errors (E501-E503, E603). A written step becomes an IR step:
the scope advances on it as the checker's does, and the expert's handler runs it.

Levels, each switchable, by name (levels.py): ``scope``, ``ops``, ``grounding``, ``values``, whose
rules are written here, and any other registered level, whose rules the guide consults through its
hooks at its two decision points (``allowed`` and ``slot``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache

from .. import experts as registry
from ..build import field_kind
from ..degenerate import PERCENT_IDENTITY, ROUNDING, repeated
from ..experts import Env, ExecError
from ..experts.base import OpSpec
from ..experts.percentage import PERCENT_OPS, rate_error
from ..grammar import SURFACES, terminal_choices
from ..ir import STEP_TYPES, Num, QueryStep, Ref, Step, Var, make, names_in
from ..limits import DEFAULT_LIMITS, Limits
from ..numbers import ZERO, Exact, render
from ..scope import Scope, computation_key, literal_key
from .automaton import Slot
from .levels import Levels
from .numslot import NumSpec, canonical_value

NAME_CAP = 64  # longest name the decoder writes (the checker's limit is limits.max_name_chars)
# How many arguments ahead the argument search looks for a completion of an open list.
LOOKAHEAD = 2
# Witnesses for "some literal completes this": small ones (an exponent must stay small), then
# primes unlikely to be in any trace (a repeated computation needs the very same arguments).
_FRESH = ((2, 1), (3, 1), (7919, 1), (7927, 1), (7933, 1), (1, 7))


_FILLS = {k: (tuple(("num", p, 1) for p in (7919, 7927, 7933)[:k]), tuple(("num", p, 1) for p in (2, 3, 5)[:k]))
          for k in range(1, 4)}


def _fills(k: int) -> tuple[tuple, ...]:
    """Literal argument tuples of length ``k`` to try first: fresh primes, then small numbers."""
    return _FILLS.get(k, ())
_SMALL = {(0, 1): ZERO, (1, 1): Exact(1)}
_UNKNOWN = object()  # a memo miss (None is a memoized answer)


_ENVS: dict[Limits, Env] = {}


def _env(limits: Limits) -> Env:
    env = _ENVS.get(limits)
    if env is None:
        env = _ENVS[limits] = Env(limits)
    return env


@dataclass(frozen=True)
class Config:
    levels: Levels = Levels()
    grounded: frozenset[str] | None = None  # canonical strings of the allowed init values; None: any
    limits: Limits = DEFAULT_LIMITS
    # The values the question states: an input holding one is exempt from the no-op rules (E401), as
    # in the checker with ``grounder_for``'s ``stated``.
    stated: frozenset[Exact] = frozenset()
    # The grounded values as literal arguments (``scope.literal_key``): what a literal in args or amount may be.
    grounded_args: tuple = ()

    @property
    def restricted(self) -> bool:
        """Literals are limited to the grounded values (W701 covers args and amounts as well)."""
        return self.levels.grounding and self.grounded is not None

    @classmethod
    def make(cls, levels: Levels = Levels(), allowed_values: Iterable[Exact] | None = None,
             limits: Limits = DEFAULT_LIMITS, stated_values: Iterable[Exact] = ()) -> Config:
        grounded, grounded_args = None, ()
        if levels.grounding and allowed_values is not None:
            values = sorted(set(allowed_values))
            grounded = frozenset(render(v) for v in values)
            grounded_args = tuple(literal_key(v) for v in values)
        return cls(levels, grounded, limits, frozenset(stated_values), grounded_args)


@dataclass
class BlockState:
    index: int
    composed: bool
    expert: registry.Expert | None = None
    expert_name: str | None = None
    scope: Scope = field(default_factory=Scope)  # definitions and value numbers, as the checker's
    values: dict[str, Exact] = field(default_factory=dict)  # runtime values
    has_query: bool = False
    steps: int = 0
    answer: Exact | None = None
    cache: dict = field(default_factory=dict)  # pure functions of this block state (shared by drafts)

    def copy(self) -> BlockState:
        return replace(self, scope=self.scope.copy(), values=dict(self.values), cache={})


class Guide:
    """An immutable snapshot; every transition returns a new one (memoized on this one)."""

    __slots__ = ("cfg", "results", "block", "draft", "memo", "__weakref__")

    def __init__(self, cfg: Config, results: tuple = (), block: BlockState | None = None,
                 draft: tuple | None = None):
        self.cfg = cfg
        self.results = results
        self.block = block
        self.draft = draft  # (op, ((key, value), ...)) of the step being written, or None
        self.memo: dict = {}

    # ---------------------------------------------------------------- small helpers

    @property
    def lv(self) -> Levels:
        return self.cfg.levels

    def _with(self, block: BlockState | None = None, draft: object = False, results: tuple | None = None) -> Guide:
        return Guide(self.cfg, self.results if results is None else results,
                     self.block if block is None else block, self.draft if draft is False else draft)  # type: ignore[arg-type]

    def field(self, key: str, default: object = None) -> object:
        if self.draft is None:
            return default
        for k, v in self.draft[1]:
            if k == key:
                return v
        return default

    @property
    def op(self) -> str | None:
        return self.draft[0] if self.draft else None

    def _expert(self, op: str) -> registry.Expert:
        """Who answers for ``op`` here: the block's expert (registry.answering)."""
        b = self.block
        return registry.answering(b.expert if b is not None else None, op)

    def _table(self, op: str) -> dict[str, OpSpec]:
        return self._expert(op).compute_ops(op)

    def _facts(self, op: str, cop: str) -> tuple[OpSpec | None, registry.Identity | None]:
        """(spec, identity) of ``cop`` as the block's expert answers, once per block state: the
        argument search asks them for every candidate list, the mask's hottest loop."""
        cache = self.block.cache if self.block is not None else {}
        key = ("facts", op, cop)
        hit = cache.get(key)
        if hit is None:
            expert = self._expert(op)
            hit = cache[key] = (expert.compute_ops(op).get(cop), expert.identity(op, cop))
        return hit

    def _offers(self, op: str) -> bool:
        b = self.block
        return not self.lv.ops or (b is not None and b.expert is not None and op in b.expert.ops)

    # ---------------------------------------------------------------- value checks (the checker's)

    def _key(self, arg: tuple) -> object:
        """A draft argument's numbering key: a literal is kept as its key already."""
        return arg if arg[0] == "num" else self.block.scope.name_key(arg[1])  # type: ignore[union-attr]

    def _const(self, arg: tuple) -> Exact | None:
        if arg[0] == "num":
            return _SMALL.get((arg[1], arg[2])) or Exact(arg[1], arg[2])
        d = self.block.scope.defs.get(arg[1])  # type: ignore[union-attr]
        return d.const if d is not None else None

    def _integral(self, arg: tuple) -> bool:
        if arg[0] == "num":
            return arg[2] == 1
        d = self.block.scope.defs.get(arg[1])  # type: ignore[union-attr]
        return d is not None and d.integral

    def _degenerate(self, op: str, cop: str, args: tuple) -> bool:
        """The checker's shape rules (degenerate.py): an arg given twice, rounding an integer. A
        degenerate prefix stays degenerate whatever follows."""
        if repeated(cop, args) is not None:
            return True
        return op == "compute" and cop in ROUNDING and len(args) == 1 and self._integral(args[0])

    def _read(self, arg: tuple) -> Exact | None:
        if arg[0] == "num":
            return Exact(arg[1], arg[2])
        return self.block.values.get(arg[1])  # type: ignore[union-attr]

    def _valid(self, op: str, cop: str, args: tuple) -> bool:
        cache = self.block.cache  # type: ignore[union-attr]
        key = ("valid", op, cop, args)
        hit = cache.get(key)
        if hit is None:
            hit = self._quick_valid(op, cop, args)
            if hit is None:
                hit = self._compute_uncached(op, cop, args) is not None
            cache[key] = hit
        return hit

    def _arg_names(self, op: str, cop: str, args: tuple, names: list[str]) -> list[str]:
        """The names that may be the next argument. The common case, where fresh literals would
        complete the list, is decided from the numbering keys alone; the rest goes to `_args_ok`."""
        spec, ident = self._facts(op, cop)  # ident: the block's expert's E401 identity
        n = len(args)
        if spec is None or not (self.lv.ops and self.lv.values) or spec.partial or n + 1 > 3 \
                or (spec.max_args is not None and n + 1 > spec.max_args) or self.cfg.restricted:
            return [x for x in names if self._args_ok(op, cop, args + (("var", x),))]
        b = self.block
        scope, values = b.scope, b.values  # type: ignore[union-attr]
        numbers, defs, seen = scope.numbers, scope.defs, scope.seen
        head = [self._key(a) for a in args]
        if any(not isinstance(k, (int, tuple)) for k in head):
            return [x for x in names if self._args_ok(op, cop, args + (("var", x),))]
        missing = max(spec.min_args - n - 1, 0)
        if missing == 0 and (spec.max_args is None or n + 1 < spec.max_args):
            missing = 1  # fresh literal as an extension witness (closing now is checked below)
        fill = _fills(missing)[0] if missing else ()
        out = []
        for x in names:
            num, val = numbers.get(x), values.get(x)
            if num is None or val is None or max(val.numerator.bit_length(), val.denominator.bit_length()) > 600:
                if self._args_ok(op, cop, args + (("var", x),)):
                    out.append(x)
                continue
            if ident is not None and (n or ident[1] == "any"):
                d = defs.get(x)
                if d is not None and d.const is not None and d.const == ident[0]:
                    continue  # E401 whatever follows
            if spec.divides and n == 1 and val.numerator == 0:
                continue  # E501
            grown = args + (("var", x),)
            if self._degenerate(op, cop, grown):
                continue  # E401 whatever follows
            key = computation_key(op, cop, [*head, num, *fill], spec.commutative)
            if missing and key not in seen and not self._degenerate(op, cop, grown + fill) \
                    or self._args_ok(op, cop, grown):
                out.append(x)
        return out

    def _quick_valid(self, op: str, cop: str, args: tuple) -> bool | None:
        """The common case without arithmetic: arity, identities, repeats, and sizes far from the
        limit (then no runtime error is possible). None: not decided here."""
        if not (self.lv.ops and self.lv.values):
            return None
        spec, ident = self._facts(op, cop)
        if spec is not None and spec.partial:
            return None
        n = len(args)
        if spec is None or n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
            return False
        if self._degenerate(op, cop, args):
            return False
        b = self.block
        defs, numbers, values = b.scope.defs, b.scope.numbers, b.values  # type: ignore[union-attr]
        ip = int(ident[0].numerator) if ident is not None else None
        divides = spec.divides
        keys = []
        bits = 0
        for i, a in enumerate(args):
            if a[0] == "num":
                p, q = a[1], a[2]
                if ip is not None and (i or ident[1] == "any") and q == 1 and p == ip:  # type: ignore[index]
                    return False
                if divides and i == 1 and p == 0:
                    return False
                keys.append(a)
                bits += max(p.bit_length(), q.bit_length())
            else:
                name = a[1]
                x = values.get(name)
                num = numbers.get(name)
                if x is None or num is None:
                    return None
                if ip is not None and (i or ident[1] == "any"):  # type: ignore[index]
                    d = defs.get(name)
                    if d is not None and d.const is not None and d.const == ident[0]:  # type: ignore[index]
                        return False
                if divides and i == 1 and x.numerator == 0:
                    return False
                keys.append(num)
                bits += max(x.numerator.bit_length(), x.denominator.bit_length())
        if bits + 64 >= self.cfg.limits.max_value_digits * 3.3:
            return None
        return computation_key(op, cop, keys, spec.commutative) not in b.scope.seen  # type: ignore[union-attr]

    def _compute_uncached(self, op: str, cop: str, args: tuple) -> tuple | None:
        spec = self._table(op).get(cop)
        if spec is None:
            return None
        n = len(args)
        if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
            return None if self.lv.ops else (None, None)  # ops off: any arity, and nothing to evaluate
        if not self.lv.values:
            return None, None
        if self._degenerate(op, cop, args):
            return None
        if self._expert(op).noop(op, cop, args, self._const) is not None:
            return None
        key = computation_key(op, cop, [self._key(a) for a in args], spec.commutative)
        if key in self.block.scope.seen:  # type: ignore[union-attr]
            return None
        xs = [self._read(a) for a in args]
        if any(x is None for x in xs):
            return None, key  # a name the scope level did not check: no value to test
        if not spec.partial and not (spec.divides and xs[1] == 0):
            bits = sum(max(x.numerator.bit_length(), x.denominator.bit_length()) for x in xs)
            if bits + 64 < self.cfg.limits.max_value_digits * 3.3:
                return None, key  # no runtime error is possible: skip the arithmetic
        env = _env(self.cfg.limits)
        try:
            value = env.bound(spec.fn(xs, env, None), None)
        except ExecError:
            return None
        return value, key

    def _args_ok(self, op: str, cop: str, args: tuple, depth: int = LOOKAHEAD) -> bool:
        """Some completion of the argument list ``args`` gives a valid step."""
        return self._completion(op, cop, args, depth) is not None

    def _completion(self, op: str, cop: str, args: tuple, depth: int = LOOKAHEAD) -> tuple | None:
        """Arguments (at most ``depth``) that, appended to ``args``, give a valid step: ``()`` when
        ``args`` is valid as it is, None when no completion is found."""
        memo_key = ("args", op, cop, args, depth)
        cache = self.block.cache  # type: ignore[union-attr]
        hit = cache.get(memo_key, _UNKNOWN)
        if hit is not _UNKNOWN:
            return hit  # type: ignore[return-value]
        spec = self._facts(op, cop)[0]
        found = None
        if spec is not None:
            n = len(args)
            if n >= spec.min_args and self._valid(op, cop, args):
                found = ()
            elif n < spec.min_args and spec.min_args - n <= depth and not self.cfg.restricted:
                # the quick witnesses: literals filling the missing arguments
                found = next((fill for fill in _fills(spec.min_args - n) if self._valid(op, cop, args + fill)), None)
            if found is None and (spec.max_args is None or n < spec.max_args) and depth > 0:
                for c in self._witnesses():
                    rest = self._completion(op, cop, args + (c,), depth - 1)
                    if rest is not None:
                        found = (c, *rest)
                        break
        cache[memo_key] = found
        return found

    def closing_args(self) -> tuple | None:
        """The shortest completion of the argument list being written, as ("var", name) or ("num", p, q)
        arguments; ``()`` when it may close as it is, None outside a compute's open list. The closing
        walk follows it where its byte order alone would keep adding arguments that never close."""
        op, cop = self.op, self.field("compute_op")
        if self.block is None or op is None or cop is None:
            return None
        args = self.field("args", ())
        for depth in range(LOOKAHEAD + 1):  # iterative deepening: each argument taken shortens what is left
            found = self._completion(op, cop, args, depth)  # type: ignore[arg-type]
            if found is not None:
                return found
        return None

    def _empty_ok(self, op: str, cop: str) -> bool:
        """Some argument list makes ``cop`` valid: fresh literals do unless that very computation was
        done already (then the full search)."""
        spec = self._table(op).get(cop)
        if spec is None:
            return False
        if self.lv.values and spec.min_args <= 3 and not self.cfg.restricted:
            fill = _fills(spec.min_args)[spec.partial]  # small literals: 2 ** 3 fits any limit
            key = computation_key(op, cop, list(fill), spec.commutative)
            if key not in self.block.scope.seen and not self._degenerate(op, cop, fill):  # type: ignore[union-attr]
                return True
        return self._args_ok(op, cop, ())

    def _witnesses(self) -> list[tuple]:
        """Candidate next arguments when looking for *a* completion: fresh literals, then names."""
        hit = self.memo.get("witnesses")
        if hit is None:
            literals = self.cfg.grounded_args if self.cfg.restricted else [("num", p, q) for p, q in _FRESH]
            hit = [*literals] + [("var", n) for n in self._readable()]
            self.memo["witnesses"] = hit
        return hit

    def _readable(self) -> list[str]:
        return sorted(self.block.scope.defs) if self.block is not None else []

    def _percent(self, op: str, base: str, rate: str) -> tuple | None:
        """(value or None, key) of a percent step, or None when the checker or runtime rejects it."""
        cache = self.block.cache  # type: ignore[union-attr]
        ck = ("percent", op, base, rate)
        hit = cache.get(ck, False)
        if hit is False:
            hit = cache[ck] = self._percent_uncached(op, base, rate)
        return hit  # type: ignore[return-value]

    def _percent_uncached(self, op: str, base: str, rate: str) -> tuple | None:
        if not self.lv.values:
            return None, None
        if self._const(("var", rate)) == PERCENT_IDENTITY[op]:
            return None  # E401
        scope = self.block.scope  # type: ignore[union-attr]
        key = computation_key(op, None, [scope.name_key(base), scope.name_key(rate)], False)
        if key in scope.seen:
            return None
        b, r = self.block.values.get(base), self.block.values.get(rate)  # type: ignore[union-attr]
        if b is None or r is None:
            return None, key
        if rate_error(op, r) is not None:
            return None  # E503
        if max(b.numerator.bit_length(), b.denominator.bit_length()) + \
                max(r.numerator.bit_length(), r.denominator.bit_length()) + 64 < self.cfg.limits.max_value_digits * 3.3:
            return None, key
        try:
            return _env(self.cfg.limits).bound(PERCENT_OPS[op](b, r), None), key
        except ExecError:
            return None

    def _percent_ops(self) -> list[str]:
        hit = self.memo.get("percent_ops")
        if hit is None:
            names = self._readable()
            hit = [op for op in sorted(PERCENT_OPS) if self._offers(op)
                   and any(self._percent(op, b, r) is not None for b in names for r in names)]
            self.memo["percent_ops"] = hit
        return hit

    def _known_zero(self, name: str) -> bool:
        """An amount the checker calls a no-op (E401): a name whose constant is 0."""
        d = self.block.scope.defs.get(name)  # type: ignore[union-attr]
        return d is not None and d.const == 0

    def _sources(self) -> list[str]:
        """What consume and transfer may take from: any defined name; under ``values`` one that can give
        some amount, not a known zero (E401) and not more than it holds (E502)."""
        names = self._readable()
        if not self.lv.values:
            return names
        hit = self.memo.get("sources")
        if hit is None:
            vals = self.block.values  # type: ignore[union-attr]
            zero = any(vals.get(m) == 0 and not self._known_zero(m) for m in names)  # e.g. a computed 0
            hit = [n for n in names if (h := vals.get(n)) is None or (h > 0 and self._can_take(h)) or (h == 0 and zero)]
            self.memo["sources"] = hit
        return hit

    def _can_take(self, held: Exact) -> bool:
        """Some amount in (0, held] can be written: any literal, or under grounding a grounded one
        or a name holding such an amount."""
        if not self.cfg.restricted:
            return True
        if any(0 < Exact(p, q) <= held for _, p, q in self.cfg.grounded_args):
            return True
        vals = self.block.values  # type: ignore[union-attr]
        return any(0 < v <= held and not self._known_zero(m) for m, v in vals.items())

    def _held(self) -> Exact | None:
        src = self.field("from_entity") or self.field("entity")
        return self.block.values.get(src) if src is not None and self.block else None  # type: ignore[arg-type]

    # ---------------------------------------------------------------- decisions

    def allowed(self, decisions: tuple, kernel: int | None = None) -> frozenset:
        """The allowed ones among ``decisions``; ``kernel`` (an int key) saves hashing the tuple."""
        key = decisions if kernel is None else kernel
        hit = self.memo.get(key)
        if hit is None:
            hit = self.memo[key] = frozenset(d for d in decisions if self._passes(d))
        return hit

    def _allows(self, d: tuple) -> bool:
        kind = d[0]
        b = self.block
        if kind == "block":
            return b is None or b.has_query or not self.lv.ops
        if kind == "end":
            return b is not None and (b.has_query or not self.lv.ops)
        if kind == "step":
            return b is not None and (not b.has_query or not self.lv.ops)
        if kind == "rule":
            return self._rule_ok(d[1])
        if kind == "choice":  # an op slot written as literal choices (automaton.py): its allow-list
            return d[2] in self.slot(d[1])[1]  # type: ignore[operator]
        if kind in ("more", "close"):
            args = self.field("args", ())
            op, cop = self.op, self.field("compute_op")
            spec = self._table(op).get(cop) if op and cop else None  # type: ignore[arg-type]
            if spec is None:
                return not self.lv.ops
            n = len(args)  # type: ignore[arg-type]
            if kind == "close":
                if not self.lv.ops and not self.lv.values:
                    return True
                return n >= spec.min_args and self._valid(op, cop, args)  # type: ignore[arg-type]
            if self.lv.ops and spec.max_args is not None and n >= spec.max_args:
                return False
            if n + 1 >= spec.min_args and not self.cfg.restricted and self._quick_valid(op, cop, args + _fills(1)[0]):  # type: ignore[arg-type,operator]
                return True  # a fresh literal completes it
            return any(self._args_ok(op, cop, args + (c,), LOOKAHEAD - 1) for c in self._witnesses())  # type: ignore[arg-type,operator]
        raise ValueError(f"unknown decision {d}")

    def _rule_ok(self, rule: str) -> bool:
        op, step = _rule_info(rule)
        if op is None:  # the op is the slot's own choice (percent ops); base and rate are names
            return bool(self._percent_ops()) if self.lv.ops or self.lv.values else \
                not self.lv.scope or bool(self._readable())
        if not self._offers(op):
            return False
        b = self.block
        if op == "init":
            if "source" in automaton_rule_fields(rule):
                return b is not None and b.composed and b.index >= 1
            return not (self.lv.grounding and self.cfg.grounded is not None and not self.cfg.grounded)
        if op == "query":  # some name to return: one computed or changed (values), else any defined one
            return bool(self._queryable()) if self.lv.values else not self.lv.scope or bool(self._readable())
        if op in ("transfer", "consume"):
            return not self.lv.scope or bool(self._sources())
        return True

    def _queryable(self) -> list[str]:
        b = self.block
        if b is None:
            return []
        return sorted(n for n, d in b.scope.defs.items() if d.kind == "computed" or d.changed)

    # ---------------------------------------------------------------- slots

    def slot(self, slot: Slot) -> tuple[str, object]:
        """("allow", strings) | ("deny", names) | ("name", None) | ("num", NumSpec)."""
        hit = self.memo.get(slot)
        if hit is None:
            hit = self._slot(slot)
            for rule in self.cfg.levels.rules:  # the registered levels' refusals (levels.py)
                hit = rule.narrow(self, slot, hit)
            self.memo[slot] = hit
        return hit

    def _slot(self, s: Slot) -> tuple[str, object]:
        lv, b = self.lv, self.block
        if s.role == "expert":
            return ("allow", tuple(sorted(registry.experts()))) if lv.ops else ("name", None)
        if s.role == "op":
            if s.key == "op":
                return "allow", tuple(self._percent_ops() if lv.ops or lv.values else sorted(PERCENT_OPS))
            op = self.op or s.op
            table = self._table(op)  # type: ignore[arg-type]
            spelled = _spelled(s.terminal)  # an expert's op the grammar does not spell is not written
            ops = [c for c in sorted(table) if c in spelled
                   and (not (lv.ops or lv.values) or self._empty_ok(op, c))]  # type: ignore[arg-type]
            return "allow", tuple(ops)
        if s.role == "ref":
            n = b.index if b is not None else 0
            return "allow", tuple(["prev.result"] * (n >= 1) + [f"sub{i}.result" for i in range(n)])
        if s.role == "def":
            return ("deny", frozenset(b.scope.defs) if b else frozenset()) if lv.scope else ("name", None)
        if s.role == "target":  # a defined name or a new one; a transfer to its own source is E401
            src = self.field("from_entity")
            deny = {src} if lv.values and src is not None else set()
            if lv.values and (self.op or s.op) == "add_entity" and b is not None:  # onto a known 0: E401
                deny |= {n for n in b.scope.defs if self._known_zero(n)}
            return ("deny", frozenset(deny)) if deny else ("name", None)
        if s.role == "use":
            if not lv.scope:
                return "name", None
            return "allow", tuple(self._use_names(s))
        if s.role == "num":
            if s.key == "value" and self.lv.grounding and self.cfg.grounded is not None:
                return "allow", tuple(sorted(self.cfg.grounded))
            return "num", self._num_spec(s)
        raise ValueError(f"unknown slot role {s.role}")

    def _use_names(self, s: Slot) -> list[str]:
        op = self.op or s.op
        names = self._readable()
        if not self.lv.values:
            return names
        if s.key == "args":
            cop, args = self.field("compute_op"), self.field("args", ())
            return self._arg_names(op, cop, args, names)  # type: ignore[arg-type]
        if s.key == "var":  # query
            return self._queryable()
        if s.key == "base":
            return [n for n in names if any(self._percent(op, n, r) is not None for r in names)]  # type: ignore[arg-type]
        if s.key == "rate":
            base = self.field("base")
            return [r for r in names if self._percent(op, base, r) is not None]  # type: ignore[arg-type]
        if s.key in ("from_entity", "entity"):
            return self._sources()
        if s.key == "amount":
            vals = self.block.values  # type: ignore[union-attr]
            if op == "add_entity":  # no negative amount (E503)
                if self.field("entity") not in self.block.scope.defs:  # type: ignore[union-attr]
                    return [n for n in names if n not in vals or vals[n] >= 0]  # creates it holding the amount
                return [n for n in names if not self._known_zero(n)
                        and (n not in vals or (vals[n] >= 0 and self._amount_ok(vals[n])))]
            held = self._held()
            return [n for n in names if n in vals and ZERO <= vals[n] <= (held if held is not None else vals[n])
                    and not self._known_zero(n) and self._amount_ok(vals[n])]
        return names

    def _receiver(self) -> str | None:
        return self.field("to_entity") or (self.field("entity") if self.op == "add_entity" else None)  # type: ignore[return-value]

    def _giver(self) -> str | None:
        return self.field("from_entity") or (self.field("entity") if self.op == "consume" else None)  # type: ignore[return-value]

    def _amount_ok(self, amount: Exact) -> bool:
        """The receiver (a transfer's to_entity, add_entity's entity) and the giver (a transfer's
        from_entity, consume's entity) must stay within the size limit, as the runtime's Env.set holds them."""
        if self.block is None:
            return True
        env, vals = _env(self.cfg.limits), self.block.values
        to, giver = self._receiver(), self._giver()
        try:
            if to is not None and to in vals:
                env.bound(vals[to] + amount, None)
            if giver is not None and giver in vals:
                env.bound(vals[giver] - amount, None)
        except ExecError:
            return False
        return True

    def _num_spec(self, s: Slot) -> NumSpec:
        if s.key == "value":
            return NumSpec(allow=self.cfg.grounded if self.lv.grounding else None)
        spec = self._value_spec(s)
        if not self.cfg.restricted:
            return spec
        # grounding: a literal argument or amount is a value written in, as an init's (W701)
        return NumSpec(allow=frozenset(render(Exact(p, q)) for _, p, q in self.cfg.grounded_args
                                       if spec.complete_ok(render(Exact(p, q))) is not None))

    def _value_spec(self, s: Slot) -> NumSpec:
        op = self.op or s.op
        if not self.lv.values:
            return NumSpec()
        if s.key == "args":
            cop, args = self.field("compute_op"), self.field("args", ())
            spec = self._table(op).get(cop)  # type: ignore[arg-type]
            # refusals are finitely many values unless the op is partial, sizes are near the limit,
            # or it rounds (rounding refuses every integer)
            finite = (spec is None or not spec.partial) and cop not in ROUNDING and all(
                (x := self._read(a)) is None or max(x.numerator.bit_length(), x.denominator.bit_length()) < 800
                for a in args)  # type: ignore[union-attr]
            return NumSpec(accept=lambda v: self._args_ok(op, cop, args + (literal_key(v),)),  # type: ignore[arg-type,operator]
                           finite=finite)
        if s.key == "amount":  # 0 changes nothing (E401), except where add_entity creates the variable
            if op == "add_entity" and self.field("entity") not in self.block.scope.defs:  # type: ignore[union-attr]
                return NumSpec(lo=ZERO)  # no negative amount (E503)
            accept = lambda v: v != 0 and self._amount_ok(v)  # noqa: E731
            if op == "add_entity":
                return NumSpec(lo=ZERO, accept=accept)
            return NumSpec(lo=ZERO, hi=self._held(), accept=accept)
        return NumSpec()

    # ---------------------------------------------------------------- transitions

    def complete(self, slot: Slot, text: str) -> Guide | None:
        key = ("complete", slot, text)
        hit = self.memo.get(key, False)
        if hit is False:
            hit = self._complete(slot, text)
            self.memo[key] = hit
        return hit  # type: ignore[return-value]

    def _complete(self, s: Slot, text: str) -> Guide | None:
        kind, spec = self.slot(s)
        value: object = text
        if kind == "allow":
            if text not in spec:  # type: ignore[operator]
                return None
            if s.role == "num":
                value = canonical_value(text)
        if kind == "deny" and (text in spec or len(text) > NAME_CAP):  # type: ignore[operator]
            return None
        if kind == "name" and len(text) > NAME_CAP:
            return None
        if kind == "num":
            value = spec.complete_ok(text)  # type: ignore[union-attr]
            if value is None:
                return None
        if s.role == "expert":
            b = BlockState(len(self.results), self.block.composed if self.block else False,
                           registry.get(text), text, Scope(self.cfg.stated.__contains__))
            return self._with(block=b)
        op, fields = self.draft if self.draft else (s.op, ())
        if s.role == "op" and s.key == "op":
            return self._with(draft=(text, fields))
        if s.role in ("use", "num") and s.key == "args":
            arg = ("var", text) if s.role == "use" else literal_key(value)  # type: ignore[arg-type]
            args = dict(fields).get("args", ())
            fields = tuple((k, v) for k, v in fields if k != "args") + (("args", args + (arg,)),)  # type: ignore[operator]
            return self._with(draft=(op or s.op, fields))
        if s.key == "amount":
            value = ("var", text) if s.role == "use" else literal_key(value)  # type: ignore[arg-type]
        return self._with(draft=(op or s.op, fields + ((s.key, value),)))

    def event(self, e: object) -> Guide:
        hit = self.memo.get(("event", e))
        if hit is None:
            hit = self._event(e)
            self.memo[("event", e)] = hit
        return hit

    def _event(self, e: object) -> Guide:
        if e == "start_step":
            return self._with(draft=(None, ()))
        if e == "end_step":
            return self._commit()
        if isinstance(e, tuple) and e[0] == "choice":
            done = self.complete(e[1], e[2])
            if done is None:
                raise ValueError(f"choice {e[2]!r} was not allowed")
            return done
        if isinstance(e, tuple) and e[0] == "block":
            results = self.results
            if self.block is not None:
                results = results + (self.block.answer,)
            return Guide(self.cfg, results, BlockState(len(results), e[1]), None)
        raise ValueError(f"unknown event {e}")

    def _commit(self) -> Guide:
        """The step is written: the scope defines, numbers and changes what it names, as in the
        checker; the expert's handler runs it for the runtime values."""
        b = self.block.copy()  # type: ignore[union-attr]
        step = self._draft_step()
        b.steps += 1
        compute_op = step.__dict__.get("compute_op")
        spec = None if compute_op is None else self._table(step.op).get(compute_op)
        b.scope.advance(step, b.scope.computation(step, spec))
        if type(step) is QueryStep:
            b.has_query = True
            b.answer = b.values.get(step.var.name)
        elif self.lv.values:  # the only level that reads runtime values
            self._run(b.values, step, spec)
        return self._with(block=b, draft=None)

    def _draft_step(self) -> Step:
        """The written step as an IR step; each field converted by its kind, read off the step
        class's annotations as the parser does (its values checked already by the slots)."""
        op, fields = self.draft  # type: ignore[misc]
        cls = STEP_TYPES[op]
        values: dict[str, object] = {"op": op}
        for key, value in fields:
            kind = field_kind(cls, key)
            if kind == "args":
                value = [_arg(a) for a in value]
            elif kind == "arg":
                value = _arg(value)
            elif kind == "num":
                value = make(Num, value=value)
            elif kind == "ref":
                value = make(Ref, block=value.split(".")[0])
            elif kind == "name":
                value = make(Var, name=value)
            values[key] = value  # op_name: as written
        return make(cls, **values)

    def _run(self, values: dict[str, Exact], step: Step, spec: OpSpec | None) -> None:
        """Run ``step`` on the runtime values. What it defines or changes becomes unknown where a
        value it reads is unknown (a name the scope level let through, an earlier answer unknown)
        or where it cannot run: an arity the ops level did not check, a runtime error."""
        written = names_in(step, step.defines + step.mutates)
        args = step.__dict__.get("args")
        fits = args is None or spec is not None and spec.min_args <= len(args) and (
            spec.max_args is None or len(args) <= spec.max_args)
        if fits and all(v.name in values for v in names_in(step, step.reads)):
            env = Env(self.cfg.limits, values, list(self.results))
            try:
                self._expert(step.op).run(step, env)
            except ExecError:
                pass
            else:
                for var in written:
                    if values.get(var.name, 0) is None:  # an init from an earlier block's unknown answer
                        del values[var.name]
                return
        for var in written:
            values.pop(var.name, None)

    def end_ok(self) -> bool:
        return self._passes(_END)

    def _passes(self, decision: tuple) -> bool:
        """The built-in levels allow ``decision`` and so does every registered level (levels.py)."""
        rules = self.cfg.levels.rules  # usually none: skip building a generator on this hot path
        return self._allows(decision) and (not rules or all(r.allows(self, decision) for r in rules))


_END = ("end",)


def _arg(arg: tuple) -> Var | Num:
    """A draft argument, ``("var", name)`` or a literal key, as an IR arg."""
    if arg[0] == "var":
        return make(Var, name=arg[1])
    return make(Num, value=_SMALL.get((arg[1], arg[2])) or Exact(arg[1], arg[2]))


@cache
def _spelled(terminal: str) -> frozenset[str]:
    """The ops an op terminal spells (COMPUTE_OP, COMPARE_OP)."""
    return frozenset(terminal_choices(terminal))


_RULES: dict[str, tuple[str | None, str]] = {}
_RULE_FIELDS: dict[str, frozenset[str]] = {}


def _rule_info(rule: str) -> tuple[str | None, str]:
    hit = _RULES.get(rule)
    if hit is None:
        from .automaton import automaton

        for surface in SURFACES:
            _RULES.update(automaton(surface).rule_info)
        hit = _RULES.get(rule)
        if hit is None:
            raise ValueError(f"unknown step rule {rule}")
    return hit


def automaton_rule_fields(rule: str) -> frozenset[str]:
    hit = _RULE_FIELDS.get(rule)
    if hit is None:
        from .automaton import automaton

        for surface in SURFACES:
            _RULE_FIELDS.update(automaton(surface).rule_fields)
        hit = _RULE_FIELDS[rule]
    return hit
