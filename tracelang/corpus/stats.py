"""``tracelang corpus stats``: how a corpus compares with GSM-8K train on what the study found lacking.

Question side: words per question, the share with number words (``numwords.has_number_word``),
people named. Trace side: operations per trace and distinct operation shapes (``shapes``). The
same functions measure both columns. GSM-8K's traces are those of the importer
(``tracelang.data.importer``); its questions are all of the file's.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..data.naming import relation_words
from ..ir import Program, Var
from ..pipeline import parse
from .numwords import has_number_word
from .shapes import program_shape, text_shape

_CAPITAL = re.compile(r"\b([A-Z][a-z]+(?:-[a-z]+)?)\b")
_LOWER = re.compile(r"\b([a-z]+(?:-[a-z]+)?)\b")
# Capitalised words that are not people's names (calendar words, titles, common proper nouns of
# word problems). Used for both corpora alike.
_NOT_NAMES = frozenset(re.findall(r"\S+",
    "I Mr Mrs Ms Dr Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May "
    "June July August September October November December Christmas Halloween Easter Thanksgiving Valentine "
    "English Spanish French German Chinese Math Science History If When How What Each Every The A An In On At "
    "After Before Then There This That It He She They His Her Their Its Our We You Your US USA America American "
    "Earth Mars"))


def names_in(question: str, lower_vocabulary: set[str]) -> set[str]:
    """Words that look like people's names: capitalised, and never written in lower case anywhere in
    the corpus (so "After" or "Each" at a sentence start are not names), nor a calendar word."""
    return {w for w in _CAPITAL.findall(question) if w.lower() not in lower_vocabulary and w not in _NOT_NAMES}


@dataclass
class Stats:
    records: int = 0
    questions: int = 0
    distinct_questions: int = 0
    words: int = 0
    with_number_words: int = 0
    traces: int = 0
    operations: int = 0
    ops_ge3: int = 0
    ops_ge5: int = 0
    shapes: Counter = field(default_factory=Counter)
    names: Counter = field(default_factory=Counter)
    names_per_question: int = 0
    experts: Counter = field(default_factory=Counter)
    sources: Counter = field(default_factory=Counter)
    steps: int = 0  # compute steps (every step that reads and defines: compute, percent, compare)
    relation_steps: int = 0  # ... whose names carry a relation word the question says
    note: str = ""

    def table(self) -> dict[str, object]:
        q = max(self.questions, 1)
        t = max(self.traces, 1)
        return {
            "records": self.records,
            "distinct questions": _pct(self.distinct_questions / q),
            "words per question": round(self.words / q, 1),
            "questions with number words": _pct(self.with_number_words / q),
            "traces": self.traces,
            "operations per trace": round(self.operations / t, 2),
            "traces with >= 3 operations": _pct(self.ops_ge3 / t),
            "traces with >= 5 operations": _pct(self.ops_ge5 / t),
            "distinct operation shapes": len(self.shapes),
            "distinct names": len(self.names),
            "names per question": round(self.names_per_question / q, 2),
            "experts": ", ".join(f"{k} {_pct(v / t)}" for k, v in self.experts.most_common()),
            "steps whose names carry relation words": _pct(self.relation_steps / max(self.steps, 1)),
        }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _shape(trace: str) -> tuple[str, ...] | None:
    shape = text_shape(trace)
    if shape is not None:
        return shape
    report = parse(trace)
    return program_shape(report.program) if report.program is not None else None


def relation_steps(question: str, program: Program) -> tuple[int, int]:
    """(compute steps, those whose argument or result names carry a relation word of the question):
    the share the names keep of the words that decide an operation (``naming.relation_words``)."""
    steps = carrying = 0
    for block in program.blocks:
        for step in block.trace:
            if not step.defines or not step.reads:
                continue
            names = [v.name for f in (*step.reads, *step.defines) for v in _vars(getattr(step, f))]
            steps += 1
            carrying += bool(relation_words(question, names))
    return steps, carrying


def _vars(value: object) -> list[Var]:
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, Var)]


def measure(questions: Iterable[str | None], traces: Iterable[tuple[str, str | None]] = (),
            sources: Iterable[str] = (), asked: Iterable[str | None] = ()) -> Stats:
    """Stats of questions and of (trace, expert) pairs; either may be empty. ``asked``: each trace's
    question, for the relation-word rate (traces without one are left out of it)."""
    s = Stats()
    seen: set[str] = set()
    questions = list(questions)
    vocabulary = {w for q in questions if isinstance(q, str) for w in _LOWER.findall(q)}
    for question in questions:
        s.records += 1
        if not isinstance(question, str):
            continue
        s.questions += 1
        seen.add(" ".join(question.lower().split()))
        s.words += len(question.split())
        s.with_number_words += has_number_word(question)
        names = names_in(question, vocabulary)
        s.names.update(names)
        s.names_per_question += len(names)
    s.distinct_questions = len(seen)
    asked = list(asked)
    for i, (trace, expert) in enumerate(traces):
        question = asked[i] if i < len(asked) else None
        if isinstance(question, str):
            report = parse(trace)
            if report.program is not None:
                total, carrying = relation_steps(question, report.program)
                s.steps += total
                s.relation_steps += carrying
        shape = _shape(trace)
        if shape is None:
            continue
        s.traces += 1
        n = len(shape)
        s.operations += n
        s.ops_ge3 += n >= 3
        s.ops_ge5 += n >= 5
        s.shapes[" ".join(shape)] += 1
        if expert:
            s.experts[expert] += 1
    s.sources.update(sources)
    return s


def corpus_stats(records: list[dict]) -> Stats:
    traced = [r for r in records if isinstance(r.get("trace"), str)]
    return measure((r.get("question") for r in records), ((r["trace"], r.get("expert")) for r in traced),
                   (str(r.get("source")) for r in records), (r.get("question") for r in traced))


def gsm8k_stats(path: str) -> Stats:
    """GSM-8K train: questions from the file, traces through the importer (or given in the file)."""
    from ..data.gsm8k import load
    from ..data.importer import convert

    problems = list(load(path))
    traces: list[tuple[str, str | None]] = []
    asked: list[str] = []
    for p in problems:
        conversion = convert(p)
        if conversion.record is not None:
            traces.append((conversion.record["trace"], conversion.record["expert"]))
            asked.append(p.question)
    s = measure((p.question for p in problems), traces, asked=asked)
    s.note = f"traces: the {len(traces)} of {len(problems)} problems the importer converts"
    return s


def side_by_side(ours: Stats, theirs: Stats | None, label: str = "corpus", other: str = "GSM-8K train") -> str:
    a = ours.table()
    b = theirs.table() if theirs is not None else {}
    width = max(len(k) for k in a)
    left = max(len(label), *(len(str(v)) for v in a.values() if len(str(v)) < 40))
    lines = [f"{'':<{width}}  {label:>{left}}" + (f"  {other}" if theirs else "")]
    for key, value in a.items():
        row = f"{key:<{width}}  {str(value):>{left}}"
        if theirs is not None:
            row += f"  {b.get(key, '')}"
        lines.append(row)
    if ours.sources:
        lines.append(f"{'sources':<{width}}  " + ", ".join(f"{k} {v}" for k, v in ours.sources.most_common()))
    if theirs is not None and theirs.note:
        lines.append(f"({other} {theirs.note})")
    return "\n".join(lines)
