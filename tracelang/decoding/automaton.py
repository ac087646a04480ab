"""A surface's canonical grammar as a character automaton, derived from ``grammar/trace.lark``.

Each surface's rule (``canonical`` for the YAML, ``compact``; after lark's EBNF -> BNF) is regular.
It is expanded into an NFA over bytes:
each terminal occurrence gets its own sub-automaton (literal strings as chains, regex terminals via
Python's own regex parser), rules become Thompson fragments, lark's left-recursive repetition helpers
become loops. Every terminal occurrence carries what the semantic layer needs:

- a *slot* for the open or chosen terminals the decoder constrains (``def``/``use``/``target``
  names, ``num`` literals, ``expert``, ``REF``, the op terminals), with the IR field it fills and the
  step's op. Both come from the grammar and the IR, never from a surface's text: the op from the
  step rule's name (``c_init``, ``k_transfer``), its leading literal or its op terminal; the field
  by kind and order (a rule's name slots fill its IR class's name fields in the IR's order, and so
  on for numbers, args, the op and the reference);
- a *decision* on its first character where the grammar branches and semantics may refuse a branch
  (another step, another list item, closing a list, which op, another block);
- an *event* the semantic layer reacts to (a step starts or ends, a block starts).

An op terminal that starts a step line (the compact surface: ``add(``, ``add_entity(``, ``pow(``,
``percent_of(``) is compiled as literal choices rather than a slot, so that lines starting alike
share a DFA state: each choice is a decision on its first character, and its event, which fills
the op slot, fires on the character after it (``add`` is known to be compute's only at ``(``).

The DFA is built lazily by subset construction over NFA kernels (the NFA states right after a
character); decisions filter the first-character moves, so the same kernel may lead to different
successors depending on what the semantic layer allows.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache

from lark.grammar import NonTerminal, Terminal

from .. import regex_tree
from ..build import field_kind
from ..grammar import SURFACES, GrammarError, grammar_hash, surface_parser, terminal_choices
from ..ir import STEP_TYPES, step_fields

ASCII = range(128)

# The grammar's hook points (named in trace.lark's canonical section).
_ROLE_RULES = {"def": "def", "use": "use", "target": "target", "num": "num", "expert": "expert"}
_OP_TERMINALS = {"COMPUTE_OP", "COMPARE_OP", "PERCENT_OP"}
# The kind of IR field (build.field_kind) each slot symbol fills.
_SYMBOL_KINDS = {"def": "name", "use": "name", "target": "name", "num": "num", "REF": "ref"}
_OP_WORD = re.compile(r"[a-z_]+")


@dataclass(frozen=True, eq=False)
class Slot:
    """A constrained terminal occurrence: what fills it and where it goes in the IR.

    Interned (``Slot.make``): equal slots are one object, so hashing is by identity (slots key
    every cache of the semantic layer, on the hot path)."""

    role: str  # def | use | target | num | expert | ref | op
    key: str  # IR field (var, args, amount, compute_op, op, ...) or "expert"
    op: str | None  # the step's op when the rule fixes it (None for c_percent's own op slot)
    terminal: str
    step: str | None = None  # the IR step class the rule builds

    @property
    def fields(self) -> tuple:
        return (self.role, self.key, self.op, self.terminal, self.step)

    def __reduce__(self):  # unpickled slots are interned again
        return (Slot.make, self.fields)

    @staticmethod
    def make(*fields) -> Slot:
        slot = _SLOTS.get(fields)
        if slot is None:
            slot = _SLOTS[fields] = Slot(*fields)
        return slot


_SLOTS: dict[tuple, Slot] = {}


@dataclass
class Occurrence:
    id: int
    terminal: str
    literal: str | None
    slot: Slot | None = None
    decisions: tuple = ()  # all must be allowed to take the first character
    events: tuple = ()  # reported when the first character is consumed


@dataclass
class NFA:
    eps: list[list[int]] = field(default_factory=list)
    moves: list[list[tuple[frozenset[int], int]]] = field(default_factory=list)
    occ_of: list[int] = field(default_factory=list)  # occurrence of each node (-1: glue)
    first: list[bool] = field(default_factory=list)  # the node is its occurrence's start
    occurrences: list[Occurrence] = field(default_factory=list)
    exits: dict[int, tuple] = field(default_factory=dict)  # a choice's last node -> its deferred events
    start: int = 0
    final: int = 0

    def node(self, occ: int = -1) -> int:
        self.eps.append([])
        self.moves.append([])
        self.occ_of.append(occ)
        self.first.append(False)
        return len(self.eps) - 1


# ---------------------------------------------------------------- regex terminals -> NFA fragments


def _charset(items: list) -> frozenset[int]:
    chars: set[int] = set()
    negate = False
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            chars.add(arg)
        elif name == "RANGE":
            chars.update(range(arg[0], arg[1] + 1))
        elif name == "NEGATE":
            negate = True
        elif name == "CATEGORY":
            cat = str(arg)
            table = {"CATEGORY_DIGIT": "0123456789", "CATEGORY_SPACE": " \t\n\r\f\v",
                     "CATEGORY_WORD": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"}
            if cat not in table:
                raise GrammarError(f"unsupported regex category {cat}")
            chars.update(map(ord, table[cat]))
        else:
            raise GrammarError(f"unsupported regex class item {name}")
    out = frozenset(c for c in ASCII if c not in chars) if negate else frozenset(chars)
    return frozenset(c for c in out if c < 128)


def _regex_fragment(nfa: NFA, parsed, occ: int) -> tuple[int, int]:
    start = nfa.node(occ)
    cur = start
    for op, arg in parsed:
        name = str(op)
        if name in ("LITERAL", "NOT_LITERAL", "IN", "ANY"):
            cs = (frozenset([arg]) if name == "LITERAL" else
                  frozenset(c for c in ASCII if c != arg) if name == "NOT_LITERAL" else
                  _charset(arg) if name == "IN" else frozenset(c for c in ASCII if c != 10))
            nxt = nfa.node(occ)
            nfa.moves[cur].append((cs, nxt))
            cur = nxt
        elif name == "SUBPATTERN":
            s, e = _regex_fragment(nfa, arg[-1], occ)
            nfa.eps[cur].append(s)
            cur = e
        elif name == "BRANCH":
            end = nfa.node(occ)
            for alt in arg[1]:
                s, e = _regex_fragment(nfa, alt, occ)
                nfa.eps[cur].append(s)
                nfa.eps[e].append(end)
            cur = end
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            lo, hi, item = arg
            for _ in range(lo):
                s, e = _regex_fragment(nfa, item, occ)
                nfa.eps[cur].append(s)
                cur = e
            if hi == regex_tree.MAXREPEAT:
                s, e = _regex_fragment(nfa, item, occ)
                loop = nfa.node(occ)
                nfa.eps[cur].append(loop)
                nfa.eps[loop].append(s)
                nfa.eps[e].append(loop)
                cur = loop
            else:
                end = nfa.node(occ)
                for _ in range(hi - lo):
                    s, e = _regex_fragment(nfa, item, occ)
                    nfa.eps[cur].append(s)
                    nfa.eps[cur].append(end)
                    cur = e
                nfa.eps[cur].append(end)
                cur = end
        else:
            raise GrammarError(f"unsupported regex construct {name} in a canonical terminal")
    return start, cur


# ---------------------------------------------------------------- the canonical rule -> NFA


@dataclass
class _Ctx:
    rule: str | None = None  # the enclosing c_* step rule
    op: str | None = None
    step: str | None = None
    key: str | None = None
    role: str | None = None
    decisions: tuple = ()  # pending: attach to the next occurrence created
    events: tuple = ()
    head: bool = False  # the symbol starts a step line


class _Builder:
    def __init__(self, surface: str) -> None:
        parser = surface_parser(surface)
        self.start = SURFACES[surface]
        self.by_origin: dict[str, list[list]] = defaultdict(list)
        for rule in parser.rules:
            self.by_origin[rule.origin.name].append(rule.expansion)
        self.terms = {t.name: t.pattern for t in parser.terminals}
        self.nfa = NFA()
        self.rule_info: dict[str, tuple[str | None, str]] = {}  # step rule -> (op or None, IR class)
        self.rule_fields: dict[str, set[str]] = defaultdict(set)
        # The surface's step rule (its name ends in `_step`): each expansion holds one step rule.
        self.container = next(n for n in self.by_origin if n.endswith("_step") and self.contains(self.start, n))
        self.step_rules = {s.name for e in self.by_origin[self.container] for s in e
                           if isinstance(s, NonTerminal) and not s.name.startswith("__")}

    def contains(self, rule: str, target: str, seen: frozenset = frozenset()) -> bool:
        if rule in seen:
            return False
        for exp in self.by_origin.get(rule, []):
            for sym in exp:
                if sym.name == target or (isinstance(sym, NonTerminal)
                                          and self.contains(sym.name, target, seen | {rule})):
                    return True
        return False

    def terminal(self, name: str, ctx: _Ctx) -> tuple[int, int]:
        nfa = self.nfa
        pattern = self.terms[name]
        literal = pattern.value if pattern.type == "str" else None
        slot = None
        if name in _OP_TERMINALS and ctx.head:
            return self.choices(name, ctx)
        if name in _OP_TERMINALS:
            slot = Slot.make("op", ctx.key or "op", ctx.op, name, ctx.step)
        elif name == "REF":
            slot = Slot.make("ref", ctx.key or "source", ctx.op, name, ctx.step)
        elif ctx.role is not None:
            slot = Slot.make(ctx.role, ctx.key or ctx.role, ctx.op, name, ctx.step)
        if slot is not None and ctx.rule is not None:
            self.rule_fields[ctx.rule].add(slot.key)
        occ = Occurrence(len(nfa.occurrences), name, literal, slot, ctx.decisions, ctx.events)
        nfa.occurrences.append(occ)
        if literal is not None:
            start = cur = nfa.node(occ.id)
            for byte in literal.encode():
                nxt = nfa.node(occ.id)
                nfa.moves[cur].append((frozenset([byte]), nxt))
                cur = nxt
            end = cur
        else:
            inner, end = _regex_fragment(nfa, regex_tree.parse(pattern.to_regexp()), occ.id)
            # A regex may reach its first characters through empty moves (CANON_NUMBER's optional
            # sign). The occurrence starts at a node of its own that makes those first moves
            # directly, so that the decisions and events on its first character always apply.
            start = nfa.node(occ.id)
            reach, stack = {inner}, [inner]
            while stack:
                for m in nfa.eps[stack.pop()]:
                    if m not in reach:
                        reach.add(m)
                        stack.append(m)
            nfa.moves[start] = [mv for n in sorted(reach) for mv in nfa.moves[n]]
            if end in reach:
                nfa.eps[start].append(end)
        nfa.first[start] = True
        return start, end

    def choices(self, name: str, ctx: _Ctx) -> tuple[int, int]:
        """An op terminal at the start of a step line, as literal choices: each a decision on its
        first character and, on the character after it, the event that fills the op slot."""
        nfa = self.nfa
        slot = Slot.make("op", ctx.key or "op", ctx.op, name, ctx.step)
        if ctx.rule is not None:
            self.rule_fields[ctx.rule].add(slot.key)
        start, end = nfa.node(), nfa.node()
        for value in terminal_choices(name):
            choice = ("choice", slot, value)
            occ = Occurrence(len(nfa.occurrences), name, value, None, (*ctx.decisions, choice), ctx.events)
            nfa.occurrences.append(occ)
            first = cur = nfa.node(occ.id)
            nfa.first[first] = True
            for byte in value.encode():
                nxt = nfa.node(occ.id)
                nfa.moves[cur].append((frozenset([byte]), nxt))
                cur = nxt
            nfa.exits[cur] = (choice,)
            nfa.eps[start].append(first)
            nfa.eps[cur].append(end)
        return start, end

    def symbol(self, sym, ctx: _Ctx) -> tuple[int, int]:
        if isinstance(sym, Terminal):
            return self.terminal(sym.name, ctx)
        return self.rule(sym.name, ctx)

    def sequence(self, exp: list, ctx: _Ctx, rule: str) -> tuple[int, int]:
        nfa = self.nfa
        start = cur = nfa.node()
        keys = self.field_keys(rule, exp) if rule in self.step_rules else [ctx.key] * len(exp)
        after_list = False
        for i, sym in enumerate(exp):
            c = _Ctx(ctx.rule, ctx.op, ctx.step, keys[i], ctx.role)
            if i == 0:
                c.decisions, c.events, c.head = ctx.decisions, ctx.events, ctx.head
            if rule == self.container and isinstance(sym, NonTerminal) and sym.name in self.step_rules:
                c.rule, c.key, c.head = sym.name, None, i == 0
                c.op = self.rule_op(sym.name)
                c.step = self.rule_step(sym.name)
                self.rule_info[sym.name] = (c.op, c.step)
                c.decisions = (*c.decisions, ("rule", sym.name))
            if rule == self.container and i == 0:
                c.events = (*c.events, "start_step")
            if rule == self.container and i == len(exp) - 1:
                c.events = (*c.events, "end_step")
            if i == 0 and isinstance(sym, Terminal) and any(s.name == "expert" for s in exp):
                c.events = (*c.events, ("block", not rule.endswith("_single")))
            if after_list and isinstance(sym, Terminal):
                c.decisions = (*c.decisions, ("close", ctx.rule))
            if isinstance(sym, NonTerminal) and sym.name in _ROLE_RULES:
                c.role = _ROLE_RULES[sym.name]
                if sym.name == "expert":
                    c.key = "expert"
            s, e = self.symbol(sym, c)
            nfa.eps[cur].append(s)
            cur = e
            after_list = keys[i] is not None and ctx.step is not None and self.is_list(sym, keys[i], ctx.step)
        return start, cur

    def is_list(self, sym, key: str, step: str) -> bool:
        """The symbol writes (the end of) a list field's items: a closing decision follows it."""
        return isinstance(sym, NonTerminal) and field_kind(_step_class(step), key) == "args" and (
            sym.name == "arg" or (sym.name.startswith("__") and self.contains(sym.name, "arg")))

    def field_keys(self, rule: str, exp: list) -> list[str | None]:
        """The IR field each symbol of a step rule's expansion fills: the slots of one kind fill
        that kind's fields of the rule's IR class in the IR's order (a list's helper continues it)."""
        cls = _step_class(self.rule_step(rule))
        queues: dict[str, list[str]] = defaultdict(list)
        for f in step_fields(cls):
            queues[field_kind(cls, f)].append(f)
        lists = tuple(queues.get("args", ()))
        out: list[str | None] = []
        for sym in exp:
            name = sym.name
            if name in _OP_TERMINALS:
                kind = "op_name" if queues.get("op_name") else None
                out.append(queues["op_name"].pop(0) if kind else "op")
                continue
            if name.startswith("__") and self.contains(name, "arg") and out and out[-1] in lists:
                out.append(out[-1])  # the rest of a list
                continue
            kind = "args" if name == "arg" and lists else "arg" if name == "arg" else _SYMBOL_KINDS.get(name)
            if kind is None:
                out.append(None)  # literal text
                continue
            if not queues.get(kind):
                raise GrammarError(f"rule {rule}: a {kind} slot more than {cls.__name__} has fields of that kind")
            out.append(queues[kind].pop(0))
        return out

    def rule_op(self, rule: str) -> str | None:
        """The op a step rule writes: named by the rule (``c_init``, ``k_add_entity``), else by its
        leading literal (``"init, var: "``, ``"init("``) or its op terminal (COMPUTE_OP -> compute);
        None when the op terminal's value is the op itself (the percent ops)."""
        named = rule.partition("_")[2]
        if named in STEP_TYPES:
            return named
        exp = self.by_origin[rule][0]
        pattern = self.terms.get(exp[0].name)
        if pattern is not None and pattern.type == "str":
            m = _OP_WORD.match(pattern.value)
            if m and m.group() in STEP_TYPES:
                return m.group()
        for sym in exp:
            if sym.name in _OP_TERMINALS:
                op = sym.name[:-3].lower()
                if op in STEP_TYPES:
                    return op
                if all(c in STEP_TYPES for c in terminal_choices(sym.name)):
                    return None
        raise GrammarError(f"rule {rule}: no op (name it c_<op>, start it with the op, or give it an op terminal)")

    def rule_step(self, rule: str) -> str:
        """The IR class a step rule builds: from its literal op, or from its op terminal's choices."""
        op = self.rule_op(rule)
        if op is not None:
            return STEP_TYPES[op].__name__
        first = self.by_origin[rule][0][0].name
        classes = {STEP_TYPES[c].__name__ for c in terminal_choices(first) if c in STEP_TYPES}
        if len(classes) != 1:
            raise GrammarError(f"rule {rule}: its op terminal {first} names no single step class")
        return classes.pop()

    def rule(self, name: str, ctx: _Ctx) -> tuple[int, int]:
        nfa = self.nfa
        exps = self.by_origin[name]
        base = [e for e in exps if not (e and e[0].name == name)]
        tails = [e[1:] for e in exps if e and e[0].name == name]
        start, loop = nfa.node(), nfa.node()
        kind = None
        if tails:  # a repetition helper: every iteration, the first one too, is a decision
            kind = "step" if self.contains(name, self.container) and not self.contains(name, "expert") else \
                "block" if self.contains(name, "expert") else "more"
            decision = (kind, ctx.rule) if kind == "more" else (kind,)
            if [list(e) for e in base] == [list(e) for e in tails] and not ctx.decisions and not ctx.events:
                # X+ : one copy of X serves the first and every later iteration (fewer DFA states)
                c = _Ctx(ctx.rule, ctx.op, ctx.step, ctx.key, ctx.role, (decision,), ctx.events)
                for exp in base:
                    s, e = self.sequence(exp, c, name)
                    nfa.eps[start].append(s)
                    nfa.eps[loop].append(s)
                    nfa.eps[e].append(loop)
                end = nfa.node()
                nfa.eps[loop].append(end)
                return start, end
        for exp in base:
            c = ctx if kind is None else _Ctx(ctx.rule, ctx.op, ctx.step, ctx.key, ctx.role,
                                               (*ctx.decisions, decision), ctx.events)
            s, e = self.sequence(exp, c, name)
            nfa.eps[start].append(s)
            nfa.eps[e].append(loop)
        if not tails:
            return start, loop
        for exp in tails:
            c = _Ctx(ctx.rule, ctx.op, ctx.step, ctx.key, ctx.role, (decision,))
            s, e = self.sequence(exp, c, name)
            nfa.eps[loop].append(s)
            nfa.eps[e].append(loop)
        end = nfa.node()
        nfa.eps[loop].append(end)
        return start, end

    def build(self) -> NFA:
        start, end = self.rule(self.start, _Ctx())
        self.nfa.start, self.nfa.final = start, end
        self.check_keys()
        return self.nfa

    def check_keys(self) -> None:
        """Every slot's field must be a field of its op's IR class: the grammar and the IR agree."""
        for occ in self.nfa.occurrences:
            slot = occ.slot
            if slot is None or slot.role == "expert":
                continue
            if slot.key == "op":
                continue
            fields = step_fields(_step_class(slot.step))  # type: ignore[arg-type]
            if slot.key not in fields:
                raise GrammarError(f"the grammar puts {slot.key!r} on `{slot.op}`, whose fields are {fields}")


@cache
def _step_class(name: str) -> type:
    return next(c for c in set(STEP_TYPES.values()) if c.__name__ == name)


# ---------------------------------------------------------------- lazy DFA


@dataclass
class Kernel:
    nodes: frozenset[int]
    closure: frozenset[int]
    accepting: bool
    slot: Slot | None  # set when every node belongs to occurrences of one slot
    slot_occs: frozenset[int]
    decisions: tuple  # decision keys on first-character moves out of the closure
    chars: frozenset[int]  # bytes with some move out of the closure (before decisions)
    cont: frozenset[int]  # bytes that continue the current slot


class Automaton:
    """Lazy DFA over NFA kernels; transitions depend on the set of allowed decisions."""

    def __init__(self, surface: str = "yaml") -> None:
        builder = _Builder(surface)
        self.surface = surface
        self.nfa = builder.build()
        self.rule_info = builder.rule_info
        self.rule_fields = {r: frozenset(f) for r, f in builder.rule_fields.items()}
        self.hash = grammar_hash()
        self.exit_reach = {n: self._closure(frozenset([n])) for n in self.nfa.exits}
        self.kernels: list[Kernel] = []
        self.index: dict[frozenset[int], int] = {}
        self.trans: dict[tuple[int, frozenset, int], tuple[int, tuple] | None] = {}
        self.start = self.intern(frozenset([self.nfa.start]))

    def _closure(self, nodes: frozenset[int]) -> frozenset[int]:
        seen = set(nodes)
        stack = list(nodes)
        eps = self.nfa.eps
        while stack:
            for m in eps[stack.pop()]:
                if m not in seen:
                    seen.add(m)
                    stack.append(m)
        return frozenset(seen)

    def intern(self, nodes: frozenset[int]) -> int:
        kid = self.index.get(nodes)
        if kid is not None:
            return kid
        nfa = self.nfa
        closure = self._closure(nodes)
        occs = {nfa.occ_of[n] for n in nodes}
        slots = {nfa.occurrences[o].slot if o >= 0 else None for o in occs}
        slot = next(iter(slots)) if len(slots) == 1 else None
        if len(slots) > 1 and any(s is not None for s in slots):
            raise GrammarError(f"ambiguous slot in the canonical grammar: {slots}")
        decisions: list = []
        chars: set[int] = set()
        cont: set[int] = set()
        for n in closure:
            for cs, _ in nfa.moves[n]:
                chars |= cs
                if slot is not None and nfa.occ_of[n] in occs and not nfa.first[n]:
                    cont |= cs
            if nfa.first[n] and nfa.moves[n]:
                decisions.extend(d for d in nfa.occurrences[nfa.occ_of[n]].decisions if d not in decisions)
        if slot is not None and cont & (chars - cont):
            pass  # a continuation char also starts what follows: resolved by maximal munch below
        kernel = Kernel(nodes, closure, nfa.final in closure, slot, frozenset(occs) if slot else frozenset(),
                        tuple(decisions), frozenset(chars), frozenset(cont))
        self.kernels.append(kernel)
        self.index[nodes] = len(self.kernels) - 1
        return len(self.kernels) - 1

    def move(self, kid: int, byte: int, allowed: frozenset) -> tuple[int, tuple] | None:
        """The kernel after ``byte`` and the events its consumption fires; None if dead.

        Inside a slot, a byte that continues the slot stays in it (maximal munch: a name never ends
        where another name character follows).
        """
        key = (kid, allowed, byte)
        hit = self.trans.get(key, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        nfa = self.nfa
        k = self.kernels[kid]
        out: set[int] = set()
        events: list = []
        stay = k.slot is not None and byte in k.cont
        ended = [(self.exit_reach[p], nfa.exits[p]) for p in k.nodes if p in nfa.exits]
        for n in k.closure:
            occ = nfa.occ_of[n]
            if stay and occ not in k.slot_occs:
                continue
            for cs, dst in nfa.moves[n]:
                if byte not in cs:
                    continue
                if nfa.first[n]:
                    o = nfa.occurrences[occ]
                    if any(d not in allowed for d in o.decisions):
                        continue
                    for reach, deferred in ended:  # leaving a choice that ended here: it was the one
                        if n in reach:
                            events.extend(e for e in deferred if e not in events)
                    events.extend(e for e in o.events if e not in events)
                out.add(dst)
        result = (self.intern(frozenset(out)), tuple(events)) if out else None
        self.trans[key] = result
        return result


@cache
def automaton(surface: str = "yaml") -> Automaton:
    return Automaton(surface)
