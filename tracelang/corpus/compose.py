"""Records from templates: sample a chain of templates, render its question, build and verify its trace.

A chain is one template, or several where each later template takes the earlier one's answer as
one of its inputs (``feed``). The fed input's fact is left out of the text (the earlier story
states it), the people and items they share stay the same, and the trace is a composed program
whose later block starts from ``prev.result``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate
from random import Random

from ..ir import Program, make
from ..numbers import Exact
from ..record import content_id, make_record
from .library import Library
from .pools import PoolEntry
from .skeleton import program_text
from .template import Template
from .text import Renderer, Text
from .verify import nice, verify

# Variables a later template takes over from an earlier one (same pool): the main person always; the
# item when the fed value counts items ("count.*" kinds: 48 muffins baked are the muffins boxed).
SHARED = ("name", "item")
MAX_TRIES = 60  # draws for a template on its own
FED_TRIES = 20  # draws for a template whose input is fixed by an earlier answer


@dataclass(frozen=True)
class Style:
    """Surface choices, tuned so that the corpus reads like GSM-8K (see spec/templates.md)."""

    chain_lengths: tuple[float, ...] = (0.40, 0.42, 0.18)  # chance of 1, 2, 3 templates
    when_p: float = 0.35  # the last fact becomes an "if/when" clause of the question
    distractor_p: tuple[float, float] = (0.45, 0.12)  # chance of at least one, of a second
    local_distractor_p: float = 0.5  # a template's own distractor rather than a shared one
    words_p: float = 0.15  # a word-able number slot is written as words (with the cue words of constants,
    # "half", "twice", and sentence starts, about 60% of questions have number words; GSM-8K: 54%)


@dataclass
class Part:
    template: Template
    env: dict
    fed: str | None
    expected: Exact


@dataclass
class TemplateSource:
    """Makes template records; ``make(rng)`` returns one verified record or None (and counts why)."""

    library: Library
    style: Style = field(default_factory=Style)
    rejected: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        lib = self.library
        self._all = lib.templates
        self._all_w = list(accumulate(t.weight for t in self._all))
        self._start = lib.starters
        self._start_w = list(accumulate(t.weight for t in self._start))
        self._feed_fact = {t.id: {v: _fact_of(t, v) for v in t.feed} for t in lib.templates}
        self._lengths = list(accumulate(self.style.chain_lengths))

    # ------------------------------------------------------------------ sampling

    def chain(self, rng: Random) -> list[Part] | None:
        length = rng.choices(range(1, len(self._lengths) + 1), cum_weights=self._lengths)[0]
        if length > 1 and self._start:
            first = rng.choices(self._start, cum_weights=self._start_w)[0]
        else:
            first = rng.choices(self._all, cum_weights=self._all_w)[0]
        parts: list[Part] = []
        state: tuple[set, dict] = (set(), {})
        template, fed = first, None
        while True:
            if not self.extend(parts, template, fed, rng, state):
                return None
            if len(parts) >= length:
                return parts
            options = [o for o in self.library.consumers.get(template.output or "", ()) if o[0] is not template]
            if not options:
                return parts
            # A few consumers in random order: the first whose constraints accept the fed value.
            for _ in range(3):
                template, fed = options[rng.randrange(len(options))]
                if template._fixed_ok(self._fixed(template, fed, parts[-1].expected, state[1])):
                    break
            else:
                self.rejected[f"no-consumer:{parts[-1].template.id}"] += 1
                return None

    def extend(self, parts: list[Part], template: Template, fed: str | None, rng: Random,
               state: tuple[set, dict], tries: int | None = None) -> bool:
        """Sample ``template`` as the next part (fed the last part's answer when ``fed`` is given).
        ``state`` is the chain's (pool entries used, shared entries); False if no sample fits."""
        used, shared = state
        fixed = self._fixed(template, fed, parts[-1].expected, shared) if fed is not None else {}
        if tries is None:
            tries = MAX_TRIES if fed is None else FED_TRIES
        env = template.sample(rng, fixed, used, tries=tries)
        if env is None:
            self.rejected[f"constraints:{template.id}"] += 1
            return False
        expected = template.expected(env)
        if not nice(expected, template.decimals):
            self.rejected[f"answer-not-nice:{template.id}"] += 1
            return False
        parts.append(Part(template, env, fed, expected))  # type: ignore[arg-type]
        for name in SHARED:
            spec = template.vars.get(name)
            if spec is not None and spec.pool is not None:
                shared.setdefault((name, spec.pool.name), env[name])
        return True

    @staticmethod
    def _fixed(template: Template, fed: str, value: Exact, shared: dict) -> dict[str, object]:
        fixed: dict[str, object] = {fed: value}
        kind = template.feed[fed]
        for name in SHARED:
            if name == "item" and not kind.startswith("count"):
                continue
            spec = template.vars.get(name)
            if spec is not None and spec.pool is not None and (name, spec.pool.name) in shared:
                fixed[name] = shared[(name, spec.pool.name)]
        return fixed

    # ------------------------------------------------------------------ text

    def question(self, parts: list[Part], rng: Random) -> tuple[str, list[str]]:
        style = self.style
        sentences: list[tuple[Text, dict, dict]] = []
        clause: tuple[Text, dict, dict] | None = None
        last = len(parts) - 1
        for k, part in enumerate(parts):
            t = part.template
            keep = list(range(len(t.facts)))
            if part.fed is not None:
                keep.remove(self._feed_fact[t.id][part.fed])
            free = [i for i in keep if i in t.free]
            if len(free) > 1:
                moved = free[:]
                rng.shuffle(moved)
                where = dict(zip(free, moved, strict=True))
                keep = [where.get(i, i) for i in keep]
            if k == last and t.when and keep and keep[-1] == len(t.facts) - 1 and rng.random() < style.when_p:
                keep.pop()
                clause = (t.when[rng.randrange(len(t.when))], part.env, t.formats)
            for i in keep:
                alts = t.facts[i]
                sentences.append((alts[rng.randrange(len(alts))], part.env, t.formats))
        self._distract(parts, sentences, rng)
        out = Renderer(rng, style.words_p)
        text = [out.sentence(s, env, fmts) for s, env, fmts in sentences]
        t = parts[-1].template
        q = t.question[rng.randrange(len(t.question))]
        env, fmts = parts[-1].env, t.formats
        if clause is not None:
            head = out.sentence(*clause)
            tail = out.sentence(q, env, fmts, start=False)
            if isinstance(q.pieces[0], str):
                tail = tail[:1].lower() + tail[1:]
            text.append(f"{head}, {tail}")
        else:
            text.append(out.sentence(q, env, fmts))
        return " ".join(text), out.names

    def _distract(self, parts: list[Part], sentences: list, rng: Random) -> None:
        p_one, p_two = self.style.distractor_p
        count = (rng.random() < p_one) + (rng.random() < p_two)
        protagonist = next((p.env["name"] for p in parts if isinstance(p.env.get("name"), PoolEntry)), None)
        used = {id(v) for p in parts for v in p.env.values() if isinstance(v, PoolEntry)}
        for _ in range(count):
            part = parts[rng.randrange(len(parts))]
            local = part.template.distractors
            if local and rng.random() < self.style.local_distractor_p:
                item = (local[rng.randrange(len(local))], part.env, part.template.formats)
            elif self.library.distractors:
                d = self.library.distractors[rng.randrange(len(self.library.distractors))]
                drawn = d.sample(rng, protagonist, used)
                if drawn is None:
                    continue
                item = (drawn[0], drawn[1], {n: s.format for n, s in d.vars.items()})
            else:
                continue
            sentences.insert(rng.randint(1, max(1, len(sentences))), item)

    # ------------------------------------------------------------------ records

    @staticmethod
    def trace_text(parts: list[Part]) -> str:
        """The canonical text of ``program(parts)``, written from the skeletons' lines."""
        return program_text([(p.template.expert, p.template.skeleton.lines(p.env, p.fed)) for p in parts])

    def program(self, parts: list[Part]) -> Program:
        blocks = [p.template.skeleton.build(p.env, p.fed) for p in parts]
        return make(Program, composed=len(blocks) > 1, blocks=blocks)

    def make(self, rng: Random) -> dict | None:
        parts = self.chain(rng)
        if parts is None:
            return None
        return self.record(parts, rng)

    def record(self, parts: list[Part], rng: Random) -> dict | None:
        program = self.program(parts)
        answer, why = verify(program, [p.expected for p in parts])
        if answer is None:
            self.rejected[f"{why}:{'+'.join(p.template.id for p in parts)}"] += 1
            return None
        question, names = self.question(parts, rng)
        trace = self.trace_text(parts)
        ids = [p.template.id for p in parts]
        meta = {"templates": ids, "families": sorted({p.template.family for p in parts}), "names": names}
        return make_record(content_id("tpl", question, trace), question, trace, answer, program.blocks[0].expert,
                           "synthetic:template", meta)


def _fact_of(template: Template, var: str) -> int:
    """The fact that states a fed variable (lint makes sure there is exactly one)."""
    for i, alts in enumerate(template.facts):
        if any(var in a.vars for a in alts):
            return i
    raise ValueError(f"{template.where}: no fact states the fed variable `{var}`")
