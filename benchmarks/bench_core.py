"""Parse + check + execute per trace: tracelang against what the study did, in the same run.

The study's road is ``yaml.safe_load`` + pydantic validation + float execution (see
baseline_study.py). Ours also checks names, experts, arity, the query, no-ops and repeated
computation, and computes exactly. Run: ``make bench`` or
``pytest benchmarks/bench_core.py --benchmark-enable``. The group table's OPS column is traces per
second for the whole corpus divided by its size; the ratio of the two means is the speed-up.
"""

from __future__ import annotations

import math
from itertools import islice
from pathlib import Path

import pytest

from benchmarks.baseline_study import study_run
from tracelang.data.gsm8k import load
from tracelang.data.importer import import_problems
from tracelang.formatter import format_program
from tracelang.pipeline import analyze, parse

from .conftest import GSM8K, ROOT


def _corpus() -> list[str]:
    """Our example traces in canonical form, plus 1,000 GSM-8K train problems imported as traces
    where the data is present (read at run time, never stored)."""
    texts = [format_program(parse(p.read_text()).program) for p in sorted((ROOT / "corpora/examples").glob("*.yaml"))]
    train = GSM8K / "train.jsonl"
    if train.exists():
        texts += [r["trace"] for r in import_problems(islice(load(str(train)), 1000)).records]
    return texts


CORPUS = _corpus()


def test_corpus_agrees() -> None:
    """Both roads give the same answers on the benchmark corpus (floats within rounding)."""
    for text in CORPUS:
        exact = analyze(text).answer
        assert exact is not None
        assert math.isclose(float(exact), study_run(text), rel_tol=1e-9, abs_tol=1e-9)


def _all(fn):
    for text in CORPUS:
        fn(text)


@pytest.mark.benchmark(group="parse+check+execute (whole corpus)")
def test_study_baseline(benchmark) -> None:
    benchmark.extra_info["traces"] = len(CORPUS)
    benchmark(_all, study_run)


@pytest.mark.benchmark(group="parse+check+execute (whole corpus)")
def test_tracelang(benchmark) -> None:
    benchmark.extra_info["traces"] = len(CORPUS)
    benchmark(_all, analyze)


@pytest.mark.benchmark(group="tracelang stages (whole corpus)")
@pytest.mark.parametrize("stage", ["read", "check", "execute"])
def test_stages(benchmark, stage: str) -> None:
    from tracelang import canonical
    from tracelang.checker import check
    from tracelang.runtime import execute

    programs = [canonical.read(t) for t in CORPUS]
    fn = {"read": lambda: [canonical.read(t) for t in CORPUS], "check": lambda: [check(p) for p in programs],
          "execute": lambda: [execute(p) for p in programs]}[stage]
    benchmark(fn)


if __name__ == "__main__":  # quick look without pytest
    print(len(CORPUS), "traces;", Path(__file__).name)
