"""``tracelang corpus lint``: every template's trace checks clean, its constraints can be met, and
its phrasings state every quantity the trace reads.

Findings are errors (the template is broken) or warnings (it works but wastes draws or reads
oddly). Sampling is seeded, so lint says the same thing on every run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from random import Random

from ..checker import check
from ..diagnostics import UNGROUNDED_VALUE
from .compose import Part, TemplateSource
from .library import Library
from .template import Template
from .text import Renderer, Text
from .verify import verify

SATISFY_TRIES = 3000  # draws before the constraints are declared unsatisfiable
SAMPLES = 150  # verified instances per template
GROUND_SAMPLES = 25  # of which this many also have their question rendered and grounding checked
CHAIN_SAMPLES = 6  # samples per producer -> consumer pair
WASTE_WARNING = 0.5  # warn when more than this share of draws is rejected


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.message}"


def _vars(texts: list[Text], keep: set[str]) -> list[frozenset[str]]:
    return [t.vars & keep for t in texts]


def lint_template(t: Template, library: Library, seed: int = 0) -> list[Finding]:
    out: list[Finding] = []

    def error(msg: str) -> None:
        out.append(Finding("error", t.where, msg))

    def warn(msg: str) -> None:
        out.append(Finding("warning", t.where, msg))

    people = {n for n, s in t.vars.items() if s.pool is not None and s.pool.kind == "people"}
    read = {s.var for s in t.skeleton.slots}
    # What alternatives must agree on: the quantities and whatever the trace reads. Decorative words
    # (a shop, a town) may appear in one phrasing and not another.
    material = read | {n for n, s in t.vars.items() if s.is_number}
    # ---- phrasings: alternatives agree, and together they state every slot of the trace
    for i, alts in enumerate(t.facts):
        sets = _vars(alts, material)
        if len(set(sets)) > 1:
            error(f"fact {i + 1}: its phrasings use different variables "
                  f"({' vs '.join(sorted('{' + ', '.join(sorted(s)) + '}' for s in set(sets)))})")
    if len(set(_vars(t.question, material))) > 1:
        error("the question's phrasings use different variables")
    if t.when:
        last = t.facts[-1][0].vars
        for w in t.when:
            if w.vars & material != last & material:
                error(f"`when` phrase \"{w.source}\" must state what the last fact states "
                      f"({', '.join(sorted(last))})")
    stated = set().union(*(a.vars for alts in t.facts for a in alts), *(q.vars for q in t.question))
    consts = {n for n, spec in t.vars.items() if spec.kind == "const"}
    for var in sorted(read - stated - consts):
        error(f"the trace reads `{var}` but no phrasing states it")
    for var in sorted((read & consts) - stated):
        cue = t.vars[var].cue
        if not cue:
            error(f"the trace reads the constant `{var}`: give it a `cue` (the words that state it) or a slot")
            continue
        groups = t.facts + [t.question]
        if not any(all(any(c in a.source.lower() for c in cue) for a in alts) for alts in groups):
            error(f"constant `{var}`: no fact states it in every phrasing (cue: {', '.join(cue)})")
    used_elsewhere = set(t.answer.names).union(*(c.names for c in t.constraints))
    for spec in t.vars.values():
        if spec.expr is not None:
            used_elsewhere |= spec.expr.names
    distracting = set().union(*(d.vars for d in t.distractors)) if t.distractors else set()
    for var in sorted(set(t.vars) - read - stated - used_elsewhere - distracting):
        warn(f"var `{var}` is used nowhere")
    for d in t.distractors:
        if d.vars & read - people - {"item"}:
            warn(f"distractor \"{d.source}\" restates a quantity of the problem")
    # ---- chaining
    inits = t.skeleton.init_slots
    for var, kind in t.feed.items():
        holders = [i for i, alts in enumerate(t.facts) if var in alts[0].vars]
        if len(holders) != 1:
            error(f"feed `{var}`: exactly one fact may state it (found {len(holders)})")
        elif (t.facts[holders[0]][0].vars & material) - {var}:
            error(f"feed `{var}`: its fact states more than `{var}`, and is dropped when the value is fed")
        if var in t.question[0].vars or (t.when and var in t.when[0].vars and holders != [len(t.facts) - 1]):
            error(f"feed `{var}` appears in the question; a fed value has no number to show")
        if inits.get(var) != 1:
            error(f"feed `{var}`: the trace must take it in exactly one `init` as its whole value")
        if kind not in {x.output for x in library.templates}:
            warn(f"feed `{var}`: no template outputs `{kind}`")
    if (t.output or t.feed) and "name" not in people:
        error("it chains (`output` or `feed`), so it needs the main person as a `name` people variable: the "
              "story goes on with the same person")
    if t.output:
        asked = t.question[0].vars & material
        if asked:
            error(f"it feeds other templates (`output`), so its question is dropped in a chain: state "
                  f"{', '.join(sorted(asked))} in a fact instead")
        for var in sorted((read & consts) - stated):
            cue = t.vars[var].cue
            if cue and not any(all(any(c in a.source.lower() for c in cue) for a in alts) for alts in t.facts):
                error(f"constant `{var}`: it feeds other templates, so a fact (not the question) must state it")
    # ---- constraints satisfiable, and samples verify and are grounded in their question
    rng = Random(seed)
    env = t.sample(rng, tries=SATISFY_TRIES)
    if env is None:
        error(f"the constraints are unsatisfiable: no values in {SATISFY_TRIES} draws")
        return out
    source = TemplateSource(library)
    draws = ok = 0
    reasons: Counter = Counter()
    reported: set[str] = set()
    for _ in range(SAMPLES * 4):
        if ok >= SAMPLES:
            break
        draws += 1
        parts: list[Part] = []
        if not source.extend(parts, t, None, rng, (set(), {}), tries=1):
            continue
        program = source.program(parts)
        answer, why = verify(program, [parts[0].expected])
        if answer is None:
            reasons[why] += 1
            if why.startswith(("check", "run", "answer-mismatch")) and why not in reported:
                reported.add(why)
                error(f"a sample fails the gate ({why}) with {_values(parts[0].env)}")
            continue
        ok += 1
        if ok <= GROUND_SAMPLES:
            _grounded(source, parts, program, rng, out, t.where, reported)
        if ok == 1:
            _render_all(t, parts[0].env, rng, out)
    reasons.update({k.split(":")[0]: v for k, v in source.rejected.items()})
    if ok == 0:
        error(f"no sample passes in {draws} draws ({dict(reasons)})")
    elif draws and 1 - ok / draws > WASTE_WARNING:
        warn(f"{1 - ok / draws:.0%} of draws are rejected ({dict(reasons.most_common(3))})")
    return out


def _values(env: dict) -> dict[str, str]:
    return {k: getattr(v, "text", None) or str(v) for k, v in env.items()}


def _grounded(source: TemplateSource, parts: list[Part], program, rng: Random, out: list[Finding], where: str,
              reported: set[str]) -> None:
    """The question must state every init value (the checker's W701 with the data layer's reader)."""
    from ..grounding import grounder_for

    question, _ = source.question(parts, rng)
    diags = check(program, grounder=grounder_for(question))
    if diags and UNGROUNDED_VALUE not in reported:
        reported.add(UNGROUNDED_VALUE)
        out.append(Finding("error", where, f"{diags[0].message}: \"{question}\""))


def _render_all(t: Template, env: dict, rng: Random, out: list[Finding]) -> None:
    """Render every phrasing once, so a slot that cannot render fails here and not mid-corpus."""
    if any(f.message.startswith("rendering") for f in out):
        return
    texts = [a for alts in t.facts for a in alts] + t.question + t.when + t.distractors
    for text in texts:
        try:
            Renderer(rng).sentence(text, env, t.formats)
        except (KeyError, AttributeError, TypeError, ValueError) as err:
            out.append(Finding("error", t.where, f"rendering \"{text.source}\" fails: {err!r}"))
            return


def lint_library(library: Library, seed: int = 0) -> list[Finding]:
    findings: list[Finding] = []
    for t in library.templates:
        findings.extend(lint_template(t, library, seed))
    findings.extend(lint_chains(library, seed))
    outputs = {t.output for t in library.templates if t.output}
    for kind in sorted(outputs - set(library.consumers)):
        producers = ", ".join(t.id for t in library.templates if t.output == kind)
        findings.append(Finding("warning", library.root, f"output `{kind}` ({producers}) feeds no template"))
    for kind, consumers in sorted(library.consumers.items()):
        if kind.startswith("count"):
            for producer in (t for t in library.templates if t.output == kind):
                for consumer, _ in consumers:
                    a, b = producer.vars.get("item"), consumer.vars.get("item")
                    if a is None or b is None or a.pool is not b.pool:
                        findings.append(Finding("error", consumer.where,
                                                f"`{kind}` chains need an `item` from the same pool in "
                                                f"`{producer.id}` and `{consumer.id}`"))
    return findings


def lint_chains(library: Library, seed: int = 0) -> list[Finding]:
    """Every producer -> consumer pair: chains verify and their questions state every value."""
    out: list[Finding] = []
    rng = Random(seed)
    source = TemplateSource(library)
    for producer in library.templates:
        for consumer, var in library.consumers.get(producer.output or "", ()):
            if consumer is producer:
                continue
            where = f"{consumer.where} (after `{producer.id}`)"
            reported: set[str] = set()
            made = 0
            for _ in range(CHAIN_SAMPLES * 5):
                if made >= CHAIN_SAMPLES:
                    break
                parts: list[Part] = []
                state: tuple[set, dict] = (set(), {})
                if not source.extend(parts, producer, None, rng, state) or \
                        not source.extend(parts, consumer, var, rng, state):
                    continue
                program = source.program(parts)
                answer, why = verify(program, [p.expected for p in parts])
                if answer is None:
                    if why not in reported and why.startswith(("check", "run", "answer-mismatch")):
                        reported.add(why)
                        out.append(Finding("error", where, f"a chained sample fails the gate ({why})"))
                    continue
                made += 1
                _grounded(source, parts, program, rng, out, where, reported)
            if made == 0:
                out.append(Finding("warning", where, f"fed by `{producer.id}` it never samples in "
                                                     f"{CHAIN_SAMPLES * 5} tries"))
    return out
