"""Corpus generation throughput, in verified records per second on one core, against the naive road
in the same run.

Ours: templates compiled once; each record's IR is built straight from the skeleton, checked
(no diagnostic allowed) and executed, its answers compared with the template's; the trace text
is written from precomputed lines. The baseline makes the same records (same samples, same
question text) the obvious way: substitute the values into the template's trace text, then
``analyze(text, expected=answer)`` (parse, build, check, execute). Both dedupe and write nothing.
With GSM-8K train present, the mixed corpus (half lifted from train) is measured too.

Run: ``pytest benchmarks/bench_generate.py --benchmark-enable`` (or ``make bench``). The OPS
column is runs per second; each run makes ``N`` records, so records per second = N x OPS (also
stored as ``extra_info.records_per_second``).
"""

from __future__ import annotations

import re
from random import Random

import pytest

from tracelang.corpus.compose import Part, TemplateSource
from tracelang.corpus.generate import generate, question_key
from tracelang.corpus.library import Library
from tracelang.corpus.skeleton import slot_value
from tracelang.numbers import render
from tracelang.paths import TEMPLATES
from tracelang.pipeline import analyze

from .conftest import GSM8K

N = 2000
GROUP = f"generate {N} verified records (one core)"
LIBRARY = Library.load(TEMPLATES)
_SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\}")


def _naive_text(parts: list[Part]) -> str:
    """The trace by string substitution into each template's text, composed by hand."""
    blocks = []
    for part in parts:
        kinds = {(s.var, s.attr): s for s in part.template.skeleton.slots}

        def fill(m: re.Match, part: Part = part, kinds: dict = kinds) -> str:
            value = slot_value(kinds[(m.group(1), m.group(2))], part.env)
            return value if isinstance(value, str) else render(value)

        lines = part.template.trace_text.strip("\n").splitlines()
        if part.fed is not None:
            lines = [f"- {{op: init, var: {line.split('var: ')[1].split(',')[0]}, source: prev.result}}"
                     if line.endswith(f"value: {{{part.fed}}}}}") else line for line in lines]
        blocks.append("\n".join(_SLOT.sub(fill, line) for line in lines) + "\n")
    if len(blocks) == 1:
        return blocks[0]
    return "".join("- " + "\n".join(("  " + line) if i else line for i, line in enumerate(b.splitlines())) + "\n"
                   for b in blocks)


def _naive(n: int, seed: int) -> int:
    source = TemplateSource(LIBRARY)
    rng = Random(seed)
    seen: set[str] = set()
    written = 0
    while written < n:
        parts = source.chain(rng)
        if parts is None:
            continue
        question, _ = source.question(parts, rng)
        text = _naive_text(parts)
        report = analyze(text, expected=parts[-1].expected)
        if not report.correct or report.diagnostics:
            continue
        key = question_key(question)
        if key in seen:
            continue
        seen.add(key)
        written += 1
    return written


def _ours(n: int, seed: int) -> int:
    return sum(1 for _ in generate(n, seed, TemplateSource(LIBRARY)))


def test_naive_text_matches_ours() -> None:
    """The baseline builds the same traces: its text parses to what our skeleton writes."""
    source = TemplateSource(LIBRARY)
    rng = Random(0)
    for _ in range(300):
        parts = source.chain(rng)
        if parts is not None:
            ours = source.trace_text(parts)
            report = analyze(_naive_text(parts), expected=parts[-1].expected)
            assert report.correct and not report.diagnostics
            assert analyze(ours).program == report.program


@pytest.mark.benchmark(group=GROUP)
def test_generate_naive_text_then_analyze(benchmark) -> None:
    benchmark.extra_info["records"] = N
    benchmark.pedantic(_naive, args=(N, 1), rounds=3, iterations=1)
    benchmark.extra_info["records_per_second"] = round(N / benchmark.stats.stats.mean, 1) if benchmark.stats else None


@pytest.mark.benchmark(group=GROUP)
def test_generate_templates(benchmark) -> None:
    benchmark.extra_info["records"] = N
    assert benchmark.pedantic(_ours, args=(N, 1), rounds=3, iterations=1) == N
    benchmark.extra_info["records_per_second"] = round(N / benchmark.stats.stats.mean, 1) if benchmark.stats else None


@pytest.mark.skipif(not (GSM8K / "train.jsonl").is_file(), reason="GSM-8K train not present")
@pytest.mark.benchmark(group=GROUP)
def test_generate_mixed_with_lifted_train(benchmark) -> None:
    """Half the draws lifted from GSM-8K train (plans made once, outside the timing)."""
    from tracelang.corpus.lift import LiftSource, train_records

    lifted = LiftSource.from_records(train_records(str(GSM8K / "train.jsonl"))[:3000])

    def mixed() -> int:
        return sum(1 for _ in generate(N, 1, TemplateSource(LIBRARY), lifted, 0.5))

    benchmark.extra_info["records"] = N
    assert benchmark.pedantic(mixed, rounds=3, iterations=1) == N
    benchmark.extra_info["records_per_second"] = round(N / benchmark.stats.stats.mean, 1) if benchmark.stats else None
